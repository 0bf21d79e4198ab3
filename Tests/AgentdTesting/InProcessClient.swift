import Daemon
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import RPC

/// One connection to an `InProcessDaemon`: the daemon's own `RPCConnectionHandler` (framing,
/// parsing, the dispatcher with its router and middleware) on a `NIOAsyncTestingChannel`. Requests
/// go in as the bytes a socket would carry; what the handler writes is taken at the head of the
/// pipeline (`OutboundTap`) and read here, so a reply is awaited, never polled for.
///
/// Typed calls (`send`) encode params with the daemon's encoder and decode the result; a JSON-RPC
/// error is thrown as the `RPCError` the server sent (code, message, data). The raw side (`write`,
/// `call`, `callRaw`, `nextMessage`) is for malformed input and for tests about the exact bytes.
///
/// Messages are kept in arrival order until taken: `send` takes its own reply and leaves
/// notifications and other replies for `nextNotification` / `nextMessage`.
public actor InProcessClient {
    /// How long a wait for a message lasts before it throws `InProcessClientError.timedOut`: a
    /// safety net for a test that would otherwise hang, not a way to sequence one.
    public static let defaultTimeout: Duration = .seconds(30)

    /// The channel the connection handler runs on (for tests that need it, e.g. to close it).
    public nonisolated let channel: NIOAsyncTestingChannel
    public nonisolated let peer: RPCPeer?

    private struct Received {
        let text: String
        /// Nil when the message is not a single response or notification (a batch reply, or bytes
        /// that are not JSON-RPC): reachable through `nextMessage` only.
        let message: RPCServerMessage?
    }

    private var nextID = 0
    private var inbox: [Received] = []
    private var frames = RPCFrameDecoder(maxMessageBytes: Int(Int32.max))
    private var pending: ByteBuffer?
    private var closed = false
    private var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var nextWaiter = 0
    private var reader: Task<Void, Never>?

    /// A connection to `dispatcher` (usually through `InProcessDaemon.connect`; directly for a test
    /// that builds its own `Dependencies`). `signedIn`: whether the handler starts with the full
    /// message limit, as the daemon's does for a trusted uid (false: `max_unauthenticated_message_bytes`
    /// until the connection signs in).
    public init(
        dispatcher: RPCDispatcher, connectionID: UInt64 = 1, peer: RPCPeer?, signedIn: Bool = true, logger: Logger = Dependencies.quietLogger
    ) async throws {
        self.peer = peer
        let channel = NIOAsyncTestingChannel()
        self.channel = channel
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(OutboundTap(continuation))
            try channel.pipeline.syncOperations.addHandler(
                RPCConnectionHandler(dispatcher: dispatcher, connectionID: connectionID, peer: peer, logger: logger, signedIn: signedIn))
        }.get()
        // Active, as an accepted socket is: the handler starts reading.
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/in-process/agentd.sock")).get()
        reader = Task { [weak self] in
            for await buffer in stream {
                guard let self else { return }
                await self.receive(buffer)
            }
            await self?.endOfStream()
        }
    }

    /// A connection the test dropped without `close()` is closed as a socket would be.
    deinit {
        channel.close(promise: nil)
    }

    // MARK: Typed calls

    /// Calls `method` and returns its decoded result.
    /// - Throws: the server's `RPCError` for an error reply; `InProcessClientError` when the reply
    ///   does not come or does not decode as `M.Result`.
    public func send<M: RPCMethod>(_ method: M.Type, _ params: M.Params, timeout: Duration = defaultTimeout) async throws -> M.Result
    where M.Params: Encodable {
        let result = try await call(M.name, fragment: JSONFragment(encoding: params), timeout: timeout)
        return try Self.decode(M.Result.self, from: result.text, what: "the result of \(M.name)")
    }

    /// Calls a method that takes no params.
    public func send<M: RPCMethod>(_ method: M.Type, timeout: Duration = defaultTimeout) async throws -> M.Result where M.Params == RPCNoParams {
        try await send(method, RPCNoParams(), timeout: timeout)
    }

    /// The next notification named `N.name` (earlier ones of other names stay queued), its params
    /// decoded.
    public func nextNotification<N: RPCNotification>(of notification: N.Type, timeout: Duration = defaultTimeout) async throws -> N.Params {
        let received = try await take(timeout: timeout, waitingFor: "a \(N.name) notification") { message in
            if case .notification(let method, _) = message, method == N.name { return true }
            return false
        }
        guard case .notification(_, let params) = received.message else { fatalError("take returned a non-matching message") }
        return try Self.decode(N.Params.self, from: params?.text ?? "null", what: "the params of \(N.name)")
    }

    // MARK: Raw calls

    /// Calls `method` with `params` as JSON text (nil: no params member) and returns the raw result.
    /// - Throws: the server's `RPCError` for an error reply.
    public func call(_ method: String, _ params: String? = nil, timeout: Duration = defaultTimeout) async throws -> JSONFragment {
        try await call(method, fragment: params.map(JSONFragment.init(unchecked:)), timeout: timeout)
    }

    /// Calls `method` with `params` as JSON text and returns the whole reply line as the server
    /// wrote it (without its newline), error or not.
    public func callRaw(_ method: String, _ params: String? = nil, timeout: Duration = defaultTimeout) async throws -> String {
        let id = try await request(method, params.map(JSONFragment.init(unchecked:)))
        return try await reply(to: id, timeout: timeout).text
    }

    /// Writes `text` exactly as given (no newline added): framing, malformed JSON, batches.
    public func write(_ text: String) async throws {
        try await write(ByteBuffer(string: text))
    }

    public func write(bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    /// The next message from the server, whatever it is (a reply, a batch reply, a notification), as
    /// the text of its frame.
    public func nextMessage(timeout: Duration = defaultTimeout) async throws -> String {
        try await take(timeout: timeout, waitingFor: "a message", matchingAny: true) { _ in true }.text
    }

    /// How many messages arrived and were not taken yet.
    public var unreadCount: Int { inbox.count }

    /// Closes the connection (the handler cancels its calls in flight, as for a closed socket).
    public func close() async {
        _ = try? await channel.close()
        // The handler's removal ends the tap's stream, and so the reader.
        await reader?.value
    }

    // MARK: Internals

    private func call(_ method: String, fragment: JSONFragment?, timeout: Duration) async throws -> JSONFragment {
        let id = try await request(method, fragment)
        guard case .response(_, let outcome) = try await reply(to: id, timeout: timeout).message else {
            fatalError("reply(to:) returned a non-response")
        }
        return try outcome.get()
    }

    private func request(_ method: String, _ params: JSONFragment?) async throws -> RPCID {
        nextID += 1
        let id = RPCID(nextID)
        try await write(RPCClientCodec.request(id: id, method: method, params: params))
        return id
    }

    private func reply(to id: RPCID, timeout: Duration) async throws -> Received {
        try await take(timeout: timeout, waitingFor: "the reply to id \(id)") { message in
            if case .response(let replyID, _) = message, replyID == id { return true }
            return false
        }
    }

    private func write(_ buffer: ByteBuffer) async throws {
        try await channel.writeInbound(buffer)
        // What the read scheduled on the loop itself (a flush, the next read) runs now: the testing
        // loop runs jobs scheduled from inside it only when told.
        await channel.testingEventLoop.run()
    }

    /// Removes and returns the first received message that `matches` (any message when
    /// `matchingAny`, else only parsed responses and notifications), waiting for more as needed.
    private func take(
        timeout: Duration, waitingFor what: String, matchingAny: Bool = false, _ matches: (RPCServerMessage) -> Bool
    ) async throws -> Received {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let index = inbox.firstIndex(where: { received in
                if matchingAny { return true }
                return received.message.map(matches) ?? false
            }) {
                return inbox.remove(at: index)
            }
            if closed { throw InProcessClientError.closed(waitingFor: what, unread: inbox.map(\.text)) }
            guard ContinuousClock.now < deadline else {
                throw InProcessClientError.timedOut(waitingFor: what, after: timeout, unread: inbox.map(\.text))
            }
            try await nextArrival(until: deadline)
        }
    }

    /// Returns when a message arrives or the connection closes; throws at the deadline.
    private func nextArrival(until deadline: ContinuousClock.Instant) async throws {
        nextWaiter += 1
        let waiter = nextWaiter
        // The deadline's timer: it only bounds a wait that would otherwise never end.
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            await self?.expire(waiter)
        }
        defer { timer.cancel() }
        // A cancelled test (its time limit) stops waiting at once.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters[waiter] = continuation
                }
            }
        } onCancel: {
            Task { await self.cancel(waiter) }
        }
    }

    private func cancel(_ waiter: Int) {
        waiters.removeValue(forKey: waiter)?.resume(throwing: CancellationError())
    }

    private func expire(_ waiter: Int) {
        // The caller's loop sees the deadline passed and throws with what is unread.
        waiters.removeValue(forKey: waiter)?.resume()
    }

    private func wakeWaiters() {
        let woken = waiters
        waiters = [:]
        for continuation in woken.values { continuation.resume() }
    }

    private func receive(_ buffer: ByteBuffer) {
        var buffer = buffer
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        while let output = frames.next(&buffer) {
            guard case .message(let message) = output else { continue }
            inbox.append(Received(text: String(buffer: message), message: try? RPCClientCodec.parse(message)))
        }
        if buffer.readableBytes > 0 { pending = buffer }
        wakeWaiters()
    }

    private func endOfStream() {
        closed = true
        wakeWaiters()
    }

    private static func decode<T: Decodable>(_ type: T.Type, from text: String, what: String) throws -> T {
        do {
            return try resultDecoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw InProcessClientError.undecodable(what: what, text: text, error: "\(error)")
        }
    }

    /// Foundation's decoder with the daemon's date format (`RPCJSONEncoder`: ISO 8601, UTC, whole
    /// seconds; fractional seconds accepted too).
    private static var resultDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? Date(text, strategy: .iso8601) { return date }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date: \(text)"))
        }
        return decoder
    }
}

/// Why an in-process call did not produce a result (the server's own errors are `RPCError`s).
public enum InProcessClientError: Error, CustomStringConvertible {
    case timedOut(waitingFor: String, after: Duration, unread: [String])
    case closed(waitingFor: String, unread: [String])
    case undecodable(what: String, text: String, error: String)

    public var description: String {
        switch self {
        case .timedOut(let what, let timeout, let unread): "no \(what) within \(timeout); unread: \(unread)"
        case .closed(let what, let unread): "the connection closed while waiting for \(what); unread: \(unread)"
        case .undecodable(let what, let text, let error): "\(what) does not decode: \(error)\n\(text)"
        }
    }
}

extension RPCError {
    /// `data` parsed, for looking at its members: `error.dataValue?["field"]`.
    public var dataValue: JSONValue? {
        data.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.text.utf8)) }
    }
}

extension JSONValue {
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var intValue: Int? {
        if case .number(let value) = self, value.rounded() == value { return Int(value) }
        return nil
    }
}

/// The head of the testing channel's pipeline: every buffer the connection handler writes goes to
/// the client's stream instead of the channel's outbound buffer (nothing to poll). The stream ends
/// when the handler is removed (the channel closed).
final class OutboundTap: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let continuation: AsyncStream<ByteBuffer>.Continuation

    init(_ continuation: AsyncStream<ByteBuffer>.Continuation) {
        self.continuation = continuation
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        continuation.yield(unwrapOutboundIn(data))
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {}

    func handlerRemoved(context: ChannelHandlerContext) {
        continuation.finish()
    }
}
