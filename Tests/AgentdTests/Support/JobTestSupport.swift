import Daemon
import Foundation
import GRDB
import JobQueueTesting
import RPC
import Services
import Storage
import Synchronization

/// Streams of what changed, for tests that wait for a condition instead of sleeping: every
/// `notify()` wakes each `wait(until:)` to check its condition again.
final class ChangeFeed: Sendable {
    // Only touched under the mutex.
    private let listeners = Mutex<[Int: AsyncStream<Void>.Continuation]>([:])
    private let nextID = Mutex(0)

    func notify() {
        for listener in listeners.withLock({ Array($0.values) }) { listener.yield() }
    }

    /// Returns once `condition` holds (checked now and after every change).
    func wait(until condition: () -> Bool) async {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = nextID.withLock {
            $0 += 1
            return $0
        }
        listeners.withLock { $0[id] = continuation }
        defer { _ = listeners.withLock { $0.removeValue(forKey: id) } }
        if condition() { return }
        for await _ in stream {
            if condition() || Task.isCancelled { return }
        }
    }
}

/// A clock and a sleeper the test moves by hand: `sleep(for:)` returns once `advance(by:)` moves
/// the clock past its deadline.
final class ManualTime: WallClock, JobSleeper {
    private struct Sleeper {
        var deadline: Date
        var duration: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    // Only touched under the mutex; continuations are resumed after it is released.
    private let state: Mutex<State>
    let changes = ChangeFeed()

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = Mutex(State(now: start))
    }

    func now() -> Date { state.withLock { $0.now } }

    /// The durations of the sleeps waiting now.
    var pendingSleeps: [Duration] { state.withLock { $0.sleepers.values.map(\.duration) } }

    func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return try Task.checkCancellation() }
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
                    state.sleepers[id] = Sleeper(deadline: state.now.addingTimeInterval(seconds), duration: duration, continuation: continuation)
                    return false
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    changes.notify()
                }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
            changes.notify()
        }
    }

    /// Moves the clock and ends the sleeps whose deadline it reached.
    func advance(by seconds: TimeInterval) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now.addingTimeInterval(seconds)
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
        changes.notify()
    }

    /// Returns once a sleep of `duration` waits (registered after the call's caller started it).
    func waitForSleep(of duration: Duration, count: Int = 1) async {
        await changes.wait { pendingSleeps.filter { $0 == duration }.count >= count }
    }
}

/// Forwards to a queue and records each call that changes a job, so that a test waits for the
/// call it expects (`changes`), never for time.
final class RecordingJobQueue: JobQueue {
    enum Call: Sendable, Equatable {
        case claim(kinds: Set<String>, claimed: [String])
        case heartbeat(jobID: String, until: Date, status: JobLeaseStatus)
        case complete(jobID: String)
        case fail(jobID: String, error: JobError, retryAt: Date?)
        case release(jobID: String)
        case prune(finishedBefore: Date, limit: Int, deleted: Int)
    }

    let base: any JobQueue
    // Only touched under the mutex.
    private let recorded = Mutex<[Call]>([])
    let changes = ChangeFeed()

    init(_ base: any JobQueue) {
        self.base = base
    }

    var calls: [Call] { recorded.withLock { $0 } }

    /// The jobs completed, in order.
    var completed: [String] { calls.compactMap { if case .complete(let id) = $0 { id } else { nil } } }

    private func record(_ call: Call) {
        recorded.withLock { $0.append(call) }
        changes.notify()
    }

    /// Returns once a recorded call matches.
    func waitFor(_ matches: @escaping (Call) -> Bool) async {
        await changes.wait { calls.contains(where: matches) }
    }

    func enqueue(_ job: NewJob) async throws -> (job: Job, created: Bool) { try await base.enqueue(job) }

    func claim(kinds: Set<String>, workerID: String, limit: Int, lease: Duration, now: Date) async throws -> [ClaimedJob] {
        let claimed = try await base.claim(kinds: kinds, workerID: workerID, limit: limit, lease: lease, now: now)
        if !claimed.isEmpty { record(.claim(kinds: kinds, claimed: claimed.map(\.job.id))) }
        return claimed
    }

    func heartbeat(_ lease: JobLease, until: Date) async throws -> JobLeaseStatus {
        let status = try await base.heartbeat(lease, until: until)
        record(.heartbeat(jobID: lease.jobID, until: until, status: status))
        return status
    }

    func complete(_ lease: JobLease, result: JSONFragment?, at: Date) async throws -> Job {
        let job = try await base.complete(lease, result: result, at: at)
        record(.complete(jobID: lease.jobID))
        return job
    }

    func fail(_ lease: JobLease, error: JobError, retryAt: Date?, at: Date) async throws -> Job {
        let job = try await base.fail(lease, error: error, retryAt: retryAt, at: at)
        record(.fail(jobID: lease.jobID, error: error, retryAt: retryAt))
        return job
    }

    func cancel(id: String, ownerID: String?, at: Date) async throws -> Job { try await base.cancel(id: id, ownerID: ownerID, at: at) }

    func release(_ lease: JobLease, at: Date) async throws {
        try await base.release(lease, at: at)
        record(.release(jobID: lease.jobID))
    }

    func retry(id: String, ownerID: String?, at: Date) async throws -> Job { try await base.retry(id: id, ownerID: ownerID, at: at) }
    func job(id: String, ownerID: String?) async throws -> Job? { try await base.job(id: id, ownerID: ownerID) }
    func list(_ query: JobQuery) async throws -> [StoredJob] { try await base.list(query) }
    func nextDue(kinds: Set<String>) async throws -> Date? { try await base.nextDue(kinds: kinds) }

    func prune(finishedBefore: Date, limit: Int) async throws -> Int {
        let deleted = try await base.prune(finishedBefore: finishedBefore, limit: limit)
        record(.prune(finishedBefore: finishedBefore, limit: limit, deleted: deleted))
        return deleted
    }
}

/// A handler the test scripts: each attempt calls `body`, and the handler counts attempts running
/// at once and tells `changes` when one starts or ends.
final class ScriptedJobHandler: JobHandler {
    let policy: JobKindPolicy
    private let body: @Sendable (ClaimedJob) async throws -> JSONFragment?

    private struct Counts {
        var running = 0
        var maxRunning = 0
        var started: [String] = []
        var ended: [String] = []
        var cancelled: [String] = []
    }

    // Only touched under the mutex.
    private let counts = Mutex(Counts())
    let changes = ChangeFeed()

    init(_ policy: JobKindPolicy, body: @escaping @Sendable (ClaimedJob) async throws -> JSONFragment? = { _ in nil }) {
        self.policy = policy
        self.body = body
    }

    var running: Int { counts.withLock { $0.running } }
    var maxRunning: Int { counts.withLock { $0.maxRunning } }
    /// Job ids, one per attempt started.
    var started: [String] { counts.withLock { $0.started } }
    var ended: [String] { counts.withLock { $0.ended } }
    /// Attempts whose task was cancelled while they ran.
    var cancelled: [String] { counts.withLock { $0.cancelled } }

    func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        counts.withLock {
            $0.running += 1
            $0.maxRunning = max($0.maxRunning, $0.running)
            $0.started.append(job.job.id)
        }
        changes.notify()
        defer {
            counts.withLock {
                $0.running -= 1
                $0.ended.append(job.job.id)
                if Task.isCancelled { $0.cancelled.append(job.job.id) }
            }
            changes.notify()
        }
        return try await body(job)
    }
}

/// A gate attempts wait at until the test opens it (or their task is cancelled).
final class JobGate: Sendable {
    private struct State {
        var open = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextID = 0
    }

    // Only touched under the mutex; continuations are resumed after it is released.
    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the gate is open.
    ///
    /// - Throws: `CancellationError` when the calling task is cancelled first.
    func pass() async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result = state.withLock { state -> Result<Void, any Error>? in
                    if state.open { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}

/// The queue implementations the workers' tests run against.
enum JobQueueBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory
    /// `SQLiteJobQueue` on a migrated in-memory database with the user `usr_1`.
    case sqlite

    var description: String { rawValue }

    func makeQueue() async throws -> any JobQueue {
        switch self {
        case .memory:
            return InMemoryJobQueue()
        case .sqlite:
            let database = try AgentDatabase.inMemory()
            _ = try await database.migrate(logger: Dependencies.quietLogger)
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'one', '2026-01-01T00:00:00.000Z')")
            }
            let writer = GroupCommitWriter(writer: database.writer, outbox: EventOutbox(clock: SystemClock(), publish: { _ in }))
            return SQLiteJobQueue(writer: database.writer, groupWriter: writer, clock: SystemClock())
        }
    }
}
