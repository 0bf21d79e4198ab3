import Logging
import RPC
import Services

/// The composition root: the one place that picks implementations and wires the object graph.
/// Tests build the same graph through `Dependencies.make` with their own configuration.
struct Dependencies: Sendable {
    let dispatcher: RPCDispatcher

    static let server = RPCServerDescription(name: "agentd", version: AgentdVersion.current, apiVersions: ["1"])

    static func live(configuration: DaemonConfiguration, logger: Logger) -> Dependencies {
        let system = SystemService(server: server, clock: ContinuousClock())

        var router = RPCRouter()
        SystemRoutes(service: system, includeTestMethods: configuration.enableTestMethods).register(on: &router)
        router.describe(RPCConnectionHandler.ShuttingDown.self)

        // Order matters: metrics see every call (also ones refused further in), logging sees the
        // final outcome, the timeout wraps only the handler.
        let middleware: [any RPCMiddleware] = [
            RPCMetricsMiddleware(methodNames: router.routes.keys + ["rpc.discover"]),
            RPCLoggingMiddleware(),
            RPCTimeoutMiddleware(defaultTimeout: configuration.limits.requestTimeout),
        ]
        let dispatcher = RPCDispatcher(router: router, middleware: middleware, limits: configuration.limits, server: server, logger: logger)
        return Dependencies(dispatcher: dispatcher)
    }
}

enum AgentdVersion {
    static let current = "0.1.0"
}
