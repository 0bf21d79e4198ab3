import NIOCore

extension RPCConnectionHandler {
    func startBatch(_ entries: [RPCMessage.Entry]) {
        var replies: [(RPCID, RPCReply)] = []
        var requestNumbers: [UInt64?] = []
        replies.reserveCapacity(entries.count)
        let budget = batchReplyBudget()
        // Bytes of the replies known so far: once they fill the budget, the calls after are not run
        // (notifications still are: they add nothing to the reply).
        var known = 0
        for entry in entries {
            if known >= budget.limit, case .request(let request) = entry, let id = request.id {
                replies.append((id, .now(.error(budget.error(actual: known)))))
                requestNumbers.append(nil)
                continue
            }
            if let started = start(entry) {
                if case .now(let outcome) = started.reply { known += BatchReply.size(of: outcome) }
                replies.append((started.id, started.reply))
                requestNumbers.append(started.requestNumber)
            }
        }
        if replies.isEmpty { return }  // only notifications: nothing at all is sent back
        let batch = BatchReply(count: replies.count, budget: budget)
        var pending: [(Int, RPCID, EventLoopFuture<RPCOutcome>)] = []
        for (index, (id, reply)) in replies.enumerated() {
            switch reply {
            case .now(let outcome): batch.set(index, id: id, outcome: outcome)
            case .later(let future): pending.append((index, id, future))
            }
        }
        if pending.isEmpty {
            writeFrame(pieces: batch.pieces())
            return
        }
        let loopBound = NIOLoopBound((self, batch), eventLoop: context.eventLoop)
        let numbers = requestNumbers
        for (index, id, future) in pending {
            future.whenSuccess { outcome in
                let (handler, batch) = loopBound.value
                batch.set(index, id: id, outcome: outcome)
                if batch.isComplete {
                    handler.writeFrame(pieces: batch.pieces())
                    for (number, outcome) in zip(numbers, batch.outcomes) {
                        if let number, let outcome { handler.releasePushStreams(openedBy: number, outcome: outcome) }
                    }
                    handler.scheduleFlush()
                }
            }
        }
    }
}

/// Collects the replies of one batch; written as one array when the last member answers. Holds at
/// most its budget: a result that would pass it is dropped as it arrives, and its member answers
/// `-32003` instead.
final class BatchReply {
    /// The most the batch's reply may hold, and the setting that says so.
    struct Budget {
        var limit: Int
        var setting: String

        func error(actual: Int) -> RPCError {
            .limit(.batchReplyTooLarge, "Batch reply too large", setting: setting, limit: limit, actual: actual)
        }
    }

    private var slots: [(RPCID, RPCOutcome)?]
    private var remaining: Int
    private let budget: Budget
    private var bytes = 0

    init(count: Int, budget: Budget) {
        slots = Array(repeating: nil, count: count)
        remaining = count
        self.budget = budget
    }

    /// About what `outcome` adds to the reply (its envelope counted roughly).
    static func size(of outcome: RPCOutcome) -> Int {
        switch outcome {
        case .result(let result): 48 + result.readableBytes
        case .deprecatedResult(let result, let notice): 64 + result.readableBytes + notice.readableBytes
        case .error(let error): 64 + error.message.utf8.count + (error.data?.text.utf8.count ?? 0)
        }
    }

    var isComplete: Bool { remaining == 0 }

    /// Each member's outcome, in order (nil until it answered).
    var outcomes: [RPCOutcome?] { slots.map { $0?.1 } }

    func set(_ index: Int, id: RPCID, outcome: RPCOutcome) {
        var outcome = outcome
        let size = Self.size(of: outcome)
        if outcome.error == nil, bytes + size > budget.limit { outcome = .error(budget.error(actual: bytes + size)) }
        bytes += Self.size(of: outcome)
        slots[index] = (id, outcome)
        remaining -= 1
    }

    /// A result at least this long is not copied into the reply: the reply's bytes reference it.
    static let referencedResultBytes = 16 * 1024

    /// The reply as a sequence of buffers, in order: the small parts (brackets, envelopes, small
    /// results, errors) copied together, every large result referenced as it is. A batch of 1,000
    /// `rpc.discover` calls answers with the one encoded document referenced 160 times (up to the
    /// budget) instead of 16 MiB copied, in a buffer grown by doubling and page-faulted in, on the
    /// event loop that other connections share.
    func pieces(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> [ByteBuffer] {
        var pieces: [ByteBuffer] = []
        var small = allocator.buffer(capacity: 256)
        small.writeInteger(UInt8(ascii: "["))
        for (index, slot) in slots.enumerated() {
            guard let (id, outcome) = slot else { continue }
            if index > 0 { small.writeInteger(UInt8(ascii: ",")) }
            let large: (result: ByteBuffer, notice: ByteBuffer?)? =
                switch outcome {
                case .result(let result) where result.readableBytes >= Self.referencedResultBytes: (result, nil)
                case .deprecatedResult(let result, let notice) where result.readableBytes >= Self.referencedResultBytes: (result, notice)
                default: nil
                }
            guard let large else {
                JSONWriter.writeOutcome(id: id, outcome: outcome, into: &small)
                continue
            }
            // `{"jsonrpc":"2.0","id":ID,"result":` RESULT `}` (or `,"deprecation":NOTICE}`).
            small.writeStaticString("{\"jsonrpc\":\"2.0\",\"id\":")
            small.writeString(id.json)
            small.writeStaticString(",\"result\":")
            pieces.append(small)
            pieces.append(large.result)
            small = allocator.buffer(capacity: 256)
            if let notice = large.notice {
                small.writeStaticString(",\"deprecation\":")
                small.writeImmutableBuffer(notice)
            }
            small.writeInteger(UInt8(ascii: "}"))
        }
        small.writeInteger(UInt8(ascii: "]"))
        pieces.append(small)
        return pieces
    }
}
