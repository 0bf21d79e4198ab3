import Foundation
import Logging
import RPC

/// A job the daemon enqueues for itself at a fixed interval (retention), owned by no user.
public struct RecurringJob: Sendable, Equatable {
    public var kind: String
    /// Whole seconds, at least 1.
    public var interval: Duration
    public var payload: JSONFragment
    public var maxAttempts: Int

    public init(kind: String, interval: Duration, payload: JSONFragment = JSONFragment(unchecked: "{}"), maxAttempts: Int = 1) {
        self.kind = kind
        self.interval = interval
        self.payload = payload
        self.maxAttempts = maxAttempts
    }

    /// Every `interval`, a job of `handler`'s kind with its attempts.
    public init(_ handler: any JobHandler, every interval: Duration) {
        self.init(kind: handler.policy.kind, interval: interval, maxAttempts: handler.policy.maxAttempts)
    }

    /// Whole seconds of the interval (at least 1).
    var seconds: Int64 { max(1, interval.components.seconds) }

    /// The start of the interval slot that holds `date`: slots are aligned on the Unix epoch, so
    /// every process that shares the queue computes the same ones.
    public func slotStart(containing date: Date) -> Date {
        let epochSeconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let start = epochSeconds - ((epochSeconds % seconds) + seconds) % seconds
        return Date(timeIntervalSince1970: TimeInterval(start))
    }

    /// Names the slot that starts at `slotStart` (`600s@1800000000`): the occurrence's idempotency
    /// key, so that the slot's job is enqueued once however many times (and by however many
    /// daemons sharing the database) it is asked for.
    public func idempotencyKey(slotStart: Date) -> String {
        "\(seconds)s@\(Int64(slotStart.timeIntervalSince1970))"
    }
}

/// Enqueues each `RecurringJob`, at start and then at the start of every interval slot, as a
/// system job (owner nil) due at the slot's start, with an idempotency key naming the slot. The
/// workers run it like any other job (retries, leases, crash recovery). Runs until cancelled.
public struct RecurringJobs: Sendable {
    public let jobs: [RecurringJob]
    private let scheduler: JobScheduler
    private let ids: any IDGenerator
    private let clock: any WallClock
    private let sleeper: any JobSleeper
    private let logger: Logger

    public init(
        jobs: [RecurringJob], scheduler: JobScheduler, ids: any IDGenerator, clock: any WallClock, sleeper: any JobSleeper = TaskSleeper(),
        logger: Logger
    ) {
        self.jobs = jobs
        self.scheduler = scheduler
        self.ids = ids
        self.clock = clock
        self.sleeper = sleeper
        self.logger = logger
    }

    public func run() async {
        await withDiscardingTaskGroup { group in
            for job in jobs {
                group.addTask { await self.run(job) }
            }
        }
    }

    private func run(_ job: RecurringJob) async {
        while !Task.isCancelled {
            let now = clock.now()
            do {
                try await enqueueOccurrence(of: job, at: now)
            } catch {
                logger.error("could not enqueue a recurring job", metadata: ["kind": "\(job.kind)", "error": "\(error)"])
            }
            let next = job.slotStart(containing: now).addingTimeInterval(TimeInterval(job.seconds))
            do {
                try await sleeper.sleep(for: .seconds(max(0, next.timeIntervalSince(now))))
            } catch {
                return
            }
        }
    }

    /// Enqueues the occurrence of `job` for the slot holding `now`, due at the slot's start; the
    /// slot's job when it was enqueued already (`created: false`).
    @discardableResult
    public func enqueueOccurrence(of job: RecurringJob, at now: Date) async throws -> (job: Job, created: Bool) {
        let slotStart = job.slotStart(containing: now)
        let enqueued = try await scheduler.enqueue(
            NewJob(
                id: ids.makeID(prefix: "job_"), kind: job.kind, ownerID: nil, payload: job.payload, maxAttempts: job.maxAttempts, runAfter: slotStart,
                idempotencyKey: job.idempotencyKey(slotStart: slotStart)))
        if enqueued.created { logger.debug("enqueued a recurring job", metadata: ["kind": "\(job.kind)", "job_id": "\(enqueued.job.id)"]) }
        return enqueued
    }
}
