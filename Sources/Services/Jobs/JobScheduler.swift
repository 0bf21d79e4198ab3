import Foundation

/// How a domain puts work on the queue: `JobQueue.enqueue`, then it wakes this process's workers
/// (`JobWakeSignal`), so that a job due now starts at once instead of at the workers' next poll.
/// Services that enqueue take this, never the bare queue.
///
/// ```swift
/// let (job, _) = try await scheduler.enqueue(
///     NewJob(id: ids.makeID(prefix: "job_"), kind: "chat.title", ownerID: user.id, payload: payload, runAfter: clock.now()))
/// ```
public struct JobScheduler: Sendable {
    public let queue: any JobQueue
    private let signal: JobWakeSignal

    public init(queue: any JobQueue, signal: JobWakeSignal) {
        self.queue = queue
        self.signal = signal
    }

    /// Enqueues `job` (see `JobQueue.enqueue`) and wakes the workers for its kind.
    public func enqueue(_ job: NewJob) async throws -> (job: Job, created: Bool) {
        let enqueued = try await queue.enqueue(job)
        if enqueued.job.state == .queued { signal.wake(kind: job.kind) }
        return enqueued
    }

    /// Makes a failed or cancelled job queued again (see `JobQueue.retry`) and wakes the workers
    /// for its kind.
    public func retry(id: String, ownerID: String?, at: Date) async throws -> Job {
        let job = try await queue.retry(id: id, ownerID: ownerID, at: at)
        signal.wake(kind: job.kind)
        return job
    }
}
