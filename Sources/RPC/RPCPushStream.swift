import NIOCore

/// One server-push message of a stream: its JSON in two parts written back to back, so that the
/// part shared by every stream a message goes to (an event's body) is encoded once and only the
/// small per-stream part (the notification's head, naming the subscription) differs.
public struct RPCPushMessage: Sendable {
    /// Where the message stands in its stream (an event's seq): reported back as the last one
    /// written when the stream overflows.
    public var position: Int64
    public var head: ByteBuffer
    public var body: ByteBuffer

    public init(position: Int64, head: ByteBuffer, body: ByteBuffer) {
        self.position = position
        self.head = head
        self.body = body
    }
}

/// Why a push stream ended.
public enum RPCPushStreamEnd: Sendable, Equatable {
    /// More than `capacity` messages waited for the client to read: the stream was cut after the
    /// last message written (nil: none was), and its overflow message was sent.
    case overflowed(lastWritten: Int64?)
    /// `finish(with:)`: everything sent was written, then the last message.
    case finished
    /// `close()`.
    case closed
    /// The call that opened it answered with an error.
    case callFailed
    /// The connection closed.
    case connectionClosed
}

/// What `RPCPushStream` needs from its connection (`RPCConnectionHandler.Handle`); a protocol so
/// that stream users can be tested without a socket.
public protocol RPCPushConnection: Sendable {
    func pushSend(stream: UInt64, _ messages: [RPCPushMessage])
    func pushFinish(stream: UInt64, last: ByteBuffer)
    func pushClose(stream: UInt64)
    func pushDrained(stream: UInt64) async -> Bool
}

/// A stream of server-push messages on one connection (an event subscription), with a bounded
/// queue of its own.
///
/// Messages are written as soon as the client reads. While the client does not read (the
/// connection is not writable), they wait in the stream's queue, and once more than `capacity`
/// wait the stream ends: the waiting messages are dropped, the stream's overflow message (made
/// from the position of the last message written) is written instead, and `onEnd` is called. So
/// memory stays bounded, nothing is dropped without the client being told where it stopped, and
/// other streams and replies on the connection, and other connections, carry on.
///
/// A stream opened by a call starts after that call's reply: messages sent before are held, so the
/// client always learns the stream's name (the subscription id) before its first message.
///
/// Thread-safe; messages sent from one thread keep their order.
public final class RPCPushStream: Sendable {
    public let id: UInt64
    private let connection: any RPCPushConnection

    init(id: UInt64, connection: any RPCPushConnection) {
        self.id = id
        self.connection = connection
    }

    public func send(_ messages: [RPCPushMessage]) {
        if messages.isEmpty { return }
        connection.pushSend(stream: id, messages)
    }

    /// Writes what was sent, then `last`, then ends the stream (`.finished`).
    public func finish(with last: ByteBuffer) {
        connection.pushFinish(stream: id, last: last)
    }

    /// Ends the stream now; messages not written yet are dropped.
    public func close() {
        connection.pushClose(stream: id)
    }

    /// Waits until every message sent so far is written and the connection can take more; false
    /// when the stream ended first. For a sender with a backlog (a catch-up from the database) that
    /// must not outrun the client.
    public func drained() async -> Bool {
        await connection.pushDrained(stream: id)
    }
}

/// How a push stream is opened: its queue bound, its overflow message and who hears its end.
public struct RPCPushStreamOptions: Sendable {
    public var capacity: Int
    /// The notification written in place of the dropped messages, from the position of the last
    /// message written.
    public var overflowMessage: @Sendable (_ lastWritten: Int64?) -> ByteBuffer
    /// Called once, on any thread, when the stream ends.
    public var onEnd: @Sendable (RPCPushStreamEnd) -> Void

    public init(capacity: Int, overflowMessage: @escaping @Sendable (Int64?) -> ByteBuffer, onEnd: @escaping @Sendable (RPCPushStreamEnd) -> Void) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.overflowMessage = overflowMessage
        self.onEnd = onEnd
    }
}
