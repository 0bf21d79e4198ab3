import Prometheus
import Services
import Synchronization

/// The daemon's metrics backend: one swift-prometheus registry, the swift-metrics factory that makes
/// metrics in it, and gauges read when the text is rendered. It renders `system.metrics` and the
/// `/metrics` listener's answer (`MetricsExposition`).
///
/// Every metric agentd makes (`RPCMetricsMiddleware`, `LLMMetrics`, the gauges here) is made
/// against `factory` explicitly, never through swift-metrics' global `MetricsSystem.factory`. The
/// global can be bootstrapped only once per process, while tests build the graph
/// (`Dependencies.testing`) many times in one process: each graph gets its own registry, so counts
/// never leak from one test into another and nothing depends on which test ran first. The daemon's
/// `run()` still bootstraps the global with this same factory, exactly once, so that what libraries
/// record through the global lands in the same exposition.
final class PrometheusMetrics: MetricsExposition {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    private struct SampledGauge: Sendable {
        let gauge: Prometheus.Gauge
        let sample: @Sendable () -> Int
    }
    /// Registered while the graph is built, read at each render.
    private let sampled = Mutex<[SampledGauge]>([])

    /// Call latency, 0.1 ms to 10 s: a ping answers in tens of microseconds, a database write in a
    /// millisecond or so, a password check in about a tenth of a second.
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// LLM provider requests take seconds to minutes.
    static let providerLatencyBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(20), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
    ]

    init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // swift-metrics timers become histograms with these buckets.
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        factory.durationHistogramBuckets = [LLMMetrics.requestDurationLabel: Self.providerLatencyBuckets]
        self.registry = registry
        self.factory = factory
    }

    /// Adds a gauge whose value is `sample()` at each render: cheaper than updating it on every
    /// change, and never out of step with what it counts.
    func gauge(_ name: String, help: String, sample: @escaping @Sendable () -> Int) {
        let gauge = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        sampled.withLock { $0.append(SampledGauge(gauge: gauge, sample: sample)) }
    }

    func render() -> String {
        // Two renders at once may both set a gauge; each sets a current value, so either is right.
        for gauge in sampled.withLock({ $0 }) { gauge.gauge.set(Int64(gauge.sample())) }
        return registry.emitToString()
    }
}
