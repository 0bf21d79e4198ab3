/// Renders the process's metrics as Prometheus text (exposition format 0.0.4): what
/// `system.metrics` answers and the daemon's `/metrics` listener serves.
///
/// The daemon gives `SystemService` its Prometheus implementation (`PrometheusMetrics`, in
/// `Daemon`); `Services` never sees the backend.
///
/// ```swift
/// struct FixedExposition: MetricsExposition {
///     func render() -> String { "# TYPE up gauge\nup 1\n" }
/// }
/// ```
public protocol MetricsExposition: Sendable {
    /// Every metric's current value, as `# TYPE` lines and `name{labels} value` samples.
    func render() -> String
}
