import Logging
import NIOCore
import Synchronization

/// The server side of one connection: turns frames into calls, calls into replies, and owns the
/// connection's calls in flight (cancellation, backpressure, drain).
///
/// Replies are written in the pipeline and flushed once per read burst; replies of calls that
/// finish later are flushed together once per event-loop tick. All state is confined to the
/// channel's event loop.
///
/// Replies the client does not read are bounded (`maxQueuedReplyBytesPerConnection`, and
/// `maxQueuedReplyBytes` over all connections): past a bound no further call of the connection
/// starts, not even the rest of what was already read, until its replies drain; one that stays over
/// for `frameTimeout` is closed. A batch's reply holds at most the bound: members past it answer
/// `-32003` instead of their result, and those after it are not run.
///
/// A connection whose call was refused with `-32017 Rate limited` is not read, and the messages it
/// already sent wait, until the refusal's `retryAfterMs` has passed (at most
/// `maxRateLimitPause`): a client that resends at once costs nothing while it is throttled (its
/// socket buffer fills and it blocks) instead of a parse, a route and a refusal per message.
public final class RPCConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Sent to every connection when the server starts draining.
    public enum ShuttingDown: RPCNotification {
        public static let name = "server.shuttingDown"
        public static let summary =
            "The server is stopping: calls in flight may finish within drainTimeoutMs, new calls are refused, then the connection closes."
        public struct Params: Codable, Sendable {
            public var drainTimeoutMs: Int
        }
    }

    let dispatcher: RPCDispatcher
    /// The limits this connection opened with.
    private let limits: RPCLimits
    private let parser: RPCMessageParser
    private let connectionID: UInt64
    private let peer: RPCPeer?
    let logger: Logger
    var context: ChannelHandlerContext!
    private var info: RPCConnectionInfo!

    private var framing: RPCFraming = .newlineDelimited
    private var decoder: RPCFrameDecoder
    /// Whether the decoder holds this connection to `maxUnauthenticatedMessageBytes` (until it
    /// signs in).
    private var unauthenticatedLimit: Bool
    /// Bytes of a message not complete yet.
    private var inbound: ByteBuffer?
    /// Calls whose reply is pending, by identity of their cancellation handle.
    var running: [ObjectIdentifier: RPCCancellation] = [:]
    /// The same calls by client id, for `$/cancelRequest`.
    var runningByID: [RPCID: RPCCancellation] = [:]
    /// Ids cancelled before their request arrived (bounded, oldest forgotten first).
    var earlyCancels: [RPCID] = []
    /// Ids answered recently: a cancel for one of these came too late and must not be taken for an
    /// early cancel (it would cancel the next request that reuses the id, as socat users do).
    var recentlyAnswered: [RPCID] = []
    var recentlyAnsweredIndex = 0
    static let maxEarlyCancels = 256
    private var readPending = false
    /// Replies and notifications written since the last flush: one buffer, one write, one flush.
    private var output: ByteBuffer?
    private var flushScheduled = false
    private var inputClosed = false
    private var draining = false
    var closing = false
    /// Open push streams (event subscriptions), by id.
    var pushStreams: [UInt64: PushStreamState] = [:]
    /// Request numbers of the calls running now: a push stream opened by one of them is held
    /// until its reply is written.
    var runningRequests: Set<UInt64> = []
    /// Since when the connection has held a partial message with no complete one after it (nil: no
    /// partial message), and the timer that enforces `frameTimeout` on it.
    private var partialSince: NIODeadline?
    private var frameTimer: Scheduled<Void>?
    /// Reply bytes handed to the channel and not taken by the socket yet, as last sampled (NIO's
    /// `bufferedWritableBytes` of a channel that is not writable, read after each flush, on
    /// writability changes and while it holds any): between samples it can only be too high.
    private var channelPending = 0
    /// What this connection adds to `dispatcher.replyBytesQueued` now.
    private var accountedReplyBytes = 0
    /// Since when the connection is over its bound of unread replies, or holds some while the daemon
    /// is over its total (nil: it is not). No call starts meanwhile, and past `frameTimeout` it is
    /// closed. The reply timer polls while the connection holds any reply the socket has not taken.
    private var pausedSince: NIODeadline?
    private var replyTimer: Scheduled<Void>?
    private var resumeScheduled = false
    /// Set while the connection is throttled after a `-32017` (the tarpit), and fires when it may
    /// be read again. Nil otherwise: the read path's only check.
    private var rateLimitPause: Scheduled<Void>?
    /// The longest a `-32017` stops a connection. Below it the pause is the refusal's own wait, so
    /// a flooder gets about one refusal per call its class serves it; the cap keeps a connection
    /// refused for a slow class (registration refills once a minute) answering its other calls
    /// (pings, reads) within a second.
    static let maxRateLimitPause = Duration.seconds(1)
    /// How often a paused connection looks whether its replies drained: a drain that stays under
    /// NIO's write-buffer water marks raises no event.
    private static let replyPollInterval = TimeAmount.milliseconds(50)
    /// What a batch's reply may always hold, even while the daemon is at its total bound.
    static let minimumBatchReplyBytes = 64 << 10

    /// `signedIn`: whether the peer is recognised from the start (a trusted uid). Otherwise its
    /// messages are held to `maxUnauthenticatedMessageBytes` until a call marks the connection
    /// signed in (`RPCConnectionInfo.markSignedIn`).
    public init(dispatcher: RPCDispatcher, connectionID: UInt64, peer: RPCPeer?, logger: Logger, signedIn: Bool = true) {
        self.dispatcher = dispatcher
        let limits = dispatcher.limits
        self.limits = limits
        self.parser = RPCMessageParser(maxDepth: limits.maxJSONDepth, maxBatchLength: limits.maxBatchLength)
        self.unauthenticatedLimit = !signedIn && limits.maxUnauthenticatedMessageBytes < limits.maxMessageBytes
        self.decoder = RPCFrameDecoder(maxMessageBytes: unauthenticatedLimit ? limits.maxUnauthenticatedMessageBytes : limits.maxMessageBytes)
        self.connectionID = connectionID
        self.peer = peer
        self.logger = logger
    }

    /// A thread-safe handle on this connection for the server (drain, shutdown) and for handlers
    /// (notifications). Valid once the handler is in a pipeline.
    public private(set) var handle: Handle!

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let handle = Handle(eventLoop: context.eventLoop, handler: self)
        self.handle = handle
        self.info = RPCConnectionInfo(id: connectionID, peer: peer, logger: logger, notifier: handle)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        frameTimer?.cancel()
        frameTimer = nil
        rateLimitPause?.cancel()
        rateLimitPause = nil
        releaseQueuedReplies()
        cancelAll(.connectionClosed)
        endAllPushStreams()
        handle.detach()
        // The context holds this handler: keeping it would keep every closed connection in memory.
        // Replies of calls still finishing find no context and are dropped (the client is gone).
        self.context = nil
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        // Signed in since the last read: the full limit from now on (not amid a message being
        // skipped, which is answered with the limit it was skipped under).
        if unauthenticatedLimit, !decoder.isSkipping, info.isSignedIn {
            unauthenticatedLimit = false
            decoder.maxMessageBytes = limits.maxMessageBytes
        }
        if var leftover = inbound {
            inbound = nil
            leftover.writeBuffer(&buffer)
            buffer = leftover
        }
        decode(&buffer, atEnd: false)
        // A peer that has not signed in and passes its limit is answered at once and closed, instead
        // of having the rest of its message read and dropped: an 8 MiB "username" then costs the
        // daemon 64 KiB of reading, not 8 MiB, however often it is sent.
        if unauthenticatedLimit, !closing, let skipped = decoder.skippedSoFar {
            refuseOversized(prefix: skipped.prefix, size: skipped.size)
        }
    }

    /// Runs every complete message in `buffer`; keeps the incomplete rest for the next read.
    private func decode(_ buffer: inout ByteBuffer, atEnd: Bool) {
        var completed = false
        while !closing {
            // Not one more call while the connection is throttled (`-32017`), nor while the client
            // leaves too many replies unread: the rest of the buffer waits (a batch of 1,000
            // `rpc.discover` asks for ~100 MB).
            guard rateLimitPause == nil, mayStartCalls else {
                if rateLimitPause == nil { pauseCalls() }
                // What this burst wrote goes now: the socket may take it, and nothing else would
                // flush a burst cut short outside a read (a resume, the end of input).
                flushIfNeeded()
                break
            }
            let output = atEnd ? decoder.nextAtEnd(&buffer) : decoder.next(&buffer)
            guard let output else { break }
            switch output {
            case .message(let message):
                completed = true
                handleMessage(message)
            case .event(let event):
                if case .oversized = event { completed = true }
                handleFrameEvent(event)
            }
        }
        if buffer.readableBytes > 0, !closing { inbound = buffer }
        trackPartialFrame(completedOne: completed)
    }

    /// Bytes of messages read and not run yet (for tests: what a connection holds in memory).
    var bufferedInboundBytes: Int { inbound?.readableBytes ?? 0 }

    /// Starts, restarts or stops the clock of a partial message: it runs while the connection holds
    /// bytes of a message it has not finished, from the last complete message (or the first byte),
    /// so that a client streaming many pipelined messages is never cut, and one that trickles a
    /// message byte by byte is after `frameTimeout`.
    private func trackPartialFrame(completedOne: Bool) {
        let partial = !closing && ((inbound?.readableBytes ?? 0) > 0 || decoder.isSkipping)
        guard partial, limits.frameTimeout > .zero else {
            partialSince = nil
            return
        }
        if partialSince == nil || completedOne { partialSince = .now() }
        if frameTimer == nil { scheduleFrameTimer(in: .nanoseconds(limits.frameTimeout.nanoseconds)) }
    }

    private func scheduleFrameTimer(in delay: TimeAmount) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        frameTimer = context.eventLoop.scheduleTask(in: delay) { loopBound.value.frameTimerFired() }
    }

    private func frameTimerFired() {
        frameTimer = nil
        guard let since = partialSince, !closing else { return }
        let timeout = TimeAmount.nanoseconds(limits.frameTimeout.nanoseconds)
        let waited = NIODeadline.now() - since
        // Not the client's fault while this server has stopped reading it (backpressure, or the
        // rate-limit pause), or holds its messages until it reads its replies (the reply timer
        // deals with that).
        let held = readPending || pausedSince != nil || rateLimitPause != nil
        if held || waited < timeout {
            if held { partialSince = .now() }
            scheduleFrameTimer(in: held ? timeout : timeout - waited)
            return
        }
        let error = RPCError.limit(
            .frameTimeout, "Frame timeout", setting: "frame_timeout_ms", limit: Int(limits.frameTimeout.milliseconds),
            actual: Int(waited.nanoseconds / 1_000_000))
        logger.notice("partial message not finished in time, closing", metadata: ["waited_ms": "\(waited.nanoseconds / 1_000_000)"])
        writeFrame { JSONWriter.writeError(id: .null, error: error, into: &$0) }
        inbound = nil
        closeAfterFlush()
    }

    /// Answers a message over the size limit with `-32010 {setting, limit, actual}`. A signed-in
    /// connection goes on (the message was skipped); one not signed in is closed after the answer.
    private func refuseOversized(prefix: ByteBuffer, size: Int) {
        let id = findRequestID(inPrefix: prefix) ?? .null
        let error = RPCError.limit(
            .messageTooLarge, "Message too large", setting: unauthenticatedLimit ? "max_unauthenticated_message_bytes" : "max_message_bytes",
            limit: decoder.maxMessageBytes, actual: size)
        writeFrame { JSONWriter.writeError(id: id, error: error, into: &$0) }
        if unauthenticatedLimit {
            logger.notice("message over the limit from a connection not signed in, closing", metadata: ["bytes": "\(size)", "id": "\(id)"])
            closeAfterFlush()
        } else {
            logger.notice("message over the size limit skipped", metadata: ["bytes": "\(size)", "id": "\(id)"])
        }
    }

    private func handleFrameEvent(_ event: RPCFrameEvent) {
        switch event {
        case .framingDetected(let framing):
            self.framing = framing
        case .oversized(let prefix, let size):
            refuseOversized(prefix: prefix, size: size)
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
        endAllPushStreams()
        releaseQueuedReplies()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drainPushStreams()
            sampleQueuedReplies()
            resumeReadingIfAllowed()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        // Backpressure: stop reading while too many calls run or the client is not reading replies.
        if running.count >= limits.maxInFlightPerConnection || !context.channel.isWritable || pausedSince != nil || rateLimitPause != nil {
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
            guard let started = start(entry) else { return }
            let id = started.id
            switch started.reply {
            case .now(let outcome):
                writeFrame { JSONWriter.writeOutcome(id: id, outcome: outcome, into: &$0) }
            case .later(let future):
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let requestNumber = started.requestNumber
                future.whenSuccess { outcome in
                    let handler = loopBound.value
                    handler.writeFrame { JSONWriter.writeOutcome(id: id, outcome: outcome, into: &$0) }
                    if let requestNumber { handler.releasePushStreams(openedBy: requestNumber, outcome: outcome) }
                    handler.scheduleFlush()
                }
            }
        case .batch(let entries):
            startBatch(entries)
        }
    }

    /// A call started by `start`: the id to answer, the reply, and (for a call that runs) its
    /// request number.
    struct Started {
        var id: RPCID
        var reply: RPCReply
        var requestNumber: UInt64? = nil
    }

    /// Starts one call. Returns the id to answer and the reply, or nil when nothing is answered
    /// (a notification).
    func start(_ entry: RPCMessage.Entry) -> Started? {
        let request: RPCRequest
        switch entry {
        case .invalid(let id, let error):
            return Started(id: id ?? .null, reply: .now(.error(error)))
        case .droppedNotification(let method, let error):
            logger.notice("notification dropped", metadata: ["method": "\(method)", "reason": "\(error.message)"])
            return nil
        case .request(let parsed):
            request = parsed
        }
        if request.method == "$/cancelRequest" {
            cancelRequest(request)
            return request.id.map { Started(id: $0, reply: .now(.result(ByteBuffer(string: "null")))) }
        }
        if draining {
            return request.id.map { Started(id: $0, reply: .now(.error(RPCErrorFunnel.rpcError(for: .serverShutdown)))) }
        }
        if let id = request.id, let index = earlyCancels.firstIndex(of: id) {
            earlyCancels.remove(at: index)
            return Started(id: id, reply: .now(.error(.cancelled)))
        }
        let callContext = dispatcher.makeContext(for: request, connection: info, eventLoop: context.eventLoop)
        var reply = dispatcher.dispatch(request, context: callContext)
        if case .now(.error(let error)) = reply, error.code == .rateLimited { pauseAfterRateLimit(error) }
        if case .later(let future) = reply {
            let cancellation = callContext.cancellation
            let key = ObjectIdentifier(cancellation)
            running[key] = cancellation
            if let id = request.id { runningByID[id] = cancellation }
            let requestNumber = callContext.requestNumber
            runningRequests.insert(requestNumber)
            dispatcher.callsInFlight.add(1, ordering: .relaxed)
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            // Bookkeeping runs before the reply is written (callbacks run in order of registration).
            future.whenComplete { result in
                let handler = loopBound.value
                handler.running[key] = nil
                handler.runningRequests.remove(requestNumber)
                // A notification has no reply to wait for.
                if request.id == nil, case .success(let outcome) = result {
                    handler.releasePushStreams(openedBy: requestNumber, outcome: outcome)
                }
                handler.dispatcher.callsInFlight.subtract(1, ordering: .relaxed)
                if let id = request.id, handler.runningByID[id] === cancellation {
                    handler.runningByID[id] = nil
                    handler.rememberAnswered(id)
                }
            }
            reply = .later(
                future.always { _ in
                    loopBound.value.callFinished()
                })
            guard let id = request.id else { return nil }
            return Started(id: id, reply: reply, requestNumber: requestNumber)
        }
        guard let id = request.id else { return nil }
        return Started(id: id, reply: reply)
    }

    private func callFinished() {
        guard context != nil else { return }
        resumeReadingIfAllowed()
        // Close after the reply that is being written now (callbacks after this one write it).
        context.eventLoop.assumeIsolated().execute { [self] in closeIfIdle() }
    }

    private func resumeReadingIfAllowed() {
        guard context != nil, readPending, pausedSince == nil, rateLimitPause == nil, running.count < limits.maxInFlightPerConnection,
            context.channel.isWritable
        else { return }
        readPending = false
        context.read()
    }

    private func closeIfIdle() {
        // Not while messages wait for the client to read its replies or for the rate-limit pause
        // to end: they have not run yet.
        guard inputClosed || draining, running.isEmpty, pausedSince == nil, rateLimitPause == nil, !closing else { return }
        closeAfterFlush()
    }

    private func closeAfterFlush() {
        guard !closing, context != nil else { return }
        closing = true
        let channel = context.channel
        let last = output ?? ByteBuffer()
        output = nil
        context.writeAndFlush(wrapOutboundOut(last)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Rate-limit pause

    /// A call was refused with `-32017`: the connection is neither read nor its buffered messages
    /// run until the refusal's wait has passed (the first refusal counts: the rest of a batch
    /// answered with it adds nothing). A refused notification pauses too: no reply tells the
    /// client, but a flood of notifications costs the same to refuse.
    private func pauseAfterRateLimit(_ error: RPCError) {
        guard rateLimitPause == nil, context != nil else { return }
        let wait = min(RPCRateLimitMiddleware.retryAfter(of: error) ?? Self.maxRateLimitPause, Self.maxRateLimitPause)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        rateLimitPause = context.eventLoop.scheduleTask(in: .nanoseconds(wait.nanoseconds)) { loopBound.value.rateLimitPauseEnded() }
    }

    /// Runs the messages held during the pause (unless unread replies hold them still), then
    /// reads again.
    private func rateLimitPauseEnded() {
        rateLimitPause = nil
        guard context != nil, !closing else { return }
        runHeldMessages()
    }

    /// Runs the messages read and not run yet (held by a pause), then reads again if nothing else
    /// holds the connection, and closes it if its input ended meanwhile.
    private func runHeldMessages() {
        var rest = inbound ?? ByteBuffer()
        inbound = nil
        decode(&rest, atEnd: inputClosed)
        flushIfNeeded()
        resumeReadingIfAllowed()
        closeIfIdle()
    }

    // MARK: Unread replies

    /// Whether the next call may start: not while this connection holds its bound of unread
    /// replies, nor while it holds any and the daemon holds its total. (Replies of calls already
    /// running are still written: `maxInFlightPerConnection` bounds those.)
    private var mayStartCalls: Bool {
        let queued = (output?.readableBytes ?? 0) + channelPending
        if queued == 0 { return true }
        if queued >= limits.maxQueuedReplyBytesPerConnection { return false }
        return dispatcher.replyBytesQueued.load(ordering: .relaxed) < limits.maxQueuedReplyBytes
    }

    /// The most one batch's reply may hold: the per-connection bound, or what is left of the
    /// daemon's total when that is less (never under `minimumBatchReplyBytes`).
    func batchReplyBudget() -> BatchReply.Budget {
        let room = limits.maxQueuedReplyBytes - dispatcher.replyBytesQueued.load(ordering: .relaxed)
        if room < limits.maxQueuedReplyBytesPerConnection {
            return BatchReply.Budget(limit: max(room, Self.minimumBatchReplyBytes), setting: "max_queued_reply_bytes")
        }
        return BatchReply.Budget(limit: limits.maxQueuedReplyBytesPerConnection, setting: "max_queued_reply_bytes_per_connection")
    }

    private func pauseCalls() {
        if pausedSince == nil { pausedSince = .now() }
        if replyTimer == nil { scheduleReplyTimer() }
    }

    /// Reads how much the channel still holds and updates the daemon's total; pauses the
    /// connection when it is over a bound, resumes it when it is back under, and keeps the reply
    /// timer polling while the socket has not taken everything (a drain below NIO's water marks,
    /// or the daemon's total passing its bound, raises no event here).
    private func sampleQueuedReplies() {
        guard context != nil else { return }
        // A writable channel holds less than NIO's high-water mark (64 KiB): counted as drained, which
        // spares the flush of every reply that leaves at once an option lookup.
        channelPending = context.channel.isWritable ? 0 : (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        let queued = channelPending + (output?.readableBytes ?? 0)
        if queued != accountedReplyBytes {
            dispatcher.replyBytesQueued.add(queued - accountedReplyBytes, ordering: .relaxed)
            accountedReplyBytes = queued
        }
        if queued == 0 { return resumeIfPaused() }
        if !mayStartCalls {
            pauseCalls()
            return
        }
        if replyTimer == nil { scheduleReplyTimer() }
        resumeIfPaused()
    }

    private func resumeIfPaused() {
        if pausedSince != nil, !resumeScheduled {
            // In a task of its own: this runs amid flushes and writability changes.
            resumeScheduled = true
            context.eventLoop.assumeIsolated().execute { [self] in
                resumeScheduled = false
                resumeCalls()
            }
        }
    }

    /// Runs the messages held while paused, then reads again.
    private func resumeCalls() {
        guard context != nil, pausedSince != nil, !closing, mayStartCalls else { return }
        pausedSince = nil
        runHeldMessages()
    }

    private func scheduleReplyTimer() {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        replyTimer = context.eventLoop.scheduleTask(in: Self.replyPollInterval) { loopBound.value.replyTimerFired() }
    }

    /// Samples again (which pauses, resumes, or keeps polling); closes the connection when it has
    /// been over a bound for `frameTimeout`. It is closed at once, its replies dropped: a client
    /// that does not read would never see an error written after them.
    private func replyTimerFired() {
        replyTimer = nil
        guard context != nil else { return }
        sampleQueuedReplies()
        guard let since = pausedSince, !mayStartCalls else { return }
        let waited = NIODeadline.now() - since
        let timeout = TimeAmount.nanoseconds(limits.frameTimeout.nanoseconds)
        guard timeout > .zero, waited >= timeout else { return }
        let queued = channelPending + (output?.readableBytes ?? 0)
        let overOwn = queued >= limits.maxQueuedReplyBytesPerConnection
        logger.notice(
            "replies not read in time, closing",
            metadata: [
                "queued_bytes": "\(queued)", "waited_ms": "\(waited.nanoseconds / 1_000_000)",
                "setting": overOwn ? "max_queued_reply_bytes_per_connection" : "max_queued_reply_bytes",
                "limit": "\(overOwn ? limits.maxQueuedReplyBytesPerConnection : limits.maxQueuedReplyBytes)",
            ])
        output = nil
        inbound = nil
        closing = true
        context.close(promise: nil)
    }

    /// The connection is gone: what it held leaves the daemon's total.
    private func releaseQueuedReplies() {
        replyTimer?.cancel()
        replyTimer = nil
        if accountedReplyBytes != 0 {
            dispatcher.replyBytesQueued.subtract(accountedReplyBytes, ordering: .relaxed)
            accountedReplyBytes = 0
        }
        channelPending = 0
    }

    // MARK: Writing

    /// Appends one framed message to the output of this burst (written and flushed together).
    func writeFrame(_ body: (inout ByteBuffer) -> Void) {
        guard context != nil, context.channel.isActive else { return }
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

    /// Appends one framed message made of `pieces` (in order). Small messages are copied into the
    /// output like any other; a large one is written as its pieces, so that buffers it references
    /// (a batch's large results, `BatchReply.pieces`) reach the socket without being copied.
    func writeFrame(pieces: [ByteBuffer]) {
        guard context != nil, context.channel.isActive else { return }
        let total = pieces.reduce(0) { $0 + $1.readableBytes }
        guard total >= BatchReply.referencedResultBytes else {
            writeFrame { buffer in
                for piece in pieces { buffer.writeImmutableBuffer(piece) }
            }
            return
        }
        if output == nil { output = context.channel.allocator.buffer(capacity: 512) }
        if framing == .contentLength {
            output!.writeStaticString("Content-Length: ")
            output!.writeString(String(total))
            output!.writeStaticString("\r\n\r\n")
        }
        // What this burst wrote before, then the pieces, in order; the rest of the burst follows.
        if let before = output, before.readableBytes > 0 { context.write(wrapOutboundOut(before), promise: nil) }
        for piece in pieces { context.write(wrapOutboundOut(piece), promise: nil) }
        output = context.channel.allocator.buffer(capacity: 512)
        if framing == .newlineDelimited { output!.writeInteger(UInt8(ascii: "\n")) }
    }

    func flushIfNeeded() {
        guard context != nil, let pending = output else { return }
        output = nil
        context.writeAndFlush(wrapOutboundOut(pending), promise: nil)
        sampleQueuedReplies()
    }

    /// Flushes once after every reply completed in this event-loop tick has been written.
    func scheduleFlush() {
        guard !flushScheduled, context != nil else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushIfNeeded()
        }
    }

    func sendNotification(method: String, params: ByteBuffer?) {
        writeFrame { JSONWriter.writeNotification(method: method, params: params, into: &$0) }
        scheduleFlush()
    }

    func beginDrain(timeout: Duration) {
        guard !draining else { return }
        draining = true
        let params = ShuttingDown.Params(drainTimeoutMs: Int(timeout.milliseconds))
        sendNotification(method: ShuttingDown.name, params: try! RPCJSONEncoder().encode(params))
        closeIfIdle()
    }

    func forceClose() {
        cancelAll(.serverShutdown)
        draining = true
        closeIfIdle()
    }
}
