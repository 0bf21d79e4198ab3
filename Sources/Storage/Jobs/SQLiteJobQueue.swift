import Foundation
import GRDB
import RPC
import Services

/// The job queue on SQLite: table `jobs` (0015). Writes go through the shared `GroupCommitWriter`
/// (a job's change and its event in one transaction, and many workers' claims and completions
/// sharing a commit), reads through the database's readers.
///
/// Each write is one or two raw statements (`UPDATE … RETURNING` reads the changed row back in the
/// same step) and checks before it writes, so it runs without a savepoint: at thousands of no-op
/// jobs a second every statement counts. A claim runs on the single writer connection inside one
/// transaction, which is why two workers can never be handed the same attempt.
///
/// A lease is the triple (id, worker, attempt): every write on a running job matches all three, so
/// a worker whose lease expired and whose job was claimed again (attempt + 1) changes nothing.
public struct SQLiteJobQueue: JobQueue {
    private let reader: any DatabaseReader
    /// Only for `prune`: a delete of many rows runs in a transaction of its own, not in a group
    /// commit, so it never holds up the small writes batched with it.
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter
    /// Only for `enqueue`'s `createdAt` (the protocol passes every other time in); the events'
    /// times come from the outbox's clock.
    private let clock: any WallClock

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, clock: any WallClock) {
        self.reader = writer
        self.writer = writer
        self.writes = groupWriter
        self.clock = clock
    }

    public func enqueue(_ new: NewJob) async throws -> (job: Job, created: Bool) {
        let writes = self.writes
        let now = Timestamp.text(clock.now())
        let runAfter = Timestamp.text(new.runAfter)
        let enqueued = try await writes.write(isolation: .checksBeforeWrites) { db -> Enqueued in
            if let key = new.idempotencyKey {
                let existing = try writes.statement(
                    "SELECT \(Self.columns) FROM jobs WHERE ifnull(owner_id, '') = ? AND kind = ? AND idempotency_key = ?", in: db)
                if let stored = try existing.rows([new.ownerID ?? "", new.kind, key], Self.job).first {
                    return Enqueued(job: stored.job, created: false)
                }
            }
            try writes.statement(
                """
                INSERT INTO jobs (id, owner_id, kind, state, payload, priority, max_attempts, run_after, idempotency_key, created_at, updated_at)
                VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)
                """, in: db
            ).run([new.id, new.ownerID, new.kind, new.payload.text, new.priority, new.maxAttempts, runAfter, new.idempotencyKey, now, now])
            if let owner = new.ownerID {
                try writes.record([JobsEvents.Queued(userID: owner, jobId: new.id, kind: new.kind, attempt: 0)], chatModuleID: nil, in: db)
            }
            let created = try Timestamp.date(now)
            let job = Job(
                id: new.id, kind: new.kind, ownerID: new.ownerID, state: .queued, payload: new.payload, priority: new.priority,
                maxAttempts: new.maxAttempts, runAfter: try Timestamp.date(runAfter), idempotencyKey: new.idempotencyKey, createdAt: created,
                updatedAt: created)
            return Enqueued(job: job, created: true)
        }
        return (enqueued.job, enqueued.created)
    }

    private struct Enqueued: Sendable {
        var job: Job
        var created: Bool
    }

    /// A lease that ends at `now` has expired (`nextDue` names that instant, so a worker that sleeps
    /// until then finds the job). A running job whose cancel was asked for and whose lease expired
    /// is not handed out: it ends `cancelled` (`job.cancelled`).
    public func claim(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) async throws -> [ClaimedJob] {
        guard !kinds.isEmpty, limit > 0 else { return [] }
        let writes = self.writes
        let claim = Claim(kinds: kinds, workerID: workerID, limit: limit, lease: lease, now: now)
        return try await writes.write(isolation: .checksBeforeWrites) { db in try claim.run(in: db, writes: writes) }
    }

    /// One write: the attempt's end and the next claim share a transaction (and a wait for the
    /// writer), which is half the writes of a busy worker.
    public func complete(
        _ lease: JobLease, result: JSONFragment?, at: Date, thenClaim kinds: Set<String>, limit: Int, lease nextLease: Duration
    ) async throws -> (job: Job, claimed: [ClaimedJob]) {
        let writes = self.writes
        let atText = Timestamp.text(at)
        let claim = Claim(kinds: kinds, workerID: lease.workerID, limit: limit, lease: nextLease, now: at)
        let done = try await writes.write(isolation: .checksBeforeWrites) { db -> CompletedAndClaimed in
            // Nothing is written before the end is: a lost lease throws with no change made.
            let job = try Self.complete(lease, result: result, at: atText, in: db, writes: writes)
            guard !kinds.isEmpty, limit > 0 else { return CompletedAndClaimed(job: job, claimed: []) }
            return CompletedAndClaimed(job: job, claimed: try claim.run(in: db, writes: writes))
        }
        return (done.job, done.claimed)
    }

    private struct CompletedAndClaimed: Sendable {
        var job: Job
        var claimed: [ClaimedJob]
    }

    /// A claim's statements, run inside a write of the group writer.
    private struct Claim: Sendable {
        let workerID: String
        let candidatesSQL: String
        let candidateArguments: [(any Sendable)?]
        let nowText: String
        let leaseText: String

        init(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) {
            let kinds = kinds.sorted()
            let marks = repeatElement("?", count: kinds.count).joined(separator: ", ")
            // The candidates: up to `limit` due queued jobs of each kind in claim order (one subquery
            // per kind: each reads its kind's index in that order and stops at `limit`, where one
            // `kind IN (…)` would sort every due job of the kinds) and up to `limit` running ones whose
            // lease expired, merged in claim order.
            let queued = """
                SELECT * FROM (
                    SELECT seq, state, cancel_requested, priority, run_after FROM jobs
                    WHERE state = 'queued' AND kind = ? AND run_after <= ? ORDER BY priority DESC, run_after, seq LIMIT ?)
                """
            candidatesSQL = """
                \(repeatElement(queued, count: kinds.count).joined(separator: "\nUNION ALL\n"))
                UNION ALL
                SELECT * FROM (
                    SELECT seq, state, cancel_requested, priority, run_after FROM jobs
                    WHERE state = 'running' AND kind IN (\(marks)) AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?)
                ORDER BY priority DESC, run_after, seq LIMIT ?
                """
            nowText = Timestamp.text(now)
            leaseText = Timestamp.text(now.addingTimeInterval(lease.timeInterval))
            var arguments: [(any Sendable)?] = []
            for kind in kinds { arguments += [kind, nowText, limit] }
            arguments += kinds
            arguments += [nowText, limit, limit]
            candidateArguments = arguments
            self.workerID = workerID
        }

        func run(in db: Database, writes: GroupCommitWriter) throws -> [ClaimedJob] {
            let candidates = try writes.statement(candidatesSQL, in: db).rows(candidateArguments) { row in
                Candidate(seq: row.integer(0), recovered: row.text(1) == JobState.running.rawValue, cancelRequested: row.integer(2) != 0)
            }
            if candidates.isEmpty { return [] }
            let start = try writes.statement(
                """
                UPDATE jobs SET state = 'running', attempt = attempt + 1, worker_id = ?, lease_expires_at = ?, started_at = ?, updated_at = ?
                WHERE seq = ? RETURNING \(SQLiteJobQueue.columns)
                """, in: db)
            var claimed: [ClaimedJob] = []
            var events: [any DomainEvent] = []
            for candidate in candidates {
                if candidate.recovered && candidate.cancelRequested {
                    // Its worker died after a cancel was asked for: the cancel wins, nothing runs again.
                    let end = try writes.statement(
                        "UPDATE jobs SET state = 'cancelled', lease_expires_at = NULL, finished_at = ?1, updated_at = ?1 WHERE seq = ?2 RETURNING \(SQLiteJobQueue.columns)",
                        in: db)
                    guard let job = try end.rows([nowText, candidate.seq], SQLiteJobQueue.job).first?.job else { continue }
                    if let owner = job.ownerID {
                        events.append(JobsEvents.Cancelled(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt))
                    }
                    continue
                }
                guard let job = try start.rows([workerID, leaseText, nowText, nowText, candidate.seq], SQLiteJobQueue.job).first?.job else {
                    continue
                }
                claimed.append(
                    ClaimedJob(job: job, lease: JobLease(jobID: job.id, workerID: workerID, attempt: job.attempt), recovered: candidate.recovered))
                if let owner = job.ownerID {
                    events.append(JobsEvents.Started(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt))
                }
            }
            try writes.record(events, chatModuleID: nil, in: db)
            return claimed
        }
    }

    private struct Candidate {
        var seq: Int64
        var recovered: Bool
        var cancelRequested: Bool
    }

    public func heartbeat(_ lease: JobLease, until: Date) async throws -> JobLeaseStatus {
        let writes = self.writes
        let untilText = Timestamp.text(until)
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            let renew = try writes.statement(
                "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND state = 'running' AND worker_id = ? AND attempt = ? RETURNING cancel_requested",
                in: db)
            guard let cancelRequested = try renew.firstRow([untilText, lease.jobID, lease.workerID, lease.attempt], { $0.integer(0) }) else {
                return .lost
            }
            return cancelRequested != 0 ? .cancelRequested : .held
        }
    }

    public func complete(_ lease: JobLease, result: JSONFragment?, at: Date) async throws -> Job {
        let writes = self.writes
        let atText = Timestamp.text(at)
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            try Self.complete(lease, result: result, at: atText, in: db, writes: writes)
        }
    }

    private static func complete(_ lease: JobLease, result: JSONFragment?, at atText: String, in db: Database, writes: GroupCommitWriter) throws
        -> Job
    {
        let end = try writes.statement(
            """
            UPDATE jobs SET state = 'succeeded', result = ?1, error_kind = NULL, error_message = NULL, lease_expires_at = NULL,
                finished_at = ?2, updated_at = ?2
            WHERE id = ?3 AND state = 'running' AND worker_id = ?4 AND attempt = ?5 RETURNING \(Self.columns)
            """, in: db)
        guard let job = try end.rows([result?.text, atText, lease.jobID, lease.workerID, lease.attempt], Self.job).first?.job else {
            throw JobsError.leaseLost(lease)
        }
        if let owner = job.ownerID {
            try writes.record(
                [JobsEvents.Succeeded(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt)], chatModuleID: nil, in: db)
        }
        return job
    }

    public func fail(_ lease: JobLease, error: JobError, retryAt: Date?, at: Date) async throws -> Job {
        let writes = self.writes
        let atText = Timestamp.text(at)
        let retryText = retryAt.map(Timestamp.text)
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            // One statement: the old `cancel_requested` decides between cancelled, queued for the
            // retry (due ?1) and failed; a job that ends keeps its worker for the record.
            let end = try writes.statement(
                """
                UPDATE jobs SET
                    state = CASE WHEN cancel_requested THEN 'cancelled' WHEN ?1 IS NOT NULL THEN 'queued' ELSE 'failed' END,
                    run_after = CASE WHEN cancel_requested OR ?1 IS NULL THEN run_after ELSE ?1 END,
                    worker_id = CASE WHEN cancel_requested OR ?1 IS NULL THEN worker_id END,
                    finished_at = CASE WHEN cancel_requested OR ?1 IS NULL THEN ?4 END,
                    error_kind = ?2, error_message = ?3, lease_expires_at = NULL, updated_at = ?4
                WHERE id = ?5 AND state = 'running' AND worker_id = ?6 AND attempt = ?7 RETURNING \(Self.columns)
                """, in: db)
            guard
                let job = try end.rows([retryText, error.kind, error.message, atText, lease.jobID, lease.workerID, lease.attempt], Self.job).first?
                    .job
            else { throw JobsError.leaseLost(lease) }
            if let owner = job.ownerID {
                switch job.state {
                case .cancelled:
                    try writes.record(
                        [JobsEvents.Cancelled(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt)], chatModuleID: nil, in: db)
                case .failed:
                    try writes.record(
                        [JobsEvents.Failed(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt, errorKind: error.kind)],
                        chatModuleID: nil, in: db)
                default: break
                }
            }
            return job
        }
    }

    public func cancel(id: String, ownerID: String?, at: Date) async throws -> Job {
        let writes = self.writes
        let atText = Timestamp.text(at)
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            let find = try writes.statement("SELECT \(Self.columns) FROM jobs WHERE id = ? AND owner_id IS ?", in: db)
            guard let job = try find.rows([id, ownerID], Self.job).first?.job else { throw JobsError.notFound(id: id) }
            switch job.state {
            case .queued:
                let end = try writes.statement(
                    "UPDATE jobs SET state = 'cancelled', finished_at = ?1, updated_at = ?1 WHERE id = ?2 RETURNING \(Self.columns)", in: db)
                guard let cancelled = try end.rows([atText, id], Self.job).first?.job else { throw JobsError.notFound(id: id) }
                if let owner = ownerID {
                    try writes.record(
                        [JobsEvents.Cancelled(userID: owner, jobId: id, kind: job.kind, attempt: job.attempt)], chatModuleID: nil, in: db)
                }
                return cancelled
            case .running:
                if job.cancelRequested { return job }
                // The worker stops it and ends it `cancelled` (`fail`), with the event.
                let mark = try writes.statement(
                    "UPDATE jobs SET cancel_requested = 1, updated_at = ?1 WHERE id = ?2 RETURNING \(Self.columns)", in: db)
                guard let marked = try mark.rows([atText, id], Self.job).first?.job else { throw JobsError.notFound(id: id) }
                return marked
            case .succeeded, .failed, .cancelled:
                return job
            }
        }
    }

    public func release(_ lease: JobLease, at: Date) async throws {
        let writes = self.writes
        let atText = Timestamp.text(at)
        try await writes.write(isolation: .checksBeforeWrites) { db in
            // A job whose cancel was asked for is not queued again: it ends cancelled.
            let giveBack = try writes.statement(
                """
                UPDATE jobs SET
                    state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
                    attempt = CASE WHEN cancel_requested THEN attempt ELSE attempt - 1 END,
                    run_after = CASE WHEN cancel_requested THEN run_after ELSE ?1 END,
                    worker_id = CASE WHEN cancel_requested THEN worker_id END,
                    finished_at = CASE WHEN cancel_requested THEN ?1 END,
                    lease_expires_at = NULL, updated_at = ?1
                WHERE id = ?2 AND state = 'running' AND worker_id = ?3 AND attempt = ?4 RETURNING \(Self.columns)
                """, in: db)
            guard let job = try giveBack.rows([atText, lease.jobID, lease.workerID, lease.attempt], Self.job).first?.job else { return }
            if job.state == .cancelled, let owner = job.ownerID {
                try writes.record(
                    [JobsEvents.Cancelled(userID: owner, jobId: job.id, kind: job.kind, attempt: job.attempt)], chatModuleID: nil, in: db)
            }
        }
    }

    public func retry(id: String, ownerID: String?, at: Date) async throws -> Job {
        let writes = self.writes
        let atText = Timestamp.text(at)
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            let find = try writes.statement("SELECT \(Self.columns) FROM jobs WHERE id = ? AND owner_id IS ?", in: db)
            guard let job = try find.rows([id, ownerID], Self.job).first?.job else { throw JobsError.notFound(id: id) }
            guard job.state == .failed || job.state == .cancelled else { throw JobsError.invalidState(id: id, state: job.state) }
            // At least one more attempt, never fewer than the job had left (a job cancelled while
            // queued keeps its retries).
            let requeue = try writes.statement(
                """
                UPDATE jobs SET state = 'queued', run_after = ?1, max_attempts = max(max_attempts, attempt + 1), cancel_requested = 0,
                    worker_id = NULL, lease_expires_at = NULL, finished_at = NULL, updated_at = ?1
                WHERE id = ?2 RETURNING \(Self.columns)
                """, in: db)
            guard let queued = try requeue.rows([atText, id], Self.job).first?.job else { throw JobsError.notFound(id: id) }
            if let owner = ownerID {
                try writes.record(
                    [JobsEvents.Queued(userID: owner, jobId: id, kind: queued.kind, attempt: queued.attempt)], chatModuleID: nil, in: db)
            }
            return queued
        }
    }

    public func job(id: String, ownerID: String?) async throws -> Job? {
        try await reader.unsafeRead { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.columns) FROM jobs WHERE id = ? AND owner_id IS ?"), arguments: [id, ownerID])
                .map { try Self.job($0).job }
        }
    }

    public func list(_ query: JobQuery) async throws -> [StoredJob] {
        var conditions = ["owner_id IS ?"]
        var arguments: StatementArguments = [query.ownerID]
        if let state = query.state {
            conditions.append("state = ?")
            arguments += [state.rawValue]
        }
        if let kind = query.kind {
            conditions.append("kind = ?")
            arguments += [kind]
        }
        if let before = query.beforeSeq {
            conditions.append("seq < ?")
            arguments += [before]
        }
        arguments += [query.limit]
        let sql = "SELECT \(Self.columns) FROM jobs WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq DESC LIMIT ?"
        let finalArguments = arguments
        return try await reader.unsafeRead { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map(Self.job)
        }
    }

    /// One statement in its own transaction, reading `jobs_finished` (0019) oldest first and
    /// stopping at `limit`: its cost is bounded by `limit`, whatever the table holds. Only
    /// finished jobs have a `finished_at`; the state is checked too, so that no live job is ever
    /// deleted whatever a row holds.
    public func prune(finishedBefore: Date, limit: Int) async throws -> Int {
        guard limit > 0 else { return 0 }
        let before = Timestamp.text(finishedBefore)
        return try await writer.write { db in
            try db.cachedStatement(
                sql: """
                    DELETE FROM jobs WHERE seq IN (
                        SELECT seq FROM jobs WHERE finished_at < ? AND state IN ('succeeded', 'failed', 'cancelled') ORDER BY finished_at LIMIT ?)
                    """
            ).execute(arguments: [before, limit])
            return db.changesCount
        }
    }

    public func nextDue(kinds: Set<String>) async throws -> Date? {
        guard !kinds.isEmpty else { return nil }
        let kinds = kinds.sorted()
        let marks = repeatElement("?", count: kinds.count).joined(separator: ", ")
        let sql = """
            SELECT min(due) FROM (
                SELECT min(run_after) AS due FROM jobs WHERE state = 'queued' AND kind IN (\(marks))
                UNION ALL
                SELECT min(lease_expires_at) FROM jobs WHERE state = 'running' AND kind IN (\(marks)))
            """
        let arguments = StatementArguments(kinds + kinds)
        let due = try await reader.unsafeRead { db in try String.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) }
        return try due.map(Timestamp.date)
    }

    // MARK: Rows

    /// Every column, in the order `job(text:integer:)` reads them.
    private static let columns = """
        seq, id, owner_id, kind, state, payload, priority, attempt, max_attempts, run_after, idempotency_key, result, error_kind,
        error_message, cancel_requested, worker_id, lease_expires_at, created_at, updated_at, started_at, finished_at
        """

    private static func job(_ row: RawStatement) throws -> StoredJob {
        try job(text: row.text, integer: row.integer)
    }

    private static func job(_ row: Row) throws -> StoredJob {
        try job(text: { row[Int($0)] }, integer: { row[Int($0)] })
    }

    private static func job(text: (Int32) -> String?, integer: (Int32) -> Int64) throws -> StoredJob {
        guard let stateText = text(4), let state = JobState(rawValue: stateText) else {
            throw DatabaseError(message: "jobs.state holds \(text(4) ?? "NULL")")
        }
        func required(_ column: Int32) throws -> String {
            guard let value = text(column) else { throw DatabaseError(message: "jobs: column \(column) is NULL") }
            return value
        }
        func date(_ column: Int32) throws -> Date? { try text(column).map(Timestamp.date) }
        let error = text(12).map { JobError(kind: $0, message: text(13) ?? "") }
        let job = Job(
            id: try required(1), kind: try required(3), ownerID: text(2), state: state, payload: JSONFragment(unchecked: try required(5)),
            priority: Int(integer(6)), attempt: Int(integer(7)), maxAttempts: Int(integer(8)), runAfter: try Timestamp.date(required(9)),
            idempotencyKey: text(10), result: text(11).map { JSONFragment(unchecked: $0) }, error: error, cancelRequested: integer(14) != 0,
            workerId: text(15), leaseExpiresAt: try date(16), createdAt: try Timestamp.date(required(17)),
            updatedAt: try Timestamp.date(required(18)), startedAt: try date(19), finishedAt: try date(20))
        return StoredJob(seq: integer(0), job: job)
    }
}

extension Duration {
    /// In seconds, for `Date` arithmetic.
    fileprivate var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
