import Foundation
import RPC
import Services
import Synchronization

/// A minimal in-memory `JobQueue` for the agent's background-run tests, which drive the
/// `agent.run` handler by hand (claim, run, complete or fail) instead of through the workers: it
/// keeps the contract's states, attempts, idempotency keys, cancellation and lease expiry, and
/// nothing else (no events, no priorities, no paging).
final class AgentRunTestQueue: JobQueue {
    private let jobs = Mutex([String: Job]())
    private let leases = Mutex([String: JobLease]())

    var all: [Job] { jobs.withLock { Array($0.values) } }

    func enqueue(_ new: NewJob) async throws -> (job: Job, created: Bool) {
        jobs.withLock { jobs in
            if let key = new.idempotencyKey,
                let existing = jobs.values.first(where: { $0.idempotencyKey == key && $0.ownerID == new.ownerID && $0.kind == new.kind })
            {
                return (existing, false)
            }
            let job = Job(
                id: new.id, kind: new.kind, ownerID: new.ownerID, state: .queued, payload: new.payload, priority: new.priority,
                maxAttempts: new.maxAttempts, runAfter: new.runAfter, idempotencyKey: new.idempotencyKey, createdAt: new.runAfter,
                updatedAt: new.runAfter)
            jobs[job.id] = job
            return (job, true)
        }
    }

    func claim(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) async throws -> [ClaimedJob] {
        jobs.withLock { jobs in
            var claimed: [ClaimedJob] = []
            for (id, job) in jobs.sorted(by: { $0.value.createdAt < $1.value.createdAt }) where claimed.count < limit && kinds.contains(job.kind) {
                let recovered = job.state == .running && (job.leaseExpiresAt ?? .distantFuture) < now
                guard (job.state == .queued && job.runAfter <= now) || recovered else { continue }
                var next = job
                next.state = .running
                next.attempt += 1
                next.workerId = workerID
                next.leaseExpiresAt = now.addingTimeInterval(Double(lease.components.seconds))
                jobs[id] = next
                let held = JobLease(jobID: id, workerID: workerID, attempt: next.attempt)
                leases.withLock { $0[id] = held }
                claimed.append(ClaimedJob(job: next, lease: held, recovered: recovered))
            }
            return claimed
        }
    }

    func heartbeat(_ lease: JobLease, until: Date) async throws -> JobLeaseStatus {
        guard holds(lease), let job = jobs.withLock({ $0[lease.jobID] }) else { return .lost }
        return job.cancelRequested ? .cancelRequested : .held
    }

    func complete(_ lease: JobLease, result: JSONFragment?, at: Date) async throws -> Job {
        try end(lease) { job in
            job.state = .succeeded
            job.result = result
        }
    }

    func fail(_ lease: JobLease, error: JobError, retryAt: Date?, at: Date) async throws -> Job {
        try end(lease) { job in
            job.error = error
            if job.cancelRequested {
                job.state = .cancelled
            } else if let retryAt {
                job.state = .queued
                job.runAfter = retryAt
            } else {
                job.state = .failed
            }
        }
    }

    func cancel(id: String, ownerID: String?, at: Date) async throws -> Job {
        try jobs.withLock { jobs in
            guard var job = jobs[id], job.ownerID == ownerID else { throw JobsError.notFound(id: id) }
            switch job.state {
            case .queued: job.state = .cancelled
            case .running: job.cancelRequested = true
            case .succeeded, .failed, .cancelled: break
            }
            jobs[id] = job
            return job
        }
    }

    func release(_ lease: JobLease, at: Date) async throws {
        _ = try? end(lease) { job in
            job.state = .queued
            job.attempt -= 1
            job.runAfter = at
        }
    }

    func retry(id: String, ownerID: String?, at: Date) async throws -> Job {
        throw JobsError.notFound(id: id)
    }

    func job(id: String, ownerID: String?) async throws -> Job? {
        jobs.withLock { $0[id] }.flatMap { $0.ownerID == ownerID ? $0 : nil }
    }

    func list(_ query: JobQuery) async throws -> [StoredJob] { [] }

    func nextDue(kinds: Set<String>) async throws -> Date? { nil }

    func prune(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        jobs.withLock { jobs in
            let old = jobs.values.filter { $0.state.isFinished && ($0.finishedAt ?? .distantFuture) < cutoff }
                .sorted { $0.finishedAt! < $1.finishedAt! }.prefix(limit)
            for job in old { jobs[job.id] = nil }
            return old.count
        }
    }

    /// Expires every running job's lease (its worker died).
    func expireLeases() {
        jobs.withLock { jobs in
            for (id, job) in jobs where job.state == .running { jobs[id]?.leaseExpiresAt = .distantPast }
        }
    }

    @discardableResult
    func jobsForTests<T>(_ body: (inout [String: Job]) -> T) -> T { jobs.withLock { body(&$0) } }

    private func holds(_ lease: JobLease) -> Bool { leases.withLock { $0[lease.jobID] } == lease }

    private func end(_ lease: JobLease, _ change: (inout Job) -> Void) throws -> Job {
        guard holds(lease) else { throw JobsError.leaseLost(lease) }
        return jobs.withLock { jobs in
            var job = jobs[lease.jobID]!
            change(&job)
            job.leaseExpiresAt = nil
            jobs[lease.jobID] = job
            return job
        }
    }
}

extension AgentRunTestQueue {
    /// Forgets a job (as if its enqueue never happened).
    func remove(_ id: String) {
        _ = jobsForTests { $0.removeValue(forKey: id) }
    }

    /// Makes a claimed job queued again (not counted), as a release does.
    func requeue(_ id: String) {
        jobsForTests { jobs in
            if jobs[id]?.state == .running {
                jobs[id]?.state = .queued
                jobs[id]?.attempt -= 1
            }
        }
    }
}
