import Foundation
import RPC

/// The `jobs.*` methods' logic: one user's view of the queue. The queue does the work (owner
/// scoping, state changes, events); this validates params, pages and, for a running job's cancel,
/// tells the worker running it here at once instead of leaving it to the next heartbeat.
public struct JobsService: Sendable {
    public static let defaultListLimit = 50
    public static let maxListLimit = 200

    let queue: any JobQueue
    let clock: any WallClock
    let canceller: any JobCanceller
    let signal: JobWakeSignal?
    let replyBudget: ReplyBudget

    /// - Parameters:
    ///   - canceller: stops a running attempt in this process (the workers).
    ///   - signal: wakes this process's workers when a retried job is due (nil: none run here).
    public init(
        queue: any JobQueue, clock: any WallClock, canceller: any JobCanceller, signal: JobWakeSignal? = nil, replyBudget: ReplyBudget = ReplyBudget()
    ) {
        self.queue = queue
        self.clock = clock
        self.canceller = canceller
        self.signal = signal
        self.replyBudget = replyBudget
    }

    /// Newest first; the keyset cursor keeps pages correct while jobs are added.
    ///
    /// - Throws: `JobsError.invalid` (`limit`, `cursor`), `ReplyBudgetError`.
    public func list(_ params: Jobs.List.Params, userID: String) async throws -> KeysetPage<Job> {
        let limit = try JobsError.validLimit(params.limit, default: Self.defaultListLimit, max: Self.maxListLimit)
        let before = try params.cursor.map { try JobsError.position(cursor: $0, from: Jobs.List.name) }
        let rows = try await queue.list(JobQuery(ownerID: userID, state: params.state, kind: params.kind, beforeSeq: before, limit: limit + 1))
        return try KeysetPage(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.job)
    }

    /// - Throws: `JobsError.notFound` (also for another user's job), `ReplyBudgetError`.
    public func job(id: String, userID: String) async throws -> Job {
        guard let job = try await queue.job(id: id, ownerID: userID) else { throw JobsError.notFound(id: id) }
        return try replyBudget.check(job)
    }

    /// A queued job ends cancelled; a running one is marked, then its attempt here (if it runs in
    /// this process) is cancelled at once.
    ///
    /// - Throws: `JobsError.notFound` (also for another user's job).
    public func cancel(id: String, userID: String) async throws -> Job {
        let job = try await queue.cancel(id: id, ownerID: userID, at: clock.now())
        if job.state == .running { canceller.cancelRunning(jobID: id) }
        return job
    }

    /// - Throws: `JobsError.notFound`, `JobsError.invalidState` (a job neither failed nor cancelled).
    public func retry(id: String, userID: String) async throws -> Job {
        let job = try await queue.retry(id: id, ownerID: userID, at: clock.now())
        signal?.wake(kind: job.kind)
        return job
    }
}
