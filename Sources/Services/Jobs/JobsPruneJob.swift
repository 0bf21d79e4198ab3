import Foundation
import Logging
import RPC

/// `jobs.prune`: the queue's own retention, a system job the daemon enqueues every
/// `jobs.prune_interval_seconds` (`RecurringJobs`). Finished jobs (succeeded, failed, cancelled)
/// of every owner whose `finishedAt` is older than `jobs.retention_days` are deleted; queued and
/// running ones never are. A user's failed job can be retried (`jobs.retry`) until then.
public struct JobsPruneJob: JobHandler {
    public static let kind = "jobs.prune"
    /// Jobs deleted per transaction (`JobQueue.prune`), so that a large backlog never holds the
    /// single writer for long: the other writes go between batches.
    public static let defaultBatchSize = 1000

    /// Retried (the database busy, a disk full for a moment); running again after a crash only
    /// deletes what is still past retention.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: 3, rerunAfterCrash: true, baseBackoff: .seconds(10), maxBackoff: .seconds(120), lease: .seconds(60),
        isRetriable: { !($0 is CancellationError) })

    private let queue: any JobQueue
    private let clock: any WallClock
    private let retention: TimeInterval
    private let batchSize: Int
    private let logger: Logger

    /// - Parameter retention: how long a finished job is kept (`jobs.retention_days`).
    public init(queue: any JobQueue, clock: any WallClock, retention: TimeInterval, batchSize: Int = defaultBatchSize, logger: Logger) {
        self.queue = queue
        self.clock = clock
        self.retention = retention
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// `{deleted}`. Batches until one comes back short; a cancel (shutdown) stops between batches,
    /// keeping what was deleted.
    public func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        // One cutoff for the whole run: the jobs finishing meanwhile are not chased.
        let cutoff = clock.now().addingTimeInterval(-retention)
        var deleted = 0
        while true {
            try Task.checkCancellation()
            let batch = try await queue.prune(finishedBefore: cutoff, limit: batchSize)
            deleted += batch
            if batch < batchSize { break }
        }
        if deleted > 0 { logger.info("pruned finished jobs", metadata: ["deleted": "\(deleted)"]) }
        return JSONFragment(unchecked: #"{"deleted":\#(deleted)}"#)
    }
}
