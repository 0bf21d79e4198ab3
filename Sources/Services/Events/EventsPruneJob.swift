import Logging
import RPC

/// `events.prune`: the events' retention (`EventsService.prune`), a system job the daemon enqueues
/// every `events.prune_interval_seconds` (`RecurringJobs`).
public struct EventsPruneJob: JobHandler {
    public static let kind = "events.prune"

    /// Retried (the database busy, a disk full for a moment); running again after a crash only
    /// deletes what is still past retention.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: 3, rerunAfterCrash: true, baseBackoff: .seconds(10), maxBackoff: .seconds(120), lease: .seconds(60),
        isRetriable: { !($0 is CancellationError) })

    private let events: EventsService
    private let logger: Logger

    public init(events: EventsService, logger: Logger) {
        self.events = events
        self.logger = logger
    }

    /// `{deleted, prunedThrough}`.
    public func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        let result = try await events.prune()
        if result.deleted > 0 {
            logger.info("pruned events", metadata: ["deleted": "\(result.deleted)", "pruned_through": "\(result.prunedThrough)"])
        }
        return JSONFragment(unchecked: #"{"deleted":\#(result.deleted),"prunedThrough":\#(result.prunedThrough)}"#)
    }
}
