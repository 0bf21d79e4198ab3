import Foundation
import RPC

/// The durable queue of background work. `SQLiteJobQueue` in Storage implements it (PostgreSQL
/// will too); its contract is one test suite (`JobQueueContractTests`) that runs against every
/// implementation.
///
/// Every change of a job's state writes its event (`JobsEvents`, filed under the owner; the
/// daemon's own jobs have none) in the same transaction. Times are passed in (`now`, `at`), never
/// read from a clock here, so tests drive leases and backoff with an injected clock.
///
/// Owner scoping: calls that take `ownerID` see only that owner's jobs (nil: the daemon's own);
/// another owner's job answers exactly like a missing one.
public protocol JobQueue: Sendable {
    /// Stores `job` as `queued` with `job.queued`. With an `idempotencyKey` the owner already used
    /// for this kind, stores nothing and answers that job (`created: false`), whatever its state.
    func enqueue(_ job: NewJob) async throws -> (job: Job, created: Bool)

    /// Claims up to `limit` jobs of `kinds` for `workerID`: queued ones due by `now` (`runAfter ≤
    /// now`), and running ones whose lease expired by `now` (their worker died: `recovered`),
    /// highest priority first, then earliest `runAfter`, then oldest. Each becomes `running`, its
    /// attempt counted, leased until `now + lease`, with `job.started`. Two workers never claim
    /// the same attempt.
    func claim(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) async throws -> [ClaimedJob]

    /// Renews the lease until `until` while it is this worker's. Never throws for a lost lease:
    /// answers `.lost`.
    func heartbeat(_ lease: JobLease, until: Date) async throws -> JobLeaseStatus

    /// Ends the attempt `succeeded` with its result and `job.succeeded`.
    ///
    /// - Throws: `JobsError.leaseLost` when the lease is no longer this worker's (nothing stored).
    func complete(_ lease: JobLease, result: JSONFragment?, at: Date) async throws -> Job

    /// `complete`, then `claim(kinds:workerID:limit:lease:now:)` for the same worker at `at`, in
    /// one write where the implementation can (one transaction on SQLite): a worker whose attempt
    /// ended takes its slot's next job without a second round trip to the database. A lost lease
    /// throws as `complete` does and claims nothing. `JobQueue`'s extension does the two calls.
    func complete(
        _ lease: JobLease, result: JSONFragment?, at: Date, thenClaim kinds: Set<String>, limit: Int, lease nextLease: Duration
    ) async throws -> (job: Job, claimed: [ClaimedJob])

    /// Ends the attempt as failed. With `retryAt` (a retriable error with attempts left) the job
    /// goes back to `queued`, due at `retryAt`, keeping `error` (no event: it is still live);
    /// otherwise it ends `failed` with `job.failed`. A job whose cancel was requested ends
    /// `cancelled` (`job.cancelled`) instead, whatever the error.
    ///
    /// - Throws: `JobsError.leaseLost` when the lease is no longer this worker's (nothing stored).
    func fail(_ lease: JobLease, error: JobError, retryAt: Date?, at: Date) async throws -> Job

    /// Cancels a job of `ownerID`: a queued one ends `cancelled` at once (`job.cancelled`); a
    /// running one is marked `cancelRequested` (its worker stops it: the worker that holds it in
    /// this process is told directly, another one learns it from its heartbeat); a finished one is
    /// answered as it is.
    ///
    /// - Throws: `JobsError.notFound` for no such job of this owner.
    func cancel(id: String, ownerID: String?, at: Date) async throws -> Job

    /// Gives an attempt back without ending it (graceful shutdown): the job is `queued` again, due
    /// `at`, its attempt not counted (no event: it stays live). A lost lease is ignored.
    func release(_ lease: JobLease, at: Date) async throws

    /// Makes a failed or cancelled job of `ownerID` queued again, due `at`, with one more attempt
    /// allowed (`job.queued`).
    ///
    /// - Throws: `JobsError.notFound`; `JobsError.invalidState` for a job that is not failed or cancelled.
    func retry(id: String, ownerID: String?, at: Date) async throws -> Job

    func job(id: String, ownerID: String?) async throws -> Job?

    /// Newest first (by `seq`), at most `query.limit` rows.
    func list(_ query: JobQuery) async throws -> [StoredJob]

    /// Retention (`jobs.prune`): deletes up to `limit` finished jobs (succeeded, failed,
    /// cancelled) of every owner, the daemon's too, whose `finishedAt` is before `finishedBefore`,
    /// oldest first, in one short write; queued and running jobs are never deleted. Returns how many
    /// went: fewer than `limit` means none older is left, so a caller prunes in batches (one
    /// transaction each) instead of holding the single writer for one long delete. No event: a
    /// pruned job is just gone (`job` answers nil, its idempotency key is free again).
    func prune(finishedBefore: Date, limit: Int) async throws -> Int

    /// The earliest moment a job of `kinds` becomes claimable (a queued job's `runAfter`, a running
    /// one's lease expiry), for a worker to sleep until; nil when there is none.
    func nextDue(kinds: Set<String>) async throws -> Date?
}

extension JobQueue {
    public func complete(
        _ lease: JobLease, result: JSONFragment?, at: Date, thenClaim kinds: Set<String>, limit: Int, lease nextLease: Duration
    ) async throws -> (job: Job, claimed: [ClaimedJob]) {
        let job = try await complete(lease, result: result, at: at)
        return (job, try await claim(kinds: kinds, workerID: lease.workerID, limit: limit, lease: nextLease, now: at))
    }
}
