import Logging
import NIOCore
import Synchronization

/// Limits that protect the server. Each one fails politely: an error naming the limit with
/// `data: {setting, limit, actual}`, the request's id where it can be known, and the connection
/// kept open where the framing allows it.
public struct RPCLimits: Sendable, Equatable {
    /// Largest message, in bytes. Bigger ones are skipped without being buffered and answered.
    public var maxMessageBytes = 16 * 1024 * 1024
    /// Deepest JSON nesting in a message.
    public var maxJSONDepth = 64
    /// Most calls in one batch.
    public var maxBatchLength = 1000
    /// Calls running at once on one connection (a batch counts as its length). Past it the server
    /// stops reading the connection until calls finish: backpressure, not unbounded buffering.
    public var maxInFlightPerConnection = 256
    /// Connections open at once, in total and per peer uid.
    public var maxConnections = 1024
    public var maxConnectionsPerUID = 256
    /// Default time a call may run (methods may set their own).
    public var requestTimeout: Duration = .seconds(120)
    /// How long a graceful shutdown waits for calls in flight.
    public var drainTimeout: Duration = .seconds(10)

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

/// Describes the server in `rpc.discover` and `system.version`.
public struct RPCServerDescription: Sendable {
    public var name: String
    public var version: String
    public var apiVersions: [String]

    public init(name: String, version: String, apiVersions: [String]) {
        self.name = name
        self.version = version
        self.apiVersions = apiVersions
    }
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
    public let logger: Logger
    /// The OpenRPC document (`rpc.discover`), generated once from the registry.
    public let openRPCDocument: JSONFragment
    private let chain: RPCNext
    private let requestCounter = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - middleware: outermost first; every call passes through all of them in this order.
    public convenience init(router: RPCRouter, middleware: [any RPCMiddleware], limits: RPCLimits, server: RPCServerDescription, logger: Logger) {
        self.init(router: router, middleware: middleware, limits: RPCLimitsControl(limits), server: server, logger: logger)
    }

    public init(router: RPCRouter, middleware: [any RPCMiddleware], limits: RPCLimitsControl, server: RPCServerDescription, logger: Logger) {
        // The document describes rpc.discover too: generate it from the registry with the method
        // in it, then register the method that serves it.
        var described = router
        described.onInline(RPCDiscover.self) { _, _ in .null }
        let document = OpenRPCDocument.generate(router: described, server: server)
        var router = router
        router.onInline(RPCDiscover.self) { _, _ in document }
        self.router = router
        self.openRPCDocument = document
        self.limitsControl = limits
        self.logger = logger
        var next = RPCNext { request, context in
            guard let route = context.route else { return .now(.error(.methodNotFound(request.method))) }
            return route.invoke(request, context)
        }
        for layer in middleware.reversed() {
            let inner = next
            next = RPCNext { request, context in layer.handle(request, context: context, next: inner) }
        }
        self.chain = next
    }

    /// Makes the context of one call.
    public func makeContext(for request: RPCRequest, connection: RPCConnectionInfo, eventLoop: any EventLoop) -> RPCContext {
        let route = router.routes[request.method]
        return RPCContext(
            requestNumber: requestCounter.add(1, ordering: .relaxed).newValue, method: request.method, id: request.id,
            connection: connection, cancellation: route?.isInline ?? true ? .inert : RPCCancellation(), eventLoop: eventLoop,
            route: route)
    }

    /// Runs one call through the middleware chain.
    public func dispatch(_ request: RPCRequest, context: RPCContext) -> RPCReply {
        chain(request, context)
    }
}

/// `rpc.discover`: the OpenRPC document of every method and notification.
enum RPCDiscover: RPCMethod {
    static let name = "rpc.discover"
    static let summary = "Returns the OpenRPC document describing every method, its params, result and errors, and the notifications the server sends."
    typealias Result = JSONFragment
}
