import Foundation
import RPC
import Services
import Synchronization

/// A `JobQueue` in memory, as the protocol's documentation describes it (its events kept in
/// `events`, published nowhere), run through the written-once contract (`JobQueueContractTests`)
/// beside `SQLiteJobQueue`. The workers' tests run against both; the agent's background-run tests drive the
/// `agent.run` handler by hand against it, with the test-only changes at the end (a worker's
/// death, a lost enqueue) that no protocol call makes.
public final class InMemoryJobQueue: JobQueue {
    private struct State {
        var jobs: [String: (seq: Int64, job: Job)] = [:]
        var seq: Int64 = 0
        var events: [JobEvent] = []

        /// Records `topic` for `job` when it has an owner (the daemon's own jobs write none).
        mutating func record(_ topic: String, _ job: Job) {
            if let owner = job.ownerID { events.append(JobEvent(topic: topic, ownerID: owner, jobID: job.id, attempt: job.attempt)) }
        }
    }

    /// An event the queue wrote: what `SQLiteJobQueue` stores in `events` (topic, owner, job, attempt).
    public struct JobEvent: Sendable, Equatable {
        public var topic: String
        public var ownerID: String
        public var jobID: String
        public var attempt: Int
    }

    /// The events written so far, oldest first.
    public var events: [JobEvent] { state.withLock { $0.events } }

    // Only touched under the mutex.
    private let state = Mutex(State())

    public init() {}

    private static func job(from new: NewJob, at now: Date) -> Job {
        Job(
            id: new.id, kind: new.kind, ownerID: new.ownerID, state: .queued, payload: new.payload, priority: new.priority,
            maxAttempts: new.maxAttempts,
            runAfter: new.runAfter, idempotencyKey: new.idempotencyKey, createdAt: now, updatedAt: now)
    }

    public func enqueue(_ new: NewJob) async throws -> (job: Job, created: Bool) {
        state.withLock { state in
            if let key = new.idempotencyKey,
                let existing = state.jobs.values.first(where: {
                    $0.job.idempotencyKey == key && $0.job.ownerID == new.ownerID && $0.job.kind == new.kind
                })
            {
                return (existing.job, false)
            }
            state.seq += 1
            let job = Self.job(from: new, at: new.runAfter)
            state.jobs[new.id] = (state.seq, job)
            state.record("job.queued", job)
            return (job, true)
        }
    }

    public func claim(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) async throws -> [ClaimedJob] {
        state.withLock { state in
            let candidates = state.jobs.values.filter { entry in
                guard kinds.contains(entry.job.kind) else { return false }
                switch entry.job.state {
                case .queued: return entry.job.runAfter <= now
                case .running: return (entry.job.leaseExpiresAt ?? .distantFuture) <= now
                default: return false
                }
            }
            .sorted { a, b in
                if a.job.priority != b.job.priority { return a.job.priority > b.job.priority }
                if a.job.runAfter != b.job.runAfter { return a.job.runAfter < b.job.runAfter }
                return a.seq < b.seq
            }
            .prefix(limit)
            var claimed: [ClaimedJob] = []
            for entry in candidates {
                var job = entry.job
                let recovered = job.state == .running
                if recovered && job.cancelRequested {
                    // Its worker died after a cancel was asked for: the cancel wins, nothing runs again.
                    job.state = .cancelled
                    job.leaseExpiresAt = nil
                    job.finishedAt = now
                    job.updatedAt = now
                    state.jobs[job.id] = (entry.seq, job)
                    state.record("job.cancelled", job)
                    continue
                }
                job.state = .running
                job.attempt += 1
                job.workerId = workerID
                job.leaseExpiresAt = now.addingTimeInterval(Self.seconds(lease))
                job.startedAt = now
                job.updatedAt = now
                state.jobs[job.id] = (entry.seq, job)
                state.record("job.started", job)
                claimed.append(ClaimedJob(job: job, lease: JobLease(jobID: job.id, workerID: workerID, attempt: job.attempt), recovered: recovered))
            }
            return claimed
        }
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func held(_ lease: JobLease, _ state: State) -> Job? {
        guard let job = state.jobs[lease.jobID]?.job, job.state == .running, job.workerId == lease.workerID, job.attempt == lease.attempt else {
            return nil
        }
        return job
    }

    public func heartbeat(_ lease: JobLease, until: Date) async throws -> JobLeaseStatus {
        state.withLock { state in
            guard var job = held(lease, state) else {
                return .lost
            }
            job.leaseExpiresAt = until
            state.jobs[job.id]!.job = job
            let status: JobLeaseStatus = job.cancelRequested ? .cancelRequested : .held
            return status
        }
    }

    public func complete(_ lease: JobLease, result: JSONFragment?, at: Date) async throws -> Job {
        try state.withLock { state in
            guard var job = held(lease, state) else { throw JobsError.leaseLost(lease) }
            job.state = .succeeded
            job.result = result
            job.finishedAt = at
            job.leaseExpiresAt = nil
            state.jobs[job.id]!.job = job
            state.record("job.succeeded", job)
            return job
        }
    }

    public func fail(_ lease: JobLease, error: JobError, retryAt: Date?, at: Date) async throws -> Job {
        try state.withLock { state in
            guard var job = held(lease, state) else { throw JobsError.leaseLost(lease) }
            job.error = error
            job.leaseExpiresAt = nil
            job.updatedAt = at
            if job.cancelRequested {
                job.state = .cancelled
                job.finishedAt = at
            } else if let retryAt {
                // Queued for the retry; a job that ends keeps its worker for the record.
                job.state = .queued
                job.runAfter = retryAt
                job.workerId = nil
            } else {
                job.state = .failed
                job.finishedAt = at
            }
            state.jobs[job.id]!.job = job
            if job.state != .queued { state.record("job.\(job.state.rawValue)", job) }
            return job
        }
    }

    public func cancel(id: String, ownerID: String?, at: Date) async throws -> Job {
        try state.withLock { state in
            guard var job = state.jobs[id]?.job, job.ownerID == ownerID else { throw JobsError.notFound(id: id) }
            switch job.state {
            case .queued:
                job.state = .cancelled
                job.finishedAt = at
                state.record("job.cancelled", job)
            case .running:
                job.cancelRequested = true
            default:
                break
            }
            state.jobs[id]!.job = job
            return job
        }
    }

    public func release(_ lease: JobLease, at: Date) async throws {
        state.withLock { state in
            guard var job = held(lease, state) else { return }
            job.leaseExpiresAt = nil
            job.updatedAt = at
            if job.cancelRequested {
                // Given back after a cancel was asked for: it ends cancelled rather than running again.
                job.state = .cancelled
                job.finishedAt = at
                state.jobs[job.id]!.job = job
                state.record("job.cancelled", job)
                return
            }
            job.state = .queued
            job.attempt -= 1
            job.runAfter = at
            job.workerId = nil
            state.jobs[job.id]!.job = job
        }
    }

    public func retry(id: String, ownerID: String?, at: Date) async throws -> Job {
        try state.withLock { state in
            guard var job = state.jobs[id]?.job, job.ownerID == ownerID else { throw JobsError.notFound(id: id) }
            guard job.state == .failed || job.state == .cancelled else { throw JobsError.invalidState(id: id, state: job.state) }
            job.state = .queued
            // One more attempt than those used, never fewer than it had (a job cancelled while queued keeps its own).
            job.maxAttempts = max(job.maxAttempts, job.attempt + 1)
            job.runAfter = at
            job.cancelRequested = false
            job.workerId = nil
            job.leaseExpiresAt = nil
            job.finishedAt = nil
            job.updatedAt = at
            state.jobs[id]!.job = job
            state.record("job.queued", job)
            return job
        }
    }

    public func job(id: String, ownerID: String?) async throws -> Job? {
        state.withLock { state in state.jobs[id].flatMap { $0.job.ownerID == ownerID ? $0.job : nil } }
    }

    public func list(_ query: JobQuery) async throws -> [StoredJob] {
        state.withLock { state in
            state.jobs.values.filter { entry in
                entry.job.ownerID == query.ownerID && (query.state.map { entry.job.state == $0 } ?? true)
                    && (query.kind.map { entry.job.kind == $0 } ?? true) && (query.beforeSeq.map { entry.seq < $0 } ?? true)
            }
            .sorted { $0.seq > $1.seq }.prefix(query.limit).map { StoredJob(seq: $0.seq, job: $0.job) }
        }
    }

    public func prune(finishedBefore: Date, limit: Int) async throws -> Int {
        state.withLock { state in
            let old = state.jobs.values.filter { entry in
                guard let finished = entry.job.finishedAt else { return false }
                return [.succeeded, .failed, .cancelled].contains(entry.job.state) && finished < finishedBefore
            }
            .sorted { $0.job.finishedAt! < $1.job.finishedAt! }.prefix(max(0, limit))
            for entry in old { state.jobs[entry.job.id] = nil }
            return old.count
        }
    }

    public func nextDue(kinds: Set<String>) async throws -> Date? {
        state.withLock { state in
            state.jobs.values.compactMap { entry -> Date? in
                guard kinds.contains(entry.job.kind) else { return nil }
                switch entry.job.state {
                case .queued: return entry.job.runAfter
                case .running: return entry.job.leaseExpiresAt
                default: return nil
                }
            }.min()
        }
    }
}

// What the protocol cannot do: the states a crash leaves behind, set by hand.
extension InMemoryJobQueue {
    /// Expires every running job's lease (its worker died): the next claim recovers it.
    public func expireLeases() {
        state.withLock { state in
            for (id, entry) in state.jobs where entry.job.state == .running { state.jobs[id]!.job.leaseExpiresAt = .distantPast }
        }
    }

    /// Forgets a job (as if its enqueue never happened).
    public func remove(_ id: String) {
        _ = state.withLock { $0.jobs.removeValue(forKey: id) }
    }

    /// Makes a claimed job queued again, its attempt not counted, as a release does (without the lease).
    public func requeue(_ id: String) {
        state.withLock { state in
            guard var job = state.jobs[id]?.job, job.state == .running else { return }
            job.state = .queued
            job.attempt -= 1
            job.leaseExpiresAt = nil
            job.workerId = nil
            state.jobs[id]!.job = job
        }
    }
}
