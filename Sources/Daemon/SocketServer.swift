import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RPC
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The Unix-socket listener: binds (or refuses to, when another agentd is live), admits
/// connections within the limits, and drains them on graceful shutdown.
final class SocketServer: Service, Sendable {
    struct Options: Sendable {
        var path: String
        /// File mode of the socket (0600 by default: only our user may connect).
        var mode: mode_t
        /// Group that owns the socket, when connecting is shared with a group (mode 0660).
        var group: String?
        /// Whether `path` was given (flag, environment, file) rather than the default: a sticky
        /// system folder such as /tmp is then accepted as the socket's folder.
        var explicitPath = true
        /// A listening socket passed by systemd socket activation: served as it is, never
        /// unlinked (agentd did not create it).
        var activatedSocket: Int32?
        /// Peer uids recognised without a password (`server.trusted_uids`): their messages may be
        /// `max_message_bytes` from the first; others get `max_unauthenticated_message_bytes` until
        /// they sign in.
        var trustedUIDs: Set<UInt32> = []
    }

    private let options: Options
    private let dispatcher: RPCDispatcher
    private let group: any EventLoopGroup
    private let logger: Logger
    private let connections: ConnectionRegistry
    private let onListening: @Sendable () -> Void

    init(options: Options, dispatcher: RPCDispatcher, group: any EventLoopGroup, logger: Logger, onListening: @escaping @Sendable () -> Void = {}) {
        self.options = options
        self.dispatcher = dispatcher
        self.group = group
        self.logger = logger
        self.connections = ConnectionRegistry(limits: dispatcher.limitsControl)
        self.onListening = onListening
    }

    func run() async throws {
        let channel: any Channel
        if let fd = options.activatedSocket {
            channel = try await adopt(fd)
            logger.info("listening on a socket passed by the service manager", metadata: ["fd": "\(fd)"])
        } else {
            try prepareSocketPath()
            channel = try await bind()
            logger.info("listening", metadata: ["socket": "\(options.path)"])
        }
        onListening()

        // Serve until SIGTERM/SIGINT (the service group turns them into graceful shutdown).
        try? await gracefulShutdown()

        logger.info("shutting down: draining connections", metadata: ["connections": "\(connections.count)"])
        ServiceManager.notify("STOPPING=1\nSTATUS=draining \(connections.count) connections")
        try? await channel.close()
        let drainTimeout = dispatcher.limits.drainTimeout
        for connection in connections.all { connection.beginDrain(timeout: drainTimeout) }
        if await !connections.waitUntilEmpty(timeout: drainTimeout) {
            logger.warning("drain timeout: cancelling calls still running", metadata: ["connections": "\(connections.count)"])
            for connection in connections.all { connection.forceClose() }
            _ = await connections.waitUntilEmpty(timeout: .seconds(2))
        }
        if options.activatedSocket == nil { unlink(options.path) }
        logger.info("stopped")
    }

    /// Connections admitted and not closed yet (the `rpc_connections_open` gauge).
    var connectionCount: Int { connections.count }

    /// A one-line state for `STATUS=` (systemctl status shows it).
    var status: String {
        "serving \(connections.count) connections, \(dispatcher.callsInFlight.load(ordering: .relaxed)) calls in flight"
    }

    private func adopt(_ fd: Int32) async throws -> any Channel {
        let dispatcher = self.dispatcher
        let connections = self.connections
        let logger = self.logger
        let trustedUIDs = options.trustedUIDs
        return try await ServerBootstrap(group: group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                Self.initialize(channel, dispatcher: dispatcher, connections: connections, trustedUIDs: trustedUIDs, logger: logger)
            }
            .withBoundSocket(fd)
            .get()
    }

    /// Binds on a temporary name beside the final path, born with the configured mode (the umask
    /// during `bind`), gives it its group without following links, then renames it into place: a
    /// client can never reach the socket before its permissions are final, and no link planted at
    /// the temporary name can redirect a `chmod` or `chown` (issue 17).
    private func bind() async throws -> any Channel {
        let temporary = options.path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let previousMask = umask(~options.mode & 0o777)
        defer { umask(previousMask) }
        let dispatcher = self.dispatcher
        let connections = self.connections
        let logger = self.logger
        let trustedUIDs = options.trustedUIDs
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                Self.initialize(channel, dispatcher: dispatcher, connections: connections, trustedUIDs: trustedUIDs, logger: logger)
            }
            .bind(unixDomainSocketPath: temporary, cleanupExistingSocketFile: false)
            .get()
        do {
            if let groupName = options.group {
                guard let entry = getgrnam(groupName) else { throw DaemonError("unknown socket group \(groupName)") }
                guard lchown(temporary, uid_t.max, entry.pointee.gr_gid) == 0 else {
                    throw DaemonError("cannot give \(options.path) to group \(groupName): \(errnoDescription())")
                }
            }
            var status = stat()
            guard lstat(temporary, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK, status.st_uid == geteuid(),
                status.st_mode & 0o777 == options.mode & 0o777
            else {
                throw DaemonError(
                    "the socket at \(temporary) is not the one agentd bound with mode \(FileSystem.octal(options.mode)); refusing to use it")
            }
            guard rename(temporary, options.path) == 0 else {
                throw DaemonError("cannot move the socket into place at \(options.path): \(errnoDescription())")
            }
        } catch {
            try? await channel.close()
            unlink(temporary)
            throw error
        }
        return channel
    }

    private static func initialize(
        _ channel: any Channel, dispatcher: RPCDispatcher, connections: ConnectionRegistry, trustedUIDs: Set<UInt32>, logger: Logger
    ) -> EventLoopFuture<Void> {
        let credentials: EventLoopFuture<PeerCredentials> = (channel as! any SocketOptionProvider)
            .unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.flatMap { credentials in
            let peer = RPCPeer(uid: credentials.uid, gid: credentials.gid, pid: credentials.pid)
            switch connections.admit(peer: peer) {
            case .failure(let error):
                logger.warning("connection refused", metadata: ["peer": "\(peer)", "reason": "\(error.message)"])
                return refuse(channel, error)
            case .success(let id):
                var connectionLogger = logger
                connectionLogger[metadataKey: "connection"] = "\(id)"
                connectionLogger[metadataKey: "peer_uid"] = "\(peer.uid)"
                connectionLogger.debug("connection opened", metadata: ["peer_pid": "\(peer.pid)"])
                let closedLogger = connectionLogger
                channel.closeFuture.whenComplete { _ in
                    connections.remove(id)
                    closedLogger.debug("connection closed")
                }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = RPCConnectionHandler(
                        dispatcher: dispatcher, connectionID: id, peer: peer, logger: connectionLogger, signedIn: trustedUIDs.contains(peer.uid))
                    try channel.pipeline.syncOperations.addHandler(handler)
                    connections.register(id, handle: handler.handle)
                }
            }
        }
    }

    /// Tells the client why, then closes: a refused connection never just vanishes.
    private static func refuse(_ channel: any Channel, _ error: RPCError) -> EventLoopFuture<Void> {
        channel.writeAndFlush(error.unsolicitedReplyLine).whenComplete { _ in channel.close(promise: nil) }
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    /// Makes sure the socket can be bound: creates missing parent folders (0700) and refuses ones
    /// another user could tamper with, refuses when a live agentd answers on the path or when the
    /// path is not a socket, and removes a stale socket.
    private func prepareSocketPath() throws {
        let path = options.path
        guard path.utf8.count < 108 else {
            throw DaemonError("socket path is \(path.utf8.count) bytes; Unix sockets allow at most 107: \(path)")
        }
        try FileSystem.prepareSocketFolders(of: path, explicit: options.explicitPath)
        var status = stat()
        guard lstat(path, &status) == 0 else { return }  // nothing there
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw DaemonError("\(path) exists and is not a socket; refusing to replace it")
        }
        if FileSystem.socketAcceptsConnections(path) {
            throw DaemonError("another agentd is already listening on \(path); stop it first or choose another --socket")
        }
        logger.info("removing stale socket", metadata: ["socket": "\(path)"])
        guard unlink(path) == 0 || errno == ENOENT else {
            throw DaemonError("cannot remove stale socket \(path): \(errnoDescription())")
        }
    }
}

/// The kernel's `struct ucred` (SO_PEERCRED): Glibc's Swift module hides it behind _GNU_SOURCE,
/// so it is restated here with the identical layout.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Live connections: admission within the limits, lookup for draining, and a wake-up when the
/// last one closes.
final class ConnectionRegistry: Sendable {
    private struct State {
        var nextID: UInt64 = 1
        var perUID: [UInt32: Int] = [:]
        var uidOf: [UInt64: UInt32] = [:]
        var handles: [UInt64: RPCConnectionHandler.Handle] = [:]
        var emptyWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = NIOLockedValueBox(State())
    private let limitsControl: RPCLimitsControl

    init(limits: RPCLimitsControl) { self.limitsControl = limits }

    var count: Int { state.withLockedValue { $0.uidOf.count } }
    var all: [RPCConnectionHandler.Handle] { state.withLockedValue { Array($0.handles.values) } }

    func admit(peer: RPCPeer) -> Result<UInt64, RPCError> {
        let limits = limitsControl.current
        return state.withLockedValue { state in
            let total = state.uidOf.count
            if total >= limits.maxConnections {
                return .failure(
                    .limit(.tooManyConnections, "Too many connections", setting: "max_connections", limit: limits.maxConnections, actual: total + 1))
            }
            let mine = state.perUID[peer.uid, default: 0]
            if mine >= limits.maxConnectionsPerUID {
                return .failure(
                    .limit(
                        .tooManyConnectionsForUser, "Too many connections for this user", setting: "max_connections_per_uid",
                        limit: limits.maxConnectionsPerUID, actual: mine + 1))
            }
            let id = state.nextID
            state.nextID += 1
            state.perUID[peer.uid] = mine + 1
            state.uidOf[id] = peer.uid
            return .success(id)
        }
    }

    func register(_ id: UInt64, handle: RPCConnectionHandler.Handle) {
        state.withLockedValue { $0.handles[id] = handle }
    }

    func remove(_ id: UInt64) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            guard let uid = state.uidOf.removeValue(forKey: id) else { return [] }
            state.handles[id] = nil
            state.perUID[uid, default: 1] -= 1
            if state.perUID[uid] == 0 { state.perUID[uid] = nil }
            guard state.uidOf.isEmpty else { return [] }
            defer { state.emptyWaiters = [] }
            return state.emptyWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns true when every connection closed within `timeout`.
    func waitUntilEmpty(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLockedValue { state -> Bool in
                        if state.uidOf.isEmpty { return true }
                        state.emptyWaiters.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first {
                // Release the waiter so the group can finish.
                let waiters = state.withLockedValue { state in
                    defer { state.emptyWaiters = [] }
                    return state.emptyWaiters
                }
                for waiter in waiters { waiter.resume() }
            }
            group.cancelAll()
            return first
        }
    }
}
