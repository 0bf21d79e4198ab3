import Logging
import NIOCore
import Synchronization

/// Who is on the other end of a connection, from the kernel (SO_PEERCRED), not from the client.
public struct RPCPeer: Sendable, Hashable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32

    public init(uid: UInt32, gid: UInt32, pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }

    public var description: String { "uid=\(uid) gid=\(gid) pid=\(pid)" }
}

/// Sends server-initiated notifications on one connection, in the order they are sent.
public protocol RPCNotifier: Sendable {
    func notify(method: String, params: ByteBuffer?)
    /// Opens a push stream that starts once the reply to call `requestNumber` is written.
    func openPushStream(openedBy requestNumber: UInt64, _ options: RPCPushStreamOptions) -> RPCPushStream
}

/// One client connection, as handlers see it.
public final class RPCConnectionInfo: Sendable {
    public let id: UInt64
    public let peer: RPCPeer?
    public let logger: Logger
    /// Values the domains keep on this connection between calls (the authenticated principal, …).
    public let attributes = RPCConnectionAttributes()
    let notifier: any RPCNotifier
    private let signedIn = Atomic<Bool>(false)

    public init(id: UInt64, peer: RPCPeer?, logger: Logger, notifier: any RPCNotifier) {
        self.id = id
        self.peer = peer
        self.logger = logger
        self.notifier = notifier
    }

    /// The connection signed in (a password or a token): from its next read on, it may send
    /// messages up to `RPCLimits.maxMessageBytes` instead of `maxUnauthenticatedMessageBytes`.
    public func markSignedIn() {
        signedIn.store(true, ordering: .releasing)
    }

    var isSignedIn: Bool { signedIn.load(ordering: .acquiring) }

    /// Sends a notification to this client. Notifications sent from one task keep their order.
    public func notify<N: RPCNotification>(_: N.Type, _ params: N.Params) {
        do {
            notifier.notify(method: N.name, params: try RPCJSONEncoder().encode(params))
        } catch {
            logger.error("could not encode notification", metadata: ["notification": "\(N.name)", "error": "\(error)"])
        }
    }
}

/// What a handler knows about the call it is serving. One per call; cheap to copy.
public struct RPCContext: Sendable {
    /// Server-assigned, unique per process: the `request` field of every log line about this call.
    public let requestNumber: UInt64
    /// The method's name, without a `vN.` prefix.
    public let method: String
    /// The API version the call is served in.
    public let apiVersion: String
    /// The client's id; nil for a notification.
    public let id: RPCID?
    public let connection: RPCConnectionInfo
    public let cancellation: RPCCancellation
    public let eventLoop: any EventLoop
    /// The method's registration, nil when the method does not exist.
    public let route: RPCRoute?

    public init(
        requestNumber: UInt64, method: String, apiVersion: String, id: RPCID?, connection: RPCConnectionInfo,
        cancellation: RPCCancellation, eventLoop: any EventLoop, route: RPCRoute?
    ) {
        self.requestNumber = requestNumber
        self.method = method
        self.apiVersion = apiVersion
        self.id = id
        self.connection = connection
        self.cancellation = cancellation
        self.eventLoop = eventLoop
        self.route = route
    }

    /// Opens a server-push stream on this call's connection (an event subscription). Its messages
    /// are held until this call's reply is written; when the call answers with an error the
    /// stream ends (`.callFailed`).
    public func openPushStream(_ options: RPCPushStreamOptions) -> RPCPushStream {
        connection.notifier.openPushStream(openedBy: requestNumber, options)
    }

    /// The connection's logger with this call's request number and method.
    public var logger: Logger {
        var logger = connection.logger
        logger[metadataKey: "request"] = "\(requestNumber)"
        logger[metadataKey: "method"] = .string(method)
        return logger
    }
}
