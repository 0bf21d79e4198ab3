import NIOCore
import RPC

#if canImport(Glibc)
import Glibc
#endif

/// Why a call could not be made or answered (a server's error reply is an `RPCError` instead).
public enum RPCClientError: Error, CustomStringConvertible, Equatable {
    /// Nothing accepts connections at `path` (missing file, refused, no permission).
    case cannotConnect(path: String, reason: String)
    /// The server closed the connection (or it broke) before the answer came.
    case connectionClosed
    /// No answer within the deadline.
    case timedOut
    /// The server sent something that is not a JSON-RPC response or notification.
    case malformed(String)

    public var description: String {
        switch self {
        case .cannotConnect(let path, let reason): "cannot connect to \(path): \(reason)"
        case .connectionClosed: "the connection to agentd was closed"
        case .timedOut: "agentd did not answer in time"
        case .malformed(let reason): "agentd sent a malformed message: \(reason)"
        }
    }
}

/// One JSON-RPC connection to agentd over its Unix socket, newline-delimited.
///
/// Blocking POSIX calls, not NIO, on purpose: a command-line client does one thing at a time on
/// one connection, and its interactive commands must wait on the socket, the terminal and a
/// signal at once. A single `poll(2)` over those descriptors (see `nextMessage(until:alsoWatching:)`)
/// does that without an event-loop thread, a task bridge or locks. The wire format itself is the
/// RPC library's: `RPCClientCodec` writes requests and parses replies, `RPCFrameDecoder` cuts the
/// stream into messages, replies' errors are `RPCError`s.
///
/// Not thread-safe: one thread uses a connection.
public final class RPCClientConnection {
    public let path: String
    /// The socket (for `poll` alongside other descriptors).
    public private(set) var fileDescriptor: Int32
    private var decoder = RPCFrameDecoder(maxMessageBytes: 1 << 30)
    private var buffer = ByteBuffer()
    private var nextID = 1
    private var sawEOF = false
    /// Notifications read while waiting for a reply, oldest first (`nextNotification` returns them).
    private var pendingNotifications: [(method: String, params: JSONFragment?)] = []
    /// Replies read while waiting for another one (a client that has several calls in flight).
    private var pendingReplies: [RPCID: Result<JSONFragment, RPCError>] = [:]

    /// Connects once.
    /// - Throws: `RPCClientError.cannotConnect` naming the path and the system's reason.
    public init(path: String) throws(RPCClientError) {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .cannotConnect(path: path, reason: Self.errorText(errno)) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw .cannotConnect(path: path, reason: "the path is longer than a Unix socket path may be")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .cannotConnect(path: path, reason: Self.errorText(code))
        }
        fileDescriptor = fd
    }

    deinit { close() }

    /// The uid of the process that listens on the other end (`SO_PEERCRED` on our end: the kernel's
    /// record of who called `listen`, which a server cannot forge). Nil when the system does not say.
    /// A client checks it before it sends a secret: a socket path in a shared folder may have been
    /// taken by another user (issue 17).
    public var serverUID: UInt32? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fileDescriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<PeerCredentials>.size)
        else { return nil }
        return credentials.uid
    }

    public func close() {
        if fileDescriptor >= 0 {
            Glibc.close(fileDescriptor)
            fileDescriptor = -1
        }
    }

    // MARK: Calls

    /// Calls `method` and waits for its reply; notifications that arrive meanwhile are kept for
    /// `nextNotification`.
    /// - Throws: the server's `RPCError`, or an `RPCClientError`.
    public func call(_ method: String, params: JSONFragment? = nil, timeout: Duration? = nil) throws -> JSONFragment {
        let id = try send(method, params: params)
        return try reply(to: id, until: timeout.map { ContinuousClock.now + $0 }).get()
    }

    /// A typed call: params encoded with the daemon's encoder, the result decoded with `JSONDecoder`.
    public func call<Params: Encodable, Result: Decodable>(
        _ method: String, _ params: Params, as: Result.Type = Result.self, timeout: Duration? = nil
    ) throws -> Result {
        let result = try call(method, params: JSONFragment(encoding: params), timeout: timeout)
        do {
            return try result.decode(Result.self)
        } catch {
            throw RPCClientError.malformed("the result of \(method) is not what was expected: \(error)")
        }
    }

    /// Sends a request without waiting; returns its id (wait with `reply(to:until:)`).
    @discardableResult
    public func send(_ method: String, params: JSONFragment? = nil) throws(RPCClientError) -> RPCID {
        let id = RPCID(nextID)
        nextID += 1
        try write(RPCClientCodec.request(id: id, method: method, params: params))
        return id
    }

    /// Sends a notification (no reply), e.g. `$/cancelRequest`.
    public func notify(_ method: String, params: JSONFragment? = nil) throws(RPCClientError) {
        try write(RPCClientCodec.request(id: nil, method: method, params: params))
    }

    /// Waits for the reply to `id`, keeping notifications (and other replies) that come first.
    public func reply(to id: RPCID, until deadline: ContinuousClock.Instant? = nil) throws(RPCClientError) -> Result<JSONFragment, RPCError> {
        while true {
            if let reply = pendingReplies.removeValue(forKey: id) { return reply }
            guard let message = try nextMessage(until: deadline) else { throw .timedOut }
            switch message {
            case .response(let replyID, let outcome):
                if replyID == id { return outcome }
                pendingReplies[replyID] = outcome
            case .notification(let method, let params):
                pendingNotifications.append((method, params))
            }
        }
    }

    /// The next notification: kept ones first, then from the socket (replies read meanwhile are
    /// kept for `reply(to:)`). Nil when the deadline passes or a descriptor of `alsoWatching`
    /// becomes readable.
    public func nextNotification(
        until deadline: ContinuousClock.Instant? = nil, alsoWatching others: [Int32] = []
    ) throws(RPCClientError) -> (method: String, params: JSONFragment?)? {
        while true {
            if !pendingNotifications.isEmpty { return pendingNotifications.removeFirst() }
            guard let message = try nextMessage(until: deadline, alsoWatching: others) else { return nil }
            switch message {
            case .response(let id, let outcome): pendingReplies[id] = outcome
            case .notification(let method, let params): return (method, params)
            }
        }
    }

    /// Whether a reply to `id` has already been read (by `nextNotification`).
    public func takeReply(to id: RPCID) -> Result<JSONFragment, RPCError>? {
        pendingReplies.removeValue(forKey: id)
    }

    // MARK: Reading

    /// The next message from the socket (ignoring the kept ones). Nil when `deadline` passes or one
    /// of `others` becomes readable (a signal's self-pipe, the terminal) before a message is complete.
    /// - Throws: `.connectionClosed` at end of stream, `.malformed` for a message that is not JSON-RPC.
    public func nextMessage(until deadline: ContinuousClock.Instant? = nil, alsoWatching others: [Int32] = []) throws(RPCClientError)
        -> RPCServerMessage?
    {
        while true {
            if let output = sawEOF ? decoder.nextAtEnd(&buffer) : decoder.next(&buffer) {
                switch output {
                case .message(let bytes):
                    do {
                        return try RPCClientCodec.parse(bytes)
                    } catch {
                        throw .malformed(error.description)
                    }
                case .event(.framingDetected):
                    continue
                case .event(.oversized), .event(.unframeable(_)):
                    throw .malformed("unframeable input")
                }
            }
            if sawEOF { throw .connectionClosed }
            var descriptors = [pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)]
            descriptors += others.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), Self.milliseconds(until: deadline))
            if ready < 0 {
                if errno == EINTR { continue }
                throw .connectionClosed
            }
            if ready == 0 { return nil }
            if descriptors.dropFirst().contains(where: { $0.revents != 0 }) { return nil }
            guard descriptors[0].revents != 0 else { continue }
            try fill()
        }
    }

    private func fill() throws(RPCClientError) {
        var received = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { raw in
            received = recv(fileDescriptor, raw.baseAddress, raw.count, 0)
            return max(received, 0)
        }
        if received < 0, errno == EINTR || errno == EAGAIN { return }
        // 0 is the end of the stream; an error (a reset) ends it too: no more replies will come.
        if received <= 0 { sawEOF = true }
    }

    private func write(_ bytes: ByteBuffer) throws(RPCClientError) {
        var offset = 0
        let total = bytes.readableBytes
        while offset < total {
            let sent = bytes.withUnsafeReadableBytes { raw in
                Glibc.send(fileDescriptor, raw.baseAddress! + offset, total - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw .connectionClosed
            }
            offset += sent
        }
    }

    static func milliseconds(until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let left = deadline - .now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

/// The kernel's `struct ucred`: Glibc's Swift module hides it behind _GNU_SOURCE, so it is restated
/// with the identical layout.
private struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
