import Dispatch
import GRDB
import RPC
import Services
import Synchronization

/// Runs small writes from many callers in shared transactions ("group commit").
///
/// A WAL commit costs tens of microseconds whatever it holds, so one transaction per request caps
/// a busy write path at a few tens of thousands of writes per second on one core. Here each write
/// is queued; the first one schedules a transaction on GRDB's writer queue, and when that
/// transaction starts it takes every write queued by then (up to `maxBatch`). While it runs, new
/// writes queue up for the next one. A lone write therefore waits for nothing, and under load the
/// commit cost is shared by the whole batch.
///
/// `beforeCommit` is work for the whole batch, done in its transaction (indexing new rows for
/// search). With a `beforeCommitInterval` it runs in at most one batch per interval and in a
/// catch-up batch after a skip, so at a steady trickle of writes it is not paid per write;
/// `catchUpBeforeCommit()` is for readers who need it done now.
///
/// Each write runs in its own savepoint: one that throws is rolled back alone and its caller gets
/// the error; the others commit. A caller is resumed only after the transaction holding its write
/// has committed, so an acknowledged write is in the WAL (it survives `kill -9`, see
/// ``AgentDatabase``). When the commit itself fails, every write of the batch gets that error.
///
/// Message bytes charged to users by the batch's jobs (`StorageLedger.add`, `usage`) are written
/// to `user_usage` once per user, after the jobs and before the commit, in the same transaction:
/// the count and the data commit or roll back together. A job that fails takes its charges back
/// with its changes.
///
/// ```swift
/// let id = try await groupWriter.write { db in
///     try db.execute(sql: "INSERT INTO messages …", arguments: […])
///     return db.lastInsertedRowID
/// }
/// ```
public final class GroupCommitWriter: Sendable {
    /// The most writes one transaction takes; the rest wait for the next one, so one transaction
    /// never holds the write lock for long.
    public let maxBatch: Int
    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    /// Statements on the writer connection for jobs' hot paths (`statement(_:in:)`) and the
    /// per-job savepoints.
    private let rawStatements = RawStatementCache()
    /// The open batch's charges to users' stored bytes, not yet written (`StorageLedger`).
    let usage = BatchUsage()

    /// Writes waiting for a transaction; a transaction is scheduled while any wait.
    private let queued = CoalescingQueue<Job>()

    private struct State {
        /// When a committed batch last ran `beforeCommit` (nil: not since the writer was made).
        var beforeCommitRan: ContinuousClock.Instant?
        /// Some committed batch skipped `beforeCommit` and none ran it since. True at first: rows
        /// committed before a crash may be waiting for it.
        var beforeCommitOwed = true
        /// A catch-up batch is scheduled on `catchUpTimer`.
        var catchUpScheduled = false
    }

    /// One queued write: `run` executes it in the open transaction and returns how to finish it once
    /// the transaction's outcome is known.
    private struct Job: Sendable {
        let run: @Sendable (Database) -> Ran
        /// The job's batch may skip `beforeCommit` (see `write(…, urgent:)`).
        var urgent = false
        /// The job's batch runs `beforeCommit` whatever the interval (`catchUpBeforeCommit()`).
        var forcesBeforeCommit = false
    }

    private enum Ran {
        /// Done (committed or rolled back to its savepoint); call this with the transaction's outcome.
        case ran(@Sendable (Result<Void, any Error>) -> Void)
        /// The savepoint itself failed: the transaction is in an unknown state and is rolled back;
        /// the caller is finished with the transaction's error.
        case abortBatch(any Error, @Sendable (Result<Void, any Error>) -> Void)
    }

    /// Runs after a batch's jobs, before its commit, in its transaction (e.g. indexing what the
    /// jobs inserted, once per batch). When it throws, the batch is rolled back.
    private let beforeCommit: @Sendable (Database) throws -> Void
    /// `beforeCommit` runs at most this often: a batch sooner after the last run skips it, and a
    /// catch-up batch runs it this long after a skip when no batch did meanwhile. `.zero`: every
    /// batch runs it.
    public let beforeCommitInterval: Duration
    private let catchUpTimer = DispatchQueue(label: "agentd.group-commit.catch-up")
    /// Where `record(_:in:)` puts events; nil when this writer's jobs record none (tests).
    private let outbox: EventOutbox?

    public init(
        writer: any DatabaseWriter, maxBatch: Int = 256, outbox: EventOutbox? = nil, beforeCommitInterval: Duration = .zero,
        beforeCommit: @escaping @Sendable (Database) throws -> Void = { _ in }
    ) {
        precondition(maxBatch > 0)
        precondition(beforeCommitInterval >= .zero)
        self.writer = writer
        self.maxBatch = maxBatch
        self.outbox = outbox
        self.beforeCommitInterval = beforeCommitInterval
        self.beforeCommit = beforeCommit
    }

    /// Writes `event` in the job's transaction (the outbox): it is published once that
    /// transaction commits, and never when the job's changes roll back. Use it only inside a
    /// `write` job, after the change it describes.
    public func record(_ event: some DomainEvent, in db: Database) throws {
        try record([event], in: db)
    }

    /// `record(_:in:)` for several events, in one statement, in this order.
    public func record(_ events: [any DomainEvent], in db: Database) throws {
        try record(events, chatModule: .ofChat(rawStatements.statement(EventOutbox.chatModuleSQL, in: db)), in: db)
    }

    /// `record(_:in:)` for a job that has read the module of the events' chat already (nil: the
    /// chat is in none), which saves the outbox looking it up.
    public func record(_ events: [any DomainEvent], chatModuleID: String?, in db: Database) throws {
        try record(events, chatModule: .known(chatModuleID), in: db)
    }

    private func record(_ events: [any DomainEvent], chatModule: EventOutbox.ChatModule, in db: Database) throws {
        guard let outbox else { throw GroupCommitError.noOutbox }
        if events.isEmpty { return }
        try outbox.record(events, insert: rawStatements.statement(EventOutbox.insertSQL(rows: events.count), in: db), chatModule: chatModule, db: db)
    }

    /// How a job is kept apart from the others of its batch.
    public enum Isolation: Sendable {
        /// In its own savepoint: when the job throws, its changes are rolled back and the others
        /// commit.
        case savepoint
        /// No savepoint, for jobs that check everything before they write (the hot append path:
        /// with an FTS5 table written by triggers, every savepoint release flushes the full-text
        /// index, which made a savepoint cost more than the rest of the job). A job that throws
        /// before changing anything fails alone (its `usage` charges are taken back: they change
        /// nothing until the batch's end); one that throws after a change aborts the whole batch
        /// (rolled back, every caller gets the error), so nothing half-written commits.
        case checksBeforeWrites
    }

    /// Runs `work` inside a shared write transaction and returns its value once that transaction
    /// has committed.
    ///
    /// - Throws: what `work` threw (its changes are rolled back, the batch's others are not, see
    ///   `Isolation`), or the commit's error.
    ///
    /// `urgent`: the caller waits on the path to a user-visible answer (the agent's start, before the
    /// model is called). A batch of urgent jobs skips `beforeCommit` (indexing for search) even when
    /// it is due; a later batch does it (it works on everything inserted since it last ran).
    public func write<T: Sendable>(
        isolation: Isolation = .savepoint, urgent: Bool = false, _ work: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            var job = Job { db in
                var outcome: Result<T, any Error>
                let eventsMark = self.outbox?.mark ?? 0
                let usageMark = self.usage.mark
                let fail: @Sendable (Result<Void, any Error>) -> Void = { transaction in
                    if case .failure(let error) = transaction {
                        continuation.resume(throwing: error)
                    } else {
                        continuation.resume(throwing: GroupCommitError.batchAborted)
                    }
                }
                switch isolation {
                case .savepoint:
                    // On raw prepared statements: GRDB's `inSavepoint` parses its SQL on every call.
                    do {
                        try self.rawStatements.statement("SAVEPOINT group_write", in: db).run([])
                    } catch {
                        return .abortBatch(error, fail)
                    }
                    do {
                        outcome = .success(try work(db))
                        try self.rawStatements.statement("RELEASE SAVEPOINT group_write", in: db).run([])
                    } catch {
                        outcome = .failure(error)
                        self.outbox?.rollBack(to: eventsMark)
                        self.usage.rollBack(to: usageMark)
                        do {
                            try self.rawStatements.statement("ROLLBACK TO SAVEPOINT group_write", in: db).run([])
                            try self.rawStatements.statement("RELEASE SAVEPOINT group_write", in: db).run([])
                        } catch {
                            // The write's changes could not be taken back: the batch must not commit.
                            return .abortBatch(error, fail)
                        }
                    }
                case .checksBeforeWrites:
                    let changesBefore = db.totalChangesCount
                    do {
                        outcome = .success(try work(db))
                    } catch {
                        if db.totalChangesCount != changesBefore { return .abortBatch(error, fail) }
                        // Charges are no change to the database (`usage`): a job may charge, then
                        // fail before its first write, and fail alone.
                        outcome = .failure(error)
                        self.outbox?.rollBack(to: eventsMark)
                        self.usage.rollBack(to: usageMark)
                    }
                }
                let finished = outcome
                return .ran { transaction in
                    switch transaction {
                    case .failure(let error): continuation.resume(throwing: error)
                    case .success: continuation.resume(with: finished)
                    }
                }
            }
            job.urgent = urgent
            enqueue(job)
        }
    }

    /// Returns once `beforeCommit` has run in a committed batch after every batch committed so far:
    /// at once when none skipped it since it last ran, otherwise after a batch that runs it. For
    /// readers of what `beforeCommit` maintains (search reads the index it fills).
    public func catchUpBeforeCommit() async throws {
        guard state.withLock({ $0.beforeCommitOwed }) else { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            var job = Job { _ in .ran { continuation.resume(with: $0) } }
            job.forcesBeforeCommit = true
            enqueue(job)
        }
    }

    /// Whether `batch` (`urgent`: all its jobs are), starting `now`, runs `beforeCommit`.
    private func runsBeforeCommit(_ batch: [Job], urgent: Bool, now: ContinuousClock.Instant) -> Bool {
        if batch.contains(where: \.forcesBeforeCommit) { return true }
        if urgent { return false }
        guard let last = state.withLock({ $0.beforeCommitRan }) else { return true }
        return now - last >= beforeCommitInterval
    }

    /// After a commit: records whether the batch ran `beforeCommit`; when it did not, makes sure a
    /// batch does within `beforeCommitInterval` (not after an urgent batch: its caller writes
    /// again soon, the agent when its run ends, and that batch runs it or schedules the catch-up).
    private func committed(ranBeforeCommit: Bool, urgent: Bool, startedAt: ContinuousClock.Instant) {
        let scheduleCatchUp = state.withLock { state in
            if ranBeforeCommit {
                state.beforeCommitRan = startedAt
                state.beforeCommitOwed = false
                return false
            }
            state.beforeCommitOwed = true
            if urgent || state.catchUpScheduled { return false }
            state.catchUpScheduled = true
            return true
        }
        guard scheduleCatchUp else { return }
        catchUpTimer.asyncAfter(deadline: .now() + .nanoseconds(Int(beforeCommitInterval.nanoseconds))) { [self] in
            let owed = state.withLock { state in
                state.catchUpScheduled = false
                return state.beforeCommitOwed
            }
            guard owed else { return }
            var job = Job { _ in .ran { _ in } }
            job.forcesBeforeCommit = true
            enqueue(job)
        }
    }

    /// A raw prepared statement on the writer connection, for a job's hot path: use it only inside a
    /// `write` job (the writer's queue), never keep it.
    func statement(_ sql: String, in db: Database) throws -> RawStatement {
        try rawStatements.statement(sql, in: db)
    }

    /// Writes waiting for a transaction to take them (for tests and metrics).
    public var queuedCount: Int { queued.count }

    private func enqueue(_ job: Job) {
        if queued.append(job) { scheduleTransaction() }
    }

    private func scheduleTransaction() {
        writer.asyncWrite(
            { [self] db in
                // The writer queue runs one transaction at a time, so `inFlight` belongs to this one.
                var finishers: [@Sendable (Result<Void, any Error>) -> Void] = []
                var abort: (any Error)?
                let batch = takeBatch()
                let startedAt = ContinuousClock.now
                for job in batch {
                    switch job.run(db) {
                    case .ran(let finish): finishers.append(finish)
                    case .abortBatch(let error, let finish):
                        finishers.append(finish)
                        abort = abort ?? error
                    }
                }
                let urgent = batch.allSatisfy(\.urgent)
                let runsBeforeCommit = runsBeforeCommit(batch, urgent: urgent, now: startedAt)
                inFlight.withLock { $0 = InFlight(finishers: finishers, ranBeforeCommit: runsBeforeCommit, urgent: urgent, startedAt: startedAt) }
                if let abort { throw abort }
                try usage.write(in: db, statements: rawStatements)
                if runsBeforeCommit { try beforeCommit(db) }
            },
            completion: { [self] _, result in
                let batch = inFlight.withLock { inFlight in
                    defer { inFlight = InFlight() }
                    return inFlight
                }
                // Still on the writer's queue, so batches hand their events on in commit order.
                switch result {
                case .success:
                    committed(ranBeforeCommit: batch.ranBeforeCommit, urgent: batch.urgent, startedAt: batch.startedAt)
                    outbox?.committed()
                case .failure:
                    outbox?.discard()
                    usage.discard()
                }
                // Success: committed. Failure: the commit failed (every job catches its own error), so
                // the whole batch was rolled back and each caller gets the commit's error.
                for finish in batch.finishers { finish(result) }
            })
    }

    /// Takes up to `maxBatch` queued jobs for the transaction starting now; schedules another
    /// transaction when more are waiting.
    private func takeBatch() -> [Job] {
        let (batch, more) = queued.take(upTo: maxBatch)
        if more { scheduleTransaction() }
        return batch
    }

    /// The transaction in progress, read back once its outcome is known.
    private struct InFlight {
        var finishers: [@Sendable (Result<Void, any Error>) -> Void] = []
        var ranBeforeCommit = false
        var urgent = false
        var startedAt = ContinuousClock.now
    }

    private let inFlight = Mutex(InFlight())
}

/// Only if a rolled-back batch somehow reported success to a write that had aborted it.
enum GroupCommitError: Error {
    case batchAborted
    /// `record(_:in:)` on a writer built without an outbox.
    case noOutbox
}
