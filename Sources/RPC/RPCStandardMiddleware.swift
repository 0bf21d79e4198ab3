import Logging
import Metrics

/// Logs every call at `debug` (request number, method, duration, outcome) and every internal
/// error at `error`. The level check comes first, so a quiet server pays nothing for it.
public struct RPCLoggingMiddleware: RPCMiddleware {
    public init() {}

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        guard context.connection.logger.logLevel <= .debug else { return next(request, context) }
        let start = ContinuousClock.now
        let log: @Sendable (RPCOutcome) -> Void = { outcome in
            let micros = (ContinuousClock.now - start).microseconds
            var metadata: Logger.Metadata = ["duration_us": "\(micros)"]
            if let id = request.id { metadata["id"] = "\(id)" }
            switch outcome {
            case .result, .deprecatedResult: metadata["outcome"] = "ok"
            case .error(let error): metadata["outcome"] = "error \(error.code)"
            }
            context.logger.debug("call", metadata: metadata)
        }
        let reply = next(request, context)
        reply.whenComplete(log)
        return reply
    }
}

/// Counts calls and errors and records latency per method through swift-metrics
/// (`rpc_requests_total{method}`, `rpc_errors_total{method,code}`, and the timer
/// `rpc_request_duration_seconds{method}`, which a Prometheus backend renders as a histogram).
///
/// The metrics are made with the factory given, never with swift-metrics' global one: the daemon
/// passes the factory it also bootstrapped, and tests, which build many graphs in one process, each
/// pass their own (a fresh registry), so no test sees another's counts.
public struct RPCMetricsMiddleware: RPCMiddleware {
    private struct MethodMetrics: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
    }
    private let methods: [String: MethodMetrics]
    private let unknown: MethodMetrics
    private let factory: any MetricsFactory

    /// - Parameters:
    ///   - methodNames: the registered methods; anything else is counted as `unknown`, so a client
    ///     cannot grow the label set.
    ///   - factory: where the metrics are made (the backend that renders them).
    public init(methodNames: some Sequence<String>, factory: any MetricsFactory) {
        func metrics(_ method: String) -> MethodMetrics {
            MethodMetrics(
                requests: Counter(label: "rpc_requests_total", dimensions: [("method", method)], factory: factory),
                duration: Metrics.Timer(
                    label: "rpc_request_duration_seconds", dimensions: [("method", method)], preferredDisplayUnit: .seconds, factory: factory))
        }
        var methods: [String: MethodMetrics] = [:]
        for name in methodNames { methods[name] = metrics(name) }
        self.methods = methods
        self.unknown = metrics("unknown")
        self.factory = factory
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        let metrics = context.route == nil ? unknown : (methods[context.method] ?? unknown)
        let method = context.route == nil ? "unknown" : context.method
        metrics.requests.increment()
        let start = ContinuousClock.now
        let reply = next(request, context)
        let factory = self.factory
        switch reply {
        case .now(let outcome):
            // Recorded inline: no closure for calls that answered at once (the common case).
            Self.record(outcome, metrics: metrics, method: method, start: start, factory: factory)
        case .later(let future):
            future.whenSuccess { Self.record($0, metrics: metrics, method: method, start: start, factory: factory) }
        }
        return reply
    }

    private static func record(
        _ outcome: RPCOutcome, metrics: MethodMetrics, method: String, start: ContinuousClock.Instant, factory: any MetricsFactory
    ) {
        metrics.duration.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        if case .error(let error) = outcome {
            // Made on demand: codes are few, and the backend hands back the same series each time.
            Counter(label: "rpc_errors_total", dimensions: [("method", method), ("code", String(error.code.rawValue))], factory: factory).increment()
        }
    }
}

/// Cancels a call that runs longer than its method's timeout (or the server default); the call
/// then answers `-32001` with the limit. Calls answered at once are never timed.
public struct RPCTimeoutMiddleware: RPCMiddleware {
    let defaultTimeout: @Sendable () -> Duration

    public init(defaultTimeout: Duration) {
        self.defaultTimeout = { defaultTimeout }
    }

    /// The default is read at each call (it follows a reloaded configuration).
    public init(limits: RPCLimitsControl) {
        self.defaultTimeout = { limits.current.requestTimeout }
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        let reply = next(request, context)
        guard case .later(let future) = reply else { return reply }
        let limit = context.route?.timeout ?? defaultTimeout()
        let cancellation = context.cancellation
        let timer = context.eventLoop.scheduleTask(in: .nanoseconds(limit.nanoseconds)) {
            cancellation.cancel(.timedOut(limit: limit))
        }
        future.whenComplete { _ in timer.cancel() }
        return reply
    }
}

extension Duration {
    /// The whole nanoseconds of the duration.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    var microseconds: Int64 { nanoseconds / 1000 }
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
