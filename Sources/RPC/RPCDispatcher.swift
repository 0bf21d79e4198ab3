import Logging
import NIOCore
import Synchronization

/// Limits that protect the server. Each one fails politely: an error naming the limit with
/// `data: {setting, limit, actual}`, the request's id where it can be known, and the connection
/// kept open where the framing allows it.
public struct RPCLimits: Sendable, Equatable {
    /// Largest message, in bytes. Bigger ones are skipped without being buffered and answered.
    public var maxMessageBytes = 16 * 1024 * 1024
    /// Largest message from a connection that is not signed in (`RPCConnectionHandler`'s
    /// `signedIn`, `RPCConnectionInfo.markSignedIn`): such a connection can only say hello, sign
    /// in or register, discover and ping, and none of those needs more, so a multi-MiB login is
    /// skipped unbuffered and unparsed, like a message over `maxMessageBytes`.
    public var maxUnauthenticatedMessageBytes = 64 * 1024
    /// Deepest JSON nesting in a message.
    public var maxJSONDepth = 64
    /// Most calls in one batch.
    public var maxBatchLength = 1000
    /// Calls running at once on one connection (a batch counts as its length). Past it the server
    /// stops reading the connection until calls finish: backpressure, not unbounded buffering.
    public var maxInFlightPerConnection = 256
    /// Connections open at once, in total and per peer uid: systemd's varlink defaults, so that one
    /// user's tool with a connection per worker fits (the units' LimitNOFILE= is above the total).
    public var maxConnections = 4096
    public var maxConnectionsPerUID = 1024
    /// Default time a call may run (methods may set their own).
    public var requestTimeout: Duration = .seconds(120)
    /// How long a graceful shutdown waits for calls in flight.
    public var drainTimeout: Duration = .seconds(10)
    /// How long a connection may hold a message it has begun and not finished (no complete message
    /// in between) before it is answered `-32019` and closed: slow-loris protection. A connection
    /// with no partial message is never timed out, however long it stays idle (editors, event
    /// subscribers); idle connections are bounded by `maxConnections` instead. Zero turns it off.
    public var frameTimeout: Duration = .seconds(30)
    /// Reply bytes a connection may hold that its client has not read (written, not yet taken by
    /// the socket). Past it the server runs none of the connection's calls until they drain, and
    /// closes it if they do not within `frameTimeout` (0: never). Also the most one batch's reply may hold:
    /// members past it answer `-32003` instead of their result.
    public var maxQueuedReplyBytesPerConnection = 16 << 20
    /// The same, summed over every connection: past it, connections that hold unread replies stop
    /// running calls (and are closed after `frameTimeout`), and a batch gets only what is left.
    public var maxQueuedReplyBytes = 256 << 20
    /// Whether `RPCRateLimitMiddleware` refuses anything.
    public var rateLimiting = true
    /// Per-caller budgets by method class (`RPCRateLimitMiddleware`); a class that is absent is not
    /// limited.
    public var rateClasses: [String: RPCRateClass] = RPCLimits.defaultRateClasses
    /// Peer uids whose calls are never rate limited (the daemon's own, by default: its user could
    /// stop the daemon anyway, and limits are there to protect users from each other).
    public var rateExemptUIDs: Set<UInt32> = []
    /// Params bytes per extra token a call costs (`RPCRateClass.cost`): a call costs 1 plus 1 per
    /// full `rateBytesPerToken` of params, so 1 MiB costs 17 at the default. 0: every call costs 1.
    public var rateBytesPerToken = 65536

    /// What a person typing never reaches and a script in a loop reaches within a second.
    public static let defaultRateClasses: [String: RPCRateClass] = [
        "read": RPCRateClass("read", perSecond: 200, burst: 1000),
        "write": RPCRateClass("write", perSecond: 100, burst: 500),
        "expensive": RPCRateClass("expensive", perSecond: 20, burst: 100),
        "auth": RPCRateClass("auth", perSecond: 1, burst: 20),
        // auth.register, per uid: a few accounts at once, then one a minute.
        "register": RPCRateClass("register", perSecond: 1.0 / 60, burst: 5),
        // agent.act (the agent issue): a few answers at once per user; the rate hardly matters.
        "agent": RPCRateClass("agent", perSecond: 2, burst: 20, maxConcurrent: 2),
        // files.upload.chunk: a token per 64 KiB (`rateBytesPerToken`), so about 125 MiB/s of
        // base64 with 256 MiB at once; the storage quota bounds what it can keep.
        "upload": RPCRateClass("upload", perSecond: 2000, burst: 4096),
    ]

    public init() {}
}

/// The limits in force, shared by the dispatcher, its middleware and the server, and replaceable
/// while serving (SIGHUP). Connections take their per-connection limits (message size, depth,
/// batch length, calls in flight) when they open; timeouts and connection caps apply at once.
public final class RPCLimitsControl: Sendable {
    private let state: Mutex<RPCLimits>

    public init(_ limits: RPCLimits) { state = Mutex(limits) }

    public var current: RPCLimits { state.withLock { $0 } }

    public func update(_ limits: RPCLimits) { state.withLock { $0 = limits } }
}

/// Describes the server in `session.hello`, `rpc.discover` and `system.version`.
public struct RPCServerDescription: Sendable {
    public var name: String
    public var version: String
    public var apiVersions: [String]
    /// What `session.hello` tells clients this server can do beyond plain calls.
    public var capabilities: [String]

    public init(name: String, version: String, apiVersions: [String], capabilities: [String] = []) {
        self.name = name
        self.version = version
        self.apiVersions = apiVersions
        self.capabilities = capabilities
    }
}

/// The connection attribute holding the API version `session.hello` chose.
public enum RPCAPIVersionKey: RPCConnectionAttributeKey {
    public typealias Value = String
}

/// Runs calls through the middleware chain to their handlers. Shared by every connection;
/// immutable once built.
public final class RPCDispatcher: Sendable {
    public let router: RPCRouter
    public let limitsControl: RPCLimitsControl
    /// The limits in force now.
    public var limits: RPCLimits { limitsControl.current }
    /// Calls answered later (running in a task) across all connections, for status reports.
    public let callsInFlight = Atomic<Int>(0)
    /// Reply bytes written on every connection and not yet taken by their sockets (what
    /// `RPCLimits.maxQueuedReplyBytes` bounds; the `rpc_reply_bytes_queued` gauge).
    public let replyBytesQueued = Atomic<Int>(0)
    public let logger: Logger
    /// Each API version's OpenRPC document (`rpc.discover`), generated once from the registry.
    public let openRPCDocuments: [String: JSONFragment]
    /// The version of calls on a connection without a handshake: the oldest one not deprecated,
    /// so `socat` users never need one.
    public let defaultVersion: String
    private let chain: RPCNext
    private let requestCounter = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - middleware: outermost first; every call passes through all of them in this order.
    public convenience init(router: RPCRouter, middleware: [any RPCMiddleware], limits: RPCLimits, server: RPCServerDescription, logger: Logger) {
        self.init(router: router, middleware: middleware, limits: RPCLimitsControl(limits), server: server, logger: logger)
    }

    public init(router: RPCRouter, middleware: [any RPCMiddleware], limits: RPCLimitsControl, server: RPCServerDescription, logger: Logger) {
        let versions = router.versions
        // A method only a newer version has would answer "Method not found" to every client that
        // never says session.hello: adding a method goes in every version (RPCRouter).
        let gaps = router.versionGaps
        precondition(gaps.isEmpty, "API versions: \(gaps.joined(separator: "; ")); register an added method in every version")
        let defaultVersion = (versions.first { $0.deprecation == nil } ?? versions[0]).name
        self.defaultVersion = defaultVersion
        // The documents describe the protocol's own methods too: generate them from the registry
        // with placeholders, then register the methods that serve them.
        var described = router
        described.onInline(RPCDiscover.self) { _, _ in .null }
        described.onInline(SessionHello.self) { _, _ in throw RPCError.internalError }
        var documents: [String: JSONFragment] = [:]
        for version in versions {
            documents[version.name] = OpenRPCDocument.generate(router: described, version: version, server: server)
        }
        // Served as these bytes, shared by every reply: encoding (or copying) ~100 KiB per call is
        // what made a batch of 1,000 calls cost 100 MB before anything was written.
        let encoded = documents.mapValues { ByteBuffer(string: $0.text) }
        var router = router
        router.onInlineEncoded(RPCDiscover.self) { params, context in
            let version = params.version ?? context.apiVersion
            guard let document = encoded[version] else { throw SessionHello.unsupported(field: "version", versions: versions) }
            return document
        }
        router.onInline(SessionHello.self) { params, context in
            try SessionHello.negotiate(params, context: context, versions: versions, server: server)
        }
        self.router = router
        self.openRPCDocuments = documents
        self.limitsControl = limits
        self.logger = logger
        let finalRouter = router
        var next = RPCNext { request, context in
            guard let route = context.route else {
                let elsewhere = finalRouter.versions(having: context.method)
                return .now(.error(.methodNotFound(request.method, apiVersion: context.apiVersion, availableIn: elsewhere)))
            }
            let reply = route.invoke(request, context)
            guard let notice = Self.deprecationNotice(route: route, version: context.apiVersion, versions: versions) else { return reply }
            return reply.map { outcome in
                if case .result(let result) = outcome { return .deprecatedResult(result, notice: notice) }
                return outcome
            }
        }
        for layer in middleware.reversed() {
            let inner = next
            next = RPCNext { request, context in layer.handle(request, context: context, next: inner) }
        }
        self.chain = next
    }

    /// The OpenRPC document of the newest version.
    public var openRPCDocument: JSONFragment { openRPCDocuments[router.versions.last!.name]! }

    /// Makes the context of one call: the method's version is the one its `vN.` prefix names, else
    /// the one the connection's `session.hello` chose, else `defaultVersion`.
    public func makeContext(for request: RPCRequest, connection: RPCConnectionInfo, eventLoop: any EventLoop) -> RPCContext {
        var method = request.method
        let version: String
        if let (prefixed, rest) = Self.versionPrefix(of: method), router.tables[prefixed] != nil {
            version = prefixed
            method = rest
        } else {
            version = connection.attributes[RPCAPIVersionKey.self] ?? defaultVersion
        }
        let route = router.route(method, version: version)
        return RPCContext(
            requestNumber: requestCounter.add(1, ordering: .relaxed).newValue, method: method, apiVersion: version, id: request.id,
            connection: connection, cancellation: route?.isInline ?? true ? .inert : RPCCancellation(), eventLoop: eventLoop,
            route: route)
    }

    /// `("1", "chats.list")` for `v1.chats.list`; nil when the name has no version prefix.
    static func versionPrefix(of method: String) -> (String, String)? {
        guard method.utf8.first == UInt8(ascii: "v"), let dot = method.firstIndex(of: ".") else { return nil }
        let digits = method[method.index(after: method.startIndex)..<dot]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return (String(digits), String(method[method.index(after: dot)...]))
    }

    /// `{"apiVersion":…,"method":…,"message":…}` when the method or its version is deprecated.
    static func deprecationNotice(route: RPCRoute, version: String, versions: [RPCAPIVersion]) -> ByteBuffer? {
        let versionNotice = versions.first { $0.name == version }?.deprecation
        guard let message = route.deprecation ?? versionNotice else { return nil }
        struct Notice: Encodable {
            var apiVersion: String
            var method: String
            var message: String
        }
        return try? RPCJSONEncoder().encode(Notice(apiVersion: version, method: route.name, message: message))
    }

    /// Runs one call through the middleware chain.
    public func dispatch(_ request: RPCRequest, context: RPCContext) -> RPCReply {
        chain(request, context)
    }
}

/// `rpc.discover`: the OpenRPC document of every method and notification of a version.
enum RPCDiscover: RPCMethod {
    static let name = "rpc.discover"
    static let summary =
        "Returns the OpenRPC document of an API version (default: the connection's): every method, its params, result and errors, and the notifications the server sends."
    static let rateClass: RPCRateClassName = .exempt
    struct Params: Codable, Sendable {
        var version: String?
    }
    typealias Result = JSONFragment
}

/// `session.hello`: the optional handshake that picks the connection's API version.
enum SessionHello: RPCMethod {
    static let name = "session.hello"
    static let summary =
        "Picks this connection's API version: the newest of apiVersions the server supports (without a handshake, calls use the oldest stable version). Answers the version chosen, the server's name and version, every version it supports and its capabilities."
    static let rateClass: RPCRateClassName = .exempt
    struct Client: Codable, Sendable {
        var name: String
        var version: String?
    }
    struct Params: Codable, Sendable {
        var client: Client?
        var apiVersions: [String]
    }
    struct Version: Codable, Sendable {
        var version: String
        var deprecated: String?
    }
    struct Server: Codable, Sendable {
        var name: String
        var version: String
    }
    struct Result: Codable, Sendable {
        var apiVersion: String
        var server: Server
        var apiVersions: [Version]
        var capabilities: [String]
    }
    static var errors: [RPCErrorDescription] {
        [
            RPCErrorDescription(
                .unsupportedAPIVersion, "Unsupported API version",
                data: "{field, requested, supported}: none of the versions asked for is served here")
        ]
    }

    static func negotiate(_ params: Params, context: RPCContext, versions: [RPCAPIVersion], server: RPCServerDescription) throws -> Result {
        let supported = versions.map(\.name)
        guard let chosen = supported.last(where: params.apiVersions.contains) else {
            throw unsupported(field: "apiVersions", requested: params.apiVersions, versions: versions)
        }
        context.connection.attributes[RPCAPIVersionKey.self] = chosen
        var metadata: Logger.Metadata = ["api_version": .string(chosen)]
        if let client = params.client { metadata["client"] = "\(client.name) \(client.version ?? "")" }
        context.logger.info("session.hello", metadata: metadata)
        return Result(
            apiVersion: chosen, server: Server(name: server.name, version: server.version),
            apiVersions: versions.map { Version(version: $0.name, deprecated: $0.deprecation) }, capabilities: server.capabilities)
    }

    static func unsupported(field: String, requested: [String] = [], versions: [RPCAPIVersion]) -> RPCError {
        struct Data: Encodable {
            var field: String
            var requested: [String]
            var supported: [String]
        }
        return RPCError(
            .unsupportedAPIVersion, "Unsupported API version",
            data: try? JSONFragment(encoding: Data(field: field, requested: requested, supported: versions.map(\.name))))
    }
}
