import NIOCore
import Synchronization

extension RPCConnectionHandler {
    /// The thread-safe face of a connection. It lets go of its handler when the handler leaves the
    /// pipeline (`detach`): the handler holds its handle, so holding the handler back for good would
    /// keep every closed connection alive. Calls after that do nothing (a drain answers `false`).
    public final class Handle: RPCNotifier, RPCPushConnection, Sendable {
        public let eventLoop: any EventLoop
        private let handler: NIOLoopBoundBox<RPCConnectionHandler?>
        private let nextStreamID = Atomic<UInt64>(1)
        /// Push-stream operations not yet run on the event loop, in the order they were made. All
        /// of a connection's push operations go through here, so they keep their order; and
        /// operations made while the loop is busy (an event fan-out pass after another, while the
        /// loop still writes the first) are run by one task and leave in one write, so a loop that
        /// fell behind catches up with fewer system calls instead of one per pass and connection.
        private let pushOperations = CoalescingQueue<PushOperation>()

        private enum PushOperation: Sendable {
            case open(UInt64, openedBy: UInt64, RPCPushStreamOptions)
            case send(UInt64, [RPCPushMessage])
            case finish(UInt64, last: ByteBuffer)
            case close(UInt64)
            case drained(UInt64, CheckedContinuation<Bool, Never>)
        }

        init(eventLoop: any EventLoop, handler: RPCConnectionHandler) {
            self.eventLoop = eventLoop
            self.handler = NIOLoopBoundBox(handler, eventLoop: eventLoop)
        }

        /// On the event loop, when the handler is removed.
        func detach() {
            handler.value = nil
        }

        /// Runs `body` with the handler on the event loop, unless it has left the pipeline.
        private func withHandler(_ body: @escaping @Sendable (RPCConnectionHandler) -> Void) {
            let handler = self.handler
            eventLoop.execute {
                if let value = handler.value { body(value) }
            }
        }

        public func notify(method: String, params: ByteBuffer?) {
            // From a call's own task on the connection's loop (the agent's deltas): written now, not
            // one loop turn later, and so always before that call's reply.
            if eventLoop.inEventLoop {
                handler.value?.sendNotification(method: method, params: params)
                return
            }
            withHandler { $0.sendNotification(method: method, params: params) }
        }

        public func openPushStream(openedBy requestNumber: UInt64, _ options: RPCPushStreamOptions) -> RPCPushStream {
            let id = nextStreamID.wrappingAdd(1, ordering: .relaxed).oldValue
            // The stream's other operations queue behind this one. A stream opened after the
            // connection closed is ended at once.
            enqueue(.open(id, openedBy: requestNumber, options))
            return RPCPushStream(id: id, connection: self)
        }

        public func pushSend(stream: UInt64, _ messages: [RPCPushMessage]) {
            enqueue(.send(stream, messages))
        }

        public func pushFinish(stream: UInt64, last: ByteBuffer) {
            enqueue(.finish(stream, last: last))
        }

        public func pushClose(stream: UInt64) {
            enqueue(.close(stream))
        }

        public func pushDrained(stream: UInt64) async -> Bool {
            await withCheckedContinuation { continuation in enqueue(.drained(stream, continuation)) }
        }

        private func enqueue(_ operation: PushOperation) {
            if pushOperations.append(operation) { eventLoop.execute { self.runPushOperations() } }
        }

        /// On the event loop: runs every operation waiting, then flushes once.
        private func runPushOperations() {
            let operations = pushOperations.takeAll()
            guard let handler = handler.value else {
                for operation in operations {
                    switch operation {
                    case .open(_, _, let options): options.onEnd(.connectionClosed)
                    case .drained(_, let continuation): continuation.resume(returning: false)
                    case .send, .finish, .close: break
                    }
                }
                return
            }
            for operation in operations {
                switch operation {
                case .open(let id, let requestNumber, let options): handler.openPushStream(id, openedBy: requestNumber, options: options)
                case .send(let id, let messages): handler.pushSend(id, messages)
                case .finish(let id, let last): handler.pushFinish(id, last: last)
                case .close(let id): handler.pushClose(id)
                case .drained(let id, let continuation): handler.pushDrained(id, continuation)
                }
            }
            // A push comes in a task of its own (from another thread), not amid a read burst's
            // replies: flush now rather than in one more task.
            handler.flushIfNeeded()
        }

        /// Tells the client the server is stopping, refuses new calls, and closes the connection
        /// once its calls in flight have answered.
        public func beginDrain(timeout: Duration) {
            withHandler { $0.beginDrain(timeout: timeout) }
        }

        /// Cancels what still runs (answered with -32002) and closes.
        public func forceClose() {
            withHandler { $0.forceClose() }
        }
    }
}
