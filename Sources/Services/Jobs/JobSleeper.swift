/// How the workers wait (between heartbeats, until the next job is due, for a slot): injected so
/// that tests move time by hand instead of waiting.
public protocol JobSleeper: Sendable {
    /// Returns after `duration` (at once for zero or less).
    ///
    /// - Throws: `CancellationError` as soon as the calling task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The daemon's: `Task.sleep` on the continuous clock.
public struct TaskSleeper: JobSleeper {
    public init() {}

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return try Task.checkCancellation() }
        try await Task.sleep(for: duration)
    }
}
