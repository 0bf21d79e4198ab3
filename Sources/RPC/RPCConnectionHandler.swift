import Logging
import NIOCore
import Synchronization

/// The server side of one connection: turns frames into calls, calls into replies, and owns the
/// connection's calls in flight (cancellation, backpressure, drain).
///
/// Replies are written in the pipeline and flushed once per read burst; replies of calls that
/// finish later are flushed together once per event-loop tick. All state is confined to the
/// channel's event loop.
public final class RPCConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Sent to every connection when the server starts draining.
    public enum ShuttingDown: RPCNotification {
        public static let name = "server.shuttingDown"
        public static let summary = "The server is stopping: calls in flight may finish within drainTimeoutMs, new calls are refused, then the connection closes."
        public struct Params: Codable, Sendable {
            public var drainTimeoutMs: Int
        }
    }

    private let dispatcher: RPCDispatcher
    /// The limits this connection opened with.
    private let limits: RPCLimits
    private let parser: RPCMessageParser
    private let connectionID: UInt64
    private let peer: RPCPeer?
    private let logger: Logger
    private var context: ChannelHandlerContext!
    private var info: RPCConnectionInfo!

    private var framing: RPCFraming = .newlineDelimited
    private var decoder: RPCFrameDecoder
    /// Bytes of a message not complete yet.
    private var inbound: ByteBuffer?
    /// Calls whose reply is pending, by identity of their cancellation handle.
    private var running: [ObjectIdentifier: RPCCancellation] = [:]
    /// The same calls by client id, for `$/cancelRequest`.
    private var runningByID: [RPCID: RPCCancellation] = [:]
    /// Ids cancelled before their request arrived (bounded, oldest forgotten first).
    private var earlyCancels: [RPCID] = []
    /// Ids answered recently: a cancel for one of these came too late and must not be taken for an
    /// early cancel (it would cancel the next request that reuses the id, as socat users do).
    private var recentlyAnswered: [RPCID] = []
    private var recentlyAnsweredIndex = 0
    private static let maxEarlyCancels = 256
    private var readPending = false
    /// Replies and notifications written since the last flush: one buffer, one write, one flush.
    private var output: ByteBuffer?
    private var flushScheduled = false
    private var inputClosed = false
    private var draining = false
    private var closing = false

    public init(dispatcher: RPCDispatcher, connectionID: UInt64, peer: RPCPeer?, logger: Logger) {
        self.dispatcher = dispatcher
        let limits = dispatcher.limits
        self.limits = limits
        self.parser = RPCMessageParser(maxDepth: limits.maxJSONDepth, maxBatchLength: limits.maxBatchLength)
        self.decoder = RPCFrameDecoder(maxMessageBytes: limits.maxMessageBytes)
        self.connectionID = connectionID
        self.peer = peer
        self.logger = logger
    }

    /// A thread-safe handle on this connection for the server (drain, shutdown) and for handlers
    /// (notifications). Valid once the handler is in a pipeline.
    public private(set) var handle: Handle!

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handle = Handle(eventLoop: context.eventLoop, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        self.handle = handle
        self.info = RPCConnectionInfo(id: connectionID, peer: peer, logger: logger, notifier: handle)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelAll(.connectionClosed)
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var leftover = inbound {
            inbound = nil
            leftover.writeBuffer(&buffer)
            buffer = leftover
        }
        decode(&buffer, atEnd: false)
    }

    /// Runs every complete message in `buffer`; keeps the incomplete rest for the next read.
    private func decode(_ buffer: inout ByteBuffer, atEnd: Bool) {
        while !closing {
            let output = atEnd ? decoder.nextAtEnd(&buffer) : decoder.next(&buffer)
            guard let output else { break }
            switch output {
            case .message(let message): handleMessage(message)
            case .event(let event): handleFrameEvent(event)
            }
        }
        if buffer.readableBytes > 0, !closing { inbound = buffer }
    }

    private func handleFrameEvent(_ event: RPCFrameEvent) {
        switch event {
        case .framingDetected(let framing):
            self.framing = framing
        case .oversized(let prefix, let size):
            let id = findRequestID(inPrefix: prefix) ?? .null
            let error = RPCError.limit(
                .messageTooLarge, "Message too large", setting: "max_message_bytes", limit: limits.maxMessageBytes, actual: size)
            logger.notice("message over the size limit skipped", metadata: ["bytes": "\(size)", "id": "\(id)"])
            writeFrame { JSONWriter.writeError(id: id, error: error, into: &$0) }
        case .unframeable(let reason):
            logger.notice("unframeable input, closing", metadata: ["reason": "\(reason)"])
            writeFrame { JSONWriter.writeError(id: .null, error: RPCError(.framingError, "Framing error", data: ["reason": reason]), into: &$0) }
            closeAfterFlush()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client finished sending (socat at end of input): serve a last line without its
            // newline, answer what is in flight, then close.
            var rest = inbound ?? ByteBuffer()
            inbound = nil
            decode(&rest, atEnd: true)
            inputClosed = true
            closeIfIdle()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelAll(.connectionClosed)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeReadingIfAllowed() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        // Backpressure: stop reading while too many calls run or the client is not reading replies.
        if running.count >= limits.maxInFlightPerConnection || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    // MARK: Calls

    private func handleMessage(_ buffer: ByteBuffer) {
        switch parser.parse(buffer) {
        case .failed(let error):
            writeFrame { JSONWriter.writeError(id: .null, error: error, into: &$0) }
        case .single(let entry):
            guard let (id, reply) = start(entry) else { return }
            switch reply {
            case .now(let outcome):
                writeFrame { JSONWriter.writeOutcome(id: id, outcome: outcome, into: &$0) }
            case .later(let future):
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                future.whenSuccess { outcome in
                    loopBound.value.writeFrame { JSONWriter.writeOutcome(id: id, outcome: outcome, into: &$0) }
                    loopBound.value.scheduleFlush()
                }
            }
        case .batch(let entries):
            startBatch(entries)
        }
    }

    private func startBatch(_ entries: [RPCMessage.Entry]) {
        var replies: [(RPCID, RPCReply)] = []
        replies.reserveCapacity(entries.count)
        for entry in entries {
            if let reply = start(entry) { replies.append(reply) }
        }
        if replies.isEmpty { return }  // only notifications: nothing at all is sent back
        let batch = BatchReply(count: replies.count)
        var pending: [(Int, RPCID, EventLoopFuture<RPCOutcome>)] = []
        for (index, (id, reply)) in replies.enumerated() {
            switch reply {
            case .now(let outcome): batch.set(index, id: id, outcome: outcome)
            case .later(let future): pending.append((index, id, future))
            }
        }
        if pending.isEmpty {
            writeFrame { batch.write(into: &$0) }
            return
        }
        let loopBound = NIOLoopBound((self, batch), eventLoop: context.eventLoop)
        for (index, id, future) in pending {
            future.whenSuccess { outcome in
                let (handler, batch) = loopBound.value
                batch.set(index, id: id, outcome: outcome)
                if batch.isComplete {
                    handler.writeFrame { batch.write(into: &$0) }
                    handler.scheduleFlush()
                }
            }
        }
    }

    /// Starts one call. Returns the id to answer and the reply, or nil when nothing is answered
    /// (a notification).
    private func start(_ entry: RPCMessage.Entry) -> (RPCID, RPCReply)? {
        let request: RPCRequest
        switch entry {
        case .invalid(let id, let error):
            return (id ?? .null, .now(.error(error)))
        case .droppedNotification(let method, let error):
            logger.notice("notification dropped", metadata: ["method": "\(method)", "reason": "\(error.message)"])
            return nil
        case .request(let parsed):
            request = parsed
        }
        if request.method == "$/cancelRequest" {
            cancelRequest(request)
            return request.id.map { ($0, .now(.result(ByteBuffer(string: "null")))) }
        }
        if draining {
            return request.id.map { ($0, .now(.error(RPCErrorFunnel.rpcError(for: .serverShutdown)))) }
        }
        if let id = request.id, let index = earlyCancels.firstIndex(of: id) {
            earlyCancels.remove(at: index)
            return (id, .now(.error(.cancelled)))
        }
        let callContext = dispatcher.makeContext(for: request, connection: info, eventLoop: context.eventLoop)
        var reply = dispatcher.dispatch(request, context: callContext)
        if case .later(let future) = reply {
            let cancellation = callContext.cancellation
            let key = ObjectIdentifier(cancellation)
            running[key] = cancellation
            if let id = request.id { runningByID[id] = cancellation }
            dispatcher.callsInFlight.add(1, ordering: .relaxed)
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            // Bookkeeping runs before the reply is written (callbacks run in order of registration).
            future.whenComplete { _ in
                let handler = loopBound.value
                handler.running[key] = nil
                handler.dispatcher.callsInFlight.subtract(1, ordering: .relaxed)
                if let id = request.id, handler.runningByID[id] === cancellation {
                    handler.runningByID[id] = nil
                    handler.rememberAnswered(id)
                }
            }
            reply = .later(future.always { _ in
                loopBound.value.callFinished()
            })
        }
        guard let id = request.id else { return nil }
        return (id, reply)
    }

    private func callFinished() {
        resumeReadingIfAllowed()
        // Close after the reply that is being written now (callbacks after this one write it).
        context.eventLoop.assumeIsolated().execute { [self] in closeIfIdle() }
    }

    private func cancelRequest(_ request: RPCRequest) {
        guard let params = request.params, !request.paramsAreByPosition, let id = findRequestID(inPrefix: params) else {
            logger.debug("$/cancelRequest without an id ignored")
            return
        }
        if let cancellation = runningByID[id] {
            cancellation.cancel(.requestedByClient)
        } else if recentlyAnswered.contains(id) {
            logger.debug("$/cancelRequest for a call already answered ignored", metadata: ["id": "\(id)"])
        } else {
            // Not started yet (or already answered): remember it so that a request arriving just
            // after its cancel is answered as cancelled instead of running.
            earlyCancels.append(id)
            if earlyCancels.count > Self.maxEarlyCancels { earlyCancels.removeFirst() }
        }
    }

    /// Remembers the last few ids answered after running (a ring of `maxEarlyCancels`).
    private func rememberAnswered(_ id: RPCID) {
        if recentlyAnswered.count < Self.maxEarlyCancels {
            recentlyAnswered.append(id)
        } else {
            recentlyAnswered[recentlyAnsweredIndex] = id
            recentlyAnsweredIndex = (recentlyAnsweredIndex + 1) % Self.maxEarlyCancels
        }
    }

    private func cancelAll(_ reason: RPCCancellationReason) {
        let calls = Array(running.values)
        for call in calls { call.cancel(reason) }
    }

    private func resumeReadingIfAllowed() {
        guard readPending, running.count < limits.maxInFlightPerConnection, context.channel.isWritable else { return }
        readPending = false
        context.read()
    }

    private func closeIfIdle() {
        guard (inputClosed || draining), running.isEmpty, !closing else { return }
        closeAfterFlush()
    }

    private func closeAfterFlush() {
        guard !closing else { return }
        closing = true
        let channel = context.channel
        let last = output ?? ByteBuffer()
        output = nil
        context.writeAndFlush(wrapOutboundOut(last)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Writing

    /// Appends one framed message to the output of this burst (written and flushed together).
    private func writeFrame(_ body: (inout ByteBuffer) -> Void) {
        guard context.channel.isActive else { return }
        if output == nil { output = context.channel.allocator.buffer(capacity: 512) }
        switch framing {
        case .newlineDelimited:
            body(&output!)
            output!.writeInteger(UInt8(ascii: "\n"))
        case .contentLength:
            var message = context.channel.allocator.buffer(capacity: 128)
            body(&message)
            output!.writeStaticString("Content-Length: ")
            output!.writeString(String(message.readableBytes))
            output!.writeStaticString("\r\n\r\n")
            output!.writeBuffer(&message)
        }
    }

    private func flushIfNeeded() {
        guard let pending = output else { return }
        output = nil
        context.writeAndFlush(wrapOutboundOut(pending), promise: nil)
    }

    /// Flushes once after every reply completed in this event-loop tick has been written.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushIfNeeded()
        }
    }

    fileprivate func sendNotification(method: String, params: ByteBuffer?) {
        writeFrame { JSONWriter.writeNotification(method: method, params: params, into: &$0) }
        scheduleFlush()
    }

    fileprivate func beginDrain(timeout: Duration) {
        guard !draining else { return }
        draining = true
        let params = ShuttingDown.Params(drainTimeoutMs: Int(timeout.milliseconds))
        sendNotification(method: ShuttingDown.name, params: try! RPCJSONEncoder().encode(params))
        closeIfIdle()
    }

    fileprivate func forceClose() {
        cancelAll(.serverShutdown)
        draining = true
        closeIfIdle()
    }

    /// The thread-safe face of a connection.
    public final class Handle: RPCNotifier, Sendable {
        public let eventLoop: any EventLoop
        private let handler: NIOLoopBound<RPCConnectionHandler>

        init(eventLoop: any EventLoop, handler: NIOLoopBound<RPCConnectionHandler>) {
            self.eventLoop = eventLoop
            self.handler = handler
        }

        public func notify(method: String, params: ByteBuffer?) {
            let handler = self.handler
            eventLoop.execute { handler.value.sendNotification(method: method, params: params) }
        }

        /// Tells the client the server is stopping, refuses new calls, and closes the connection
        /// once its calls in flight have answered.
        public func beginDrain(timeout: Duration) {
            let handler = self.handler
            eventLoop.execute { handler.value.beginDrain(timeout: timeout) }
        }

        /// Cancels what still runs (answered with -32002) and closes.
        public func forceClose() {
            let handler = self.handler
            eventLoop.execute { handler.value.forceClose() }
        }
    }
}

/// Collects the replies of one batch; written as one array when the last member answers.
private final class BatchReply {
    private var slots: [(RPCID, RPCOutcome)?]
    private var remaining: Int

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
        remaining = count
    }

    var isComplete: Bool { remaining == 0 }

    func set(_ index: Int, id: RPCID, outcome: RPCOutcome) {
        slots[index] = (id, outcome)
        remaining -= 1
    }

    func write(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, slot) in slots.enumerated() {
            guard let (id, outcome) = slot else { continue }
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            JSONWriter.writeOutcome(id: id, outcome: outcome, into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}
