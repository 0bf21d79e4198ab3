import Logging
import RPC

/// `audit.prune`: the audit log's retention (`AuditService.prune`), a system job the daemon
/// enqueues every `audit.prune_interval_seconds` (`RecurringJobs`).
public struct AuditPruneJob: JobHandler {
    public static let kind = "audit.prune"

    /// Retried (the database busy, a disk full for a moment); running again after a crash only
    /// deletes what is still past retention.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: 3, rerunAfterCrash: true, baseBackoff: .seconds(10), maxBackoff: .seconds(120), lease: .seconds(60),
        isRetriable: { !($0 is CancellationError) })

    private let audit: AuditService
    private let logger: Logger

    public init(audit: AuditService, logger: Logger) {
        self.audit = audit
        self.logger = logger
    }

    /// `{deleted}`.
    public func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        let deleted = try await audit.prune()
        if deleted > 0 { logger.info("pruned audit entries", metadata: ["deleted": "\(deleted)"]) }
        return JSONFragment(unchecked: #"{"deleted":\#(deleted)}"#)
    }
}
