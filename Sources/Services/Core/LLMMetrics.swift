import Metrics

/// The metrics of calls to LLM providers, named now so that dashboards can be written before the
/// agent calls any provider. The agent records them, once per model request (retries included).
///
/// - `llm_request_duration_seconds{provider,model,outcome}`: a timer (a histogram with buckets up
///   to minutes in the daemon's Prometheus backend), one sample per provider request, retries
///   included; `outcome` is `ok` or `error`.
/// - `llm_tokens_total{provider,model,kind}`: tokens the provider reported, `kind` `input` or
///   `output`.
///
/// Labels come from the configuration (provider name, model), never from a client, so the series
/// stay few. Made with an explicit factory, like every metric of agentd (see `PrometheusMetrics`).
///
/// ```swift
/// let metrics = LLMMetrics(factory: factory)
/// metrics.request(provider: "openai", model: "gpt-4o", duration: elapsed, succeeded: true)
/// metrics.tokens(provider: "openai", model: "gpt-4o", input: usage.prompt, output: usage.completion)
/// ```
public struct LLMMetrics: Sendable {
    public static let requestDurationLabel = "llm_request_duration_seconds"
    public static let tokensLabel = "llm_tokens_total"

    private let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// One provider request, from sending it to its last byte.
    public func request(provider: String, model: String, duration: Duration, succeeded: Bool) {
        let (seconds, attoseconds) = duration.components
        Metrics.Timer(
            label: Self.requestDurationLabel,
            dimensions: [("provider", provider), ("model", model), ("outcome", succeeded ? "ok" : "error")],
            preferredDisplayUnit: .seconds, factory: factory
        ).recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The token usage a provider reported for one request.
    public func tokens(provider: String, model: String, input: Int, output: Int) {
        for (kind, count) in [("input", input), ("output", output)] where count > 0 {
            Counter(label: Self.tokensLabel, dimensions: [("provider", provider), ("model", model), ("kind", kind)], factory: factory)
                .increment(by: count)
        }
    }
}
