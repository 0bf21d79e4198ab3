import Foundation
import RPC

/// Where a job is. `queued` and `running` are live; the other three are ends (`jobs.retry` makes a
/// failed or cancelled job queued again, as a new attempt).
public enum JobState: String, RPCStringEnum {
    case queued, running, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Why a job failed (`kind` is the error's kind: an `LLMError.Kind`, `interrupted` for a job whose
/// worker died and whose kind may not run again, `internal`, …).
public struct JobError: Codable, Sendable, Equatable, Error {
    public var kind: String
    public var message: String

    public init(kind: String, message: String) {
        self.kind = kind
        self.message = message
    }

    /// A job whose worker stopped during its attempt (kill -9, a crash), of a kind that may not run again.
    public static let interrupted = JobError(kind: "interrupted", message: "the daemon stopped while the job ran; its kind does not run again")
}

/// One job of the queue (`jobs.get`): a unit of background work of one kind, for one owner.
public struct Job: Codable, Sendable, Equatable {
    /// `job_…`, opaque.
    public var id: String
    /// What runs it (`agent.run`, `chat.title`, `events.prune`, …).
    public var kind: String
    /// The user it is for; nil for the daemon's own jobs (retention). Not encoded: a user sees only
    /// their own jobs.
    public var ownerID: String?
    public var state: JobState
    /// The kind's input, as JSON.
    public var payload: JSONFragment
    /// Higher runs first among jobs that are due.
    public var priority: Int
    /// Attempts started so far (0 while first queued).
    public var attempt: Int
    /// Attempts allowed (the kind's maximum when it was enqueued).
    public var maxAttempts: Int
    /// Not claimed before this: the enqueue's delay, or the backoff after a retriable failure.
    public var runAfter: Date
    /// Unique per owner and kind: enqueueing again with it answers this job.
    public var idempotencyKey: String?
    /// What the last attempt returned (succeeded).
    public var result: JSONFragment?
    /// Why the last attempt failed (a failed job, or a queued one waiting for its retry).
    public var error: JobError?
    /// A cancel was asked for while the job ran: it ends `cancelled` when its worker stops.
    public var cancelRequested: Bool
    /// The worker holding the running attempt, and until when its lease holds.
    public var workerId: String?
    public var leaseExpiresAt: Date?
    public var createdAt: Date
    public var updatedAt: Date
    /// When the current (or last) attempt started, and when the job ended.
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(
        id: String, kind: String, ownerID: String?, state: JobState, payload: JSONFragment, priority: Int = 0, attempt: Int = 0,
        maxAttempts: Int = 1, runAfter: Date, idempotencyKey: String? = nil, result: JSONFragment? = nil, error: JobError? = nil,
        cancelRequested: Bool = false, workerId: String? = nil, leaseExpiresAt: Date? = nil, createdAt: Date, updatedAt: Date,
        startedAt: Date? = nil, finishedAt: Date? = nil
    ) {
        self.id = id
        self.kind = kind
        self.ownerID = ownerID
        self.state = state
        self.payload = payload
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.idempotencyKey = idempotencyKey
        self.result = result
        self.error = error
        self.cancelRequested = cancelRequested
        self.workerId = workerId
        self.leaseExpiresAt = leaseExpiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, kind, state, payload, priority, attempt, maxAttempts, runAfter, idempotencyKey, result, error, cancelRequested, workerId
        case leaseExpiresAt, createdAt, updatedAt, startedAt, finishedAt
    }
}

/// A job to enqueue.
public struct NewJob: Sendable, Equatable {
    public var id: String
    public var kind: String
    public var ownerID: String?
    public var payload: JSONFragment
    public var priority: Int
    public var maxAttempts: Int
    public var runAfter: Date
    public var idempotencyKey: String?

    public init(
        id: String, kind: String, ownerID: String?, payload: JSONFragment = JSONFragment(unchecked: "{}"), priority: Int = 0, maxAttempts: Int = 1,
        runAfter: Date, idempotencyKey: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.ownerID = ownerID
        self.payload = payload
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.runAfter = runAfter
        self.idempotencyKey = idempotencyKey
    }
}

/// A worker's hold on one attempt of a job: every call that changes a running job names it, and
/// is refused (`JobsError.leaseLost`) once another worker holds the job.
public struct JobLease: Sendable, Equatable, Hashable {
    public var jobID: String
    public var workerID: String
    public var attempt: Int

    public init(jobID: String, workerID: String, attempt: Int) {
        self.jobID = jobID
        self.workerID = workerID
        self.attempt = attempt
    }
}

/// A job as `claim` hands it to a worker.
public struct ClaimedJob: Sendable, Equatable {
    public var job: Job
    public var lease: JobLease
    /// The previous attempt was `running` when its lease expired: its worker died (kill -9, a
    /// crash). A kind that may not run again after a crash ends it `failed` (`JobError.interrupted`).
    public var recovered: Bool

    public init(job: Job, lease: JobLease, recovered: Bool) {
        self.job = job
        self.lease = lease
        self.recovered = recovered
    }
}

/// What a running job's lease is, as its heartbeat finds it.
public enum JobLeaseStatus: Sendable, Equatable {
    /// Held, renewed until the date asked.
    case held
    /// Held, and someone asked to cancel the job: the worker stops it and calls `fail` (it ends `cancelled`).
    case cancelRequested
    /// Another worker holds the job now (this one's lease expired), or it ended: stop, store nothing.
    case lost
}

/// What `JobQueue.list` selects: one owner's jobs (nil: the daemon's own), newest first.
public struct JobQuery: Sendable, Equatable {
    public var ownerID: String?
    public var state: JobState?
    public var kind: String?
    /// Only jobs with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int

    public init(ownerID: String?, state: JobState? = nil, kind: String? = nil, beforeSeq: Int64? = nil, limit: Int) {
        self.ownerID = ownerID
        self.state = state
        self.kind = kind
        self.beforeSeq = beforeSeq
        self.limit = limit
    }
}

/// A job with its position in the list.
public struct StoredJob: Sendable, Equatable {
    public var seq: Int64
    public var job: Job

    public init(seq: Int64, job: Job) {
        self.seq = seq
        self.job = job
    }
}
