import Foundation
import GRDB
import JobQueueTesting
import Logging
import RPC
import Services
import Testing

@testable import Storage

/// What the contract tests need of an implementation besides the queue: its owners and its events.
protocol JobQueueHarness: Sendable {
    var queue: any JobQueue { get }
    /// Makes a user that can own jobs (the owner column references users).
    func addUser(_ id: String) async throws
    /// The job events written so far, oldest first.
    func jobEvents() async throws -> [RecordedJobEvent]
    func tearDown() async
}

struct RecordedJobEvent: Equatable, CustomStringConvertible {
    var topic: String
    var userID: String
    var jobId: String
    var attempt: Int

    var description: String { "\(topic) \(jobId)#\(attempt) for \(userID)" }
}

/// One `JobQueue` implementation under test; adding a backend is one more entry in `all`.
struct JobQueueImplementation: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () async throws -> any JobQueueHarness

    var testDescription: String { name }
}

enum JobQueueImplementations {
    static let all: [JobQueueImplementation] = [
        JobQueueImplementation(name: "SQLite") { try await SQLiteJobQueueHarness() },
        JobQueueImplementation(name: "memory") { InMemoryJobQueueHarness() },
    ]
}

/// The tests' `InMemoryJobQueue` (JobQueueTesting): any owner will do; its events are kept in memory.
struct InMemoryJobQueueHarness: JobQueueHarness {
    let memory = InMemoryJobQueue()
    var queue: any JobQueue { memory }

    func addUser(_ id: String) async throws {}

    func jobEvents() async throws -> [RecordedJobEvent] {
        memory.events.map { RecordedJobEvent(topic: $0.topic, userID: $0.ownerID, jobId: $0.jobID, attempt: $0.attempt) }
    }

    func tearDown() async {}
}

/// `SQLiteJobQueue` on a migrated temporary file, behind a group writer with an outbox (the events
/// are read back from the `events` table they are written to).
struct SQLiteJobQueueHarness: JobQueueHarness {
    let database: AgentDatabase
    let folder: String
    let queue: any JobQueue

    init() async throws {
        folder = try AgentDatabaseTests.temporaryFolder()
        database = try AgentDatabase.open(path: "\(folder)/agentd.sqlite")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        let writes = GroupCommitWriter(writer: database.writer, outbox: EventOutbox(clock: SystemClock(), publish: { _ in }))
        queue = SQLiteJobQueue(writer: database.writer, groupWriter: writes, clock: TestWallClock())
    }

    func addUser(_ id: String) async throws {
        try await database.writer.write { db in
            try db.execute(
                sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, '2026-01-01T00:00:00.000Z')", arguments: [id, id])
        }
    }

    func jobEvents() async throws -> [RecordedJobEvent] {
        try await database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT topic, user_id, data FROM events WHERE topic LIKE 'job.%' ORDER BY seq").map { row in
                let data = try JSONSerialization.jsonObject(with: Data((row["data"] as String).utf8)) as? [String: Any] ?? [:]
                return RecordedJobEvent(
                    topic: row["topic"], userID: row["user_id"], jobId: data["jobId"] as? String ?? "", attempt: data["attempt"] as? Int ?? -1)
            }
        }
    }

    func tearDown() async { removeFiles() }

    func removeFiles() {
        try? database.close()
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// The `JobQueue` contract, written once against the protocol and run for every implementation:
/// owner scoping, idempotency keys, claim order and due times, leases (expiry, renewal, loss),
/// retries, cancellation in both states, release, `jobs.retry`, retention (`prune`) and the events
/// of each change.
@Suite("JobQueue contract", .timeLimit(.minutes(1)))
struct JobQueueContractTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let alice = "usr_alice"
    static let bob = "usr_bob"

    /// A harness with users alice and bob; torn down after `body`.
    func with(_ implementation: JobQueueImplementation, _ body: (any JobQueueHarness, any JobQueue) async throws -> Void) async throws {
        let harness = try await implementation.make()
        do {
            try await harness.addUser(Self.alice)
            try await harness.addUser(Self.bob)
            try await body(harness, harness.queue)
        } catch {
            await harness.tearDown()
            throw error
        }
        await harness.tearDown()
    }

    func new(
        _ id: String, owner: String? = alice, kind: String = "test.noop", priority: Int = 0, runAfter: Date = t0, maxAttempts: Int = 1,
        key: String? = nil, payload: String = "{}"
    ) -> NewJob {
        NewJob(
            id: id, kind: kind, ownerID: owner, payload: JSONFragment(unchecked: payload), priority: priority, maxAttempts: maxAttempts,
            runAfter: runAfter, idempotencyKey: key)
    }

    func at(_ seconds: TimeInterval) -> Date { Self.t0.addingTimeInterval(seconds) }

    func claimOne(_ queue: any JobQueue, worker: String = "w1", kinds: Set<String> = ["test.noop"], lease: Duration = .seconds(30), now: Date)
        async throws -> ClaimedJob?
    {
        let claimed = try await queue.claim(kinds: kinds, workerID: worker, limit: 1, lease: lease, now: now)
        #expect(claimed.count <= 1)
        return claimed.first
    }

    // MARK: Enqueue, read, scoping

    @Test(
        "enqueue stores a queued job its owner reads back (get, list newest first with filters and a keyset); another owner's is missing",
        arguments: JobQueueImplementations.all)
    func enqueueGetList(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            let first = try await queue.enqueue(new("job_1", payload: #"{"n":1}"#))
            #expect(first.created)
            #expect(first.job.state == .queued && first.job.attempt == 0 && first.job.payload.text == #"{"n":1}"#)
            #expect(first.job.ownerID == Self.alice && first.job.runAfter == Self.t0 && first.job.leaseExpiresAt == nil)
            _ = try await queue.enqueue(new("job_2", kind: "test.other"))
            _ = try await queue.enqueue(new("job_3"))
            _ = try await queue.enqueue(new("job_bob", owner: Self.bob))
            _ = try await queue.enqueue(new("job_sys", owner: nil))

            #expect(try await queue.job(id: "job_1", ownerID: Self.alice) == first.job)
            #expect(try await queue.job(id: "job_bob", ownerID: Self.alice) == nil)
            #expect(try await queue.job(id: "job_sys", ownerID: Self.alice) == nil)
            #expect(try await queue.job(id: "job_1", ownerID: nil) == nil)
            #expect(try await queue.job(id: "job_sys", ownerID: nil)?.kind == "test.noop")

            let all = try await queue.list(JobQuery(ownerID: Self.alice, limit: 10))
            #expect(all.map(\.job.id) == ["job_3", "job_2", "job_1"])
            #expect(try await queue.list(JobQuery(ownerID: Self.alice, kind: "test.noop", limit: 10)).map(\.job.id) == ["job_3", "job_1"])
            #expect(try await queue.list(JobQuery(ownerID: Self.alice, state: .running, limit: 10)).isEmpty)
            #expect(try await queue.list(JobQuery(ownerID: Self.alice, limit: 2)).map(\.job.id) == ["job_3", "job_2"])
            #expect(try await queue.list(JobQuery(ownerID: Self.alice, beforeSeq: all[1].seq, limit: 10)).map(\.job.id) == ["job_1"])
            #expect(try await queue.list(JobQuery(ownerID: nil, limit: 10)).map(\.job.id) == ["job_sys"])

            await #expect(throws: JobsError.notFound(id: "job_bob")) { try await queue.cancel(id: "job_bob", ownerID: Self.alice, at: self.at(1)) }
            await #expect(throws: JobsError.notFound(id: "job_bob")) { try await queue.retry(id: "job_bob", ownerID: Self.alice, at: self.at(1)) }
            await #expect(throws: JobsError.notFound(id: "job_nope")) { try await queue.cancel(id: "job_nope", ownerID: Self.alice, at: self.at(1)) }
            #expect(try await queue.job(id: "job_bob", ownerID: Self.bob)?.state == .queued)
        }
    }

    @Test(
        "an idempotency key answers the owner's existing job of that kind (created: false), also the system's; another owner or kind makes a new one",
        arguments: JobQueueImplementations.all)
    func idempotencyKeys(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            let first = try await queue.enqueue(new("job_1", key: "k"))
            let again = try await queue.enqueue(new("job_2", key: "k"))
            #expect(first.created && !again.created)
            #expect(again.job == first.job)
            #expect(try await queue.job(id: "job_2", ownerID: Self.alice) == nil)

            #expect(try await queue.enqueue(new("job_3", kind: "test.other", key: "k")).created)
            #expect(try await queue.enqueue(new("job_4", owner: Self.bob, key: "k")).created)
            #expect(try await queue.enqueue(new("job_5", owner: nil, key: "k")).created)
            let system = try await queue.enqueue(new("job_6", owner: nil, key: "k"))
            #expect(!system.created && system.job.id == "job_5")
            #expect(try await queue.enqueue(new("job_7", key: "other")).created)
            // Without a key, never deduplicated.
            #expect(try await queue.enqueue(new("job_8")).created)
            #expect(try await queue.enqueue(new("job_9")).created)

            // Whatever the existing job's state: a finished job is answered too.
            _ = try await queue.cancel(id: "job_1", ownerID: Self.alice, at: at(1))
            let afterEnd = try await queue.enqueue(new("job_10", key: "k"))
            #expect(!afterEnd.created && afterEnd.job.id == "job_1" && afterEnd.job.state == .cancelled)
        }
    }

    // MARK: Claim

    @Test("claim takes the highest priority first, then the earliest runAfter, then the oldest", arguments: JobQueueImplementations.all)
    func claimOrder(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_low_old", priority: 0, runAfter: at(0)))
            _ = try await queue.enqueue(new("job_high_late", priority: 5, runAfter: at(2)))
            _ = try await queue.enqueue(new("job_high_early", priority: 5, runAfter: at(1)))
            _ = try await queue.enqueue(new("job_low_new", priority: 0, runAfter: at(0)))
            _ = try await queue.enqueue(new("job_neg", priority: -1, runAfter: at(-5)))
            var order: [String] = []
            while let claimed = try await claimOne(queue, now: at(10)) { order.append(claimed.job.id) }
            #expect(order == ["job_high_early", "job_high_late", "job_low_old", "job_low_new", "job_neg"])

            // A batch claim hands them out in the same order.
            for n in 0..<4 { _ = try await queue.enqueue(new("job_b\(n)", priority: n % 2, runAfter: at(Double(-n)))) }
            let batch = try await queue.claim(kinds: ["test.noop"], workerID: "w1", limit: 3, lease: .seconds(30), now: at(10))
            #expect(batch.map(\.job.id) == ["job_b3", "job_b1", "job_b2"])
        }
    }

    @Test(
        "claim takes only the kinds asked for, and each claimed job is running, attempt counted, leased until now + lease",
        arguments: JobQueueImplementations.all)
    func claimMarksRunning(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_a", kind: "kind.a"))
            _ = try await queue.enqueue(new("job_b", kind: "kind.b"))
            _ = try await queue.enqueue(new("job_c", kind: "kind.c"))
            #expect(try await queue.claim(kinds: [], workerID: "w1", limit: 5, lease: .seconds(1), now: at(1)).isEmpty)
            let claimed = try await queue.claim(kinds: ["kind.a", "kind.c"], workerID: "w1", limit: 5, lease: .milliseconds(1500), now: at(1))
            #expect(Set(claimed.map(\.job.id)) == ["job_a", "job_c"])
            for job in claimed {
                #expect(job.lease == JobLease(jobID: job.job.id, workerID: "w1", attempt: 1))
                #expect(!job.recovered)
                #expect(job.job.state == .running && job.job.attempt == 1 && job.job.workerId == "w1")
                #expect(job.job.leaseExpiresAt == at(2.5))
                #expect(job.job.startedAt == at(1))
                #expect(try await queue.job(id: job.job.id, ownerID: Self.alice) == job.job)
            }
            #expect(try await queue.job(id: "job_b", ownerID: Self.alice)?.state == .queued)
        }
    }

    @Test("one claim over several kinds, and over queued and expired jobs, keeps the claim order across them", arguments: JobQueueImplementations.all)
    func claimOrderAcrossKinds(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_a_low", kind: "kind.a", priority: 0))
            _ = try await queue.enqueue(new("job_b_high", kind: "kind.b", priority: 9))
            _ = try await queue.enqueue(new("job_a_mid", kind: "kind.a", priority: 5))
            _ = try await queue.enqueue(new("job_b_low", kind: "kind.b", priority: 0, runAfter: at(-1)))
            let kinds: Set<String> = ["kind.a", "kind.b"]
            let first = try await queue.claim(kinds: kinds, workerID: "w1", limit: 3, lease: .seconds(10), now: at(0))
            #expect(first.map(\.job.id) == ["job_b_high", "job_a_mid", "job_b_low"])
            // job_a_mid's worker dies: once its lease expires it comes before the lower queued job.
            let second = try await queue.claim(kinds: kinds, workerID: "w2", limit: 1, lease: .seconds(10), now: at(5))
            #expect(second.map(\.job.id) == ["job_a_low"])
            for claimed in first where claimed.job.id != "job_a_mid" { _ = try await queue.heartbeat(claimed.lease, until: at(100)) }
            _ = try await queue.enqueue(new("job_a_new", kind: "kind.a", priority: 1, runAfter: at(10)))
            let third = try await queue.claim(kinds: kinds, workerID: "w2", limit: 5, lease: .seconds(10), now: at(10))
            #expect(third.map(\.job.id) == ["job_a_mid", "job_a_new"])
            #expect(third.map(\.recovered) == [true, false])
        }
    }

    @Test("a job due later is not claimed before its runAfter; nextDue names that moment", arguments: JobQueueImplementations.all)
    func runAfterInTheFuture(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            #expect(try await queue.nextDue(kinds: ["test.noop"]) == nil)
            _ = try await queue.enqueue(new("job_later", runAfter: at(60.25)))
            _ = try await queue.enqueue(new("job_other_kind", kind: "test.other", runAfter: at(5)))
            #expect(try await claimOne(queue, now: at(60)) == nil)
            #expect(try await queue.nextDue(kinds: ["test.noop"]) == at(60.25))
            #expect(try await queue.nextDue(kinds: ["test.noop", "test.other"]) == at(5))
            #expect(try await claimOne(queue, now: at(60.25))?.job.id == "job_later")
            // Running: due again when its lease expires.
            #expect(try await queue.nextDue(kinds: ["test.noop"]) == at(90.25))
            #expect(try await queue.nextDue(kinds: ["test.missing"]) == nil)
        }
    }

    @Test("concurrent claims hand out every job exactly once", arguments: JobQueueImplementations.all)
    func noDoubleClaims(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            let count = 60
            for n in 0..<count { _ = try await queue.enqueue(new("job_\(n)")) }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await queue.claim(
                                kinds: ["test.noop"], workerID: "w\(worker)", limit: 1 + worker % 3, lease: .seconds(30), now: self.at(1))
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.job.id)
                        }
                    }
                }
                var all: [String] = []
                for try await mine in group { all += mine }
                return all
            }
            #expect(claims.count == count)
            #expect(Set(claims) == Set((0..<count).map { "job_\($0)" }))
        }
    }

    // MARK: Leases

    @Test(
        "an expired lease is claimed again (recovered, attempt counted); the old lease then answers lost and its complete/fail throw leaseLost",
        arguments: JobQueueImplementations.all)
    func leaseExpiry(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1", maxAttempts: 3))
            let first = try #require(try await claimOne(queue, worker: "w1", now: at(0)))
            #expect(try await claimOne(queue, worker: "w2", now: at(29.999)) == nil)
            let second = try #require(try await claimOne(queue, worker: "w2", now: at(30.5)))
            #expect(second.recovered && second.job.id == "job_1")
            #expect(second.job.attempt == 2 && second.lease == JobLease(jobID: "job_1", workerID: "w2", attempt: 2))

            #expect(try await queue.heartbeat(first.lease, until: at(100)) == .lost)
            await #expect(throws: JobsError.leaseLost(first.lease)) { try await queue.complete(first.lease, result: nil, at: self.at(31)) }
            await #expect(throws: JobsError.leaseLost(first.lease)) {
                try await queue.fail(first.lease, error: JobError(kind: "x", message: "y"), retryAt: nil, at: self.at(31))
            }
            // The same worker reclaiming is a new attempt too: its old lease is lost all the same.
            #expect(try await queue.heartbeat(JobLease(jobID: "job_1", workerID: "w2", attempt: 1), until: at(100)) == .lost)
            // Nothing the old lease tried was stored.
            let running = try #require(try await queue.job(id: "job_1", ownerID: Self.alice))
            #expect(running.state == .running && running.workerId == "w2" && running.leaseExpiresAt == at(60.5))

            let done = try await queue.complete(second.lease, result: JSONFragment(unchecked: #"{"ok":true}"#), at: at(32))
            #expect(done.state == .succeeded && done.result?.text == #"{"ok":true}"# && done.finishedAt == at(32) && done.leaseExpiresAt == nil)
            #expect(try await queue.heartbeat(second.lease, until: at(100)) == .lost)
            await #expect(throws: JobsError.leaseLost(second.lease)) { try await queue.complete(second.lease, result: nil, at: self.at(33)) }
            #expect(try await claimOne(queue, worker: "w3", now: at(1000)) == nil)
        }
    }

    @Test(
        "complete with thenClaim ends the attempt succeeded and claims the next jobs as claim does, events in order; a lost lease claims nothing",
        arguments: JobQueueImplementations.all)
    func completeThenClaim(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { harness, queue in
            _ = try await queue.enqueue(new("job_1"))
            _ = try await queue.enqueue(new("job_2", runAfter: at(1)))
            _ = try await queue.enqueue(new("job_high", priority: 5, runAfter: at(1)))
            _ = try await queue.enqueue(new("job_other", kind: "kind.other"))
            _ = try await queue.enqueue(new("job_later", runAfter: at(100)))
            let first = try #require(try await claimOne(queue, now: at(0)))
            #expect(first.job.id == "job_1")

            let (done, next) = try await queue.complete(
                first.lease, result: JSONFragment(unchecked: #"{"n":1}"#), at: at(2), thenClaim: ["test.noop"], limit: 1, lease: .seconds(10))
            #expect(done.state == .succeeded && done.result?.text == #"{"n":1}"# && done.finishedAt == at(2) && done.leaseExpiresAt == nil)
            // Claim order, the kinds asked for, due by `at`, leased from `at` for the worker of the lease.
            #expect(next.map(\.job.id) == ["job_high"])
            let high = try #require(next.first)
            #expect(high.lease == JobLease(jobID: "job_high", workerID: "w1", attempt: 1) && !high.recovered)
            #expect(high.job.state == .running && high.job.startedAt == at(2) && high.job.leaseExpiresAt == at(12))

            let (_, rest) = try await queue.complete(high.lease, result: nil, at: at(3), thenClaim: ["test.noop"], limit: 5, lease: .seconds(10))
            #expect(rest.map(\.job.id) == ["job_2"])
            let last = try #require(rest.first)
            let (_, none) = try await queue.complete(last.lease, result: nil, at: at(4), thenClaim: ["test.noop"], limit: 5, lease: .seconds(10))
            #expect(none.isEmpty)
            #expect(try await queue.job(id: "job_later", ownerID: Self.alice)?.state == .queued)
            #expect(try await queue.job(id: "job_other", ownerID: Self.alice)?.state == .queued)

            // A lost lease: the end is refused and nothing is claimed.
            await #expect(throws: JobsError.leaseLost(last.lease)) {
                try await queue.complete(last.lease, result: nil, at: self.at(200), thenClaim: ["test.noop"], limit: 1, lease: .seconds(10))
            }
            #expect(try await queue.job(id: "job_later", ownerID: Self.alice)?.state == .queued)

            let started = try await harness.jobEvents().filter { $0.topic != "job.queued" }.map(\.description)
            #expect(
                started == [
                    "job.started job_1#1 for \(Self.alice)", "job.succeeded job_1#1 for \(Self.alice)", "job.started job_high#1 for \(Self.alice)",
                    "job.succeeded job_high#1 for \(Self.alice)", "job.started job_2#1 for \(Self.alice)", "job.succeeded job_2#1 for \(Self.alice)",
                ])
        }
    }

    @Test("a heartbeat renews the lease: no other worker claims the job until the renewed lease expires", arguments: JobQueueImplementations.all)
    func heartbeatRenews(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1"))
            let claimed = try #require(try await claimOne(queue, worker: "w1", now: at(0)))
            #expect(try await queue.heartbeat(claimed.lease, until: at(60)) == .held)
            #expect(try await queue.job(id: "job_1", ownerID: Self.alice)?.leaseExpiresAt == at(60))
            #expect(try await claimOne(queue, worker: "w2", now: at(45)) == nil)
            #expect(try await queue.heartbeat(claimed.lease, until: at(90)) == .held)
            #expect(try await claimOne(queue, worker: "w2", now: at(89)) == nil)
            let recovered = try #require(try await claimOne(queue, worker: "w2", now: at(91)))
            #expect(recovered.recovered && recovered.job.attempt == 2)
        }
    }

    // MARK: Ends

    @Test("fail with retryAt queues the job again, due then, error kept; fail without ends it failed", arguments: JobQueueImplementations.all)
    func failAndRetryAt(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1", maxAttempts: 3))
            let first = try #require(try await claimOne(queue, now: at(0)))
            let transient = JobError(kind: "rateLimited", message: "slow down")
            let waiting = try await queue.fail(first.lease, error: transient, retryAt: at(10.5), at: at(1))
            #expect(waiting.state == .queued && waiting.error == transient && waiting.attempt == 1 && waiting.runAfter == at(10.5))
            #expect(waiting.workerId == nil && waiting.leaseExpiresAt == nil && waiting.finishedAt == nil)
            #expect(try await claimOne(queue, now: at(10)) == nil)
            #expect(try await queue.nextDue(kinds: ["test.noop"]) == at(10.5))

            let second = try #require(try await claimOne(queue, now: at(10.5)))
            #expect(second.job.attempt == 2 && !second.recovered)
            let fatal = JobError(kind: "auth", message: "bad key")
            let failed = try await queue.fail(second.lease, error: fatal, retryAt: nil, at: at(11))
            #expect(failed.state == .failed && failed.error == fatal && failed.finishedAt == at(11) && failed.attempt == 2)
            #expect(try await queue.job(id: "job_1", ownerID: Self.alice) == failed)
            #expect(try await claimOne(queue, now: at(1000)) == nil)
            #expect(try await queue.nextDue(kinds: ["test.noop"]) == nil)
        }
    }

    @Test("cancel: a queued job ends cancelled at once; a finished one is answered as it is", arguments: JobQueueImplementations.all)
    func cancelQueued(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1"))
            let cancelled = try await queue.cancel(id: "job_1", ownerID: Self.alice, at: at(2))
            #expect(cancelled.state == .cancelled && cancelled.finishedAt == at(2) && !cancelled.cancelRequested)
            #expect(try await claimOne(queue, now: at(10)) == nil)
            #expect(try await queue.cancel(id: "job_1", ownerID: Self.alice, at: at(3)) == cancelled)

            _ = try await queue.enqueue(new("job_2"))
            let claimed = try #require(try await claimOne(queue, now: at(10)))
            let done = try await queue.complete(claimed.lease, result: nil, at: at(11))
            #expect(try await queue.cancel(id: "job_2", ownerID: Self.alice, at: at(12)) == done)
        }
    }

    @Test(
        "cancel of a running job marks it; the heartbeat answers cancelRequested; fail (or release) then ends it cancelled",
        arguments: JobQueueImplementations.all)
    func cancelRunning(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1", maxAttempts: 5))
            let claimed = try #require(try await claimOne(queue, now: at(0)))
            let marked = try await queue.cancel(id: "job_1", ownerID: Self.alice, at: at(1))
            #expect(marked.state == .running && marked.cancelRequested)
            #expect(try await queue.heartbeat(claimed.lease, until: at(60)) == .cancelRequested)
            // Even a retriable failure with attempts left ends it: the cancel wins.
            let ended = try await queue.fail(claimed.lease, error: JobError(kind: "cancelled", message: "stopped"), retryAt: at(5), at: at(2))
            #expect(ended.state == .cancelled && ended.finishedAt == at(2))
            #expect(try await claimOne(queue, now: at(100)) == nil)

            // Released by a worker shutting down, it ends cancelled too rather than running again.
            _ = try await queue.enqueue(new("job_2"))
            let second = try #require(try await claimOne(queue, now: at(200)))
            _ = try await queue.cancel(id: "job_2", ownerID: Self.alice, at: at(201))
            try await queue.release(second.lease, at: at(202))
            #expect(try await queue.job(id: "job_2", ownerID: Self.alice)?.state == .cancelled)
        }
    }

    @Test(
        "a running job whose cancel was asked for and whose worker died is ended cancelled by the next claim, not run again",
        arguments: JobQueueImplementations.all)
    func cancelRequestedThenWorkerDied(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1", maxAttempts: 3))
            _ = try #require(try await claimOne(queue, now: at(0)))
            _ = try await queue.cancel(id: "job_1", ownerID: Self.alice, at: at(1))
            #expect(try await claimOne(queue, worker: "w2", now: at(31)) == nil)
            let job = try #require(try await queue.job(id: "job_1", ownerID: Self.alice))
            #expect(job.state == .cancelled && job.finishedAt == at(31))
        }
    }

    @Test(
        "release gives the attempt back: queued again, due at once, attempt not counted; a lost lease is ignored",
        arguments: JobQueueImplementations.all)
    func release(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1"))
            let claimed = try #require(try await claimOne(queue, now: at(0)))
            try await queue.release(claimed.lease, at: at(5))
            let released = try #require(try await queue.job(id: "job_1", ownerID: Self.alice))
            #expect(released.state == .queued && released.attempt == 0 && released.runAfter == at(5) && released.workerId == nil)
            #expect(released.leaseExpiresAt == nil)
            #expect(try await queue.heartbeat(claimed.lease, until: at(60)) == .lost)
            try await queue.release(claimed.lease, at: at(6))

            let again = try #require(try await claimOne(queue, worker: "w2", now: at(5)))
            #expect(again.job.attempt == 1 && !again.recovered)
        }
    }

    @Test(
        "retry makes a failed or cancelled job queued with one more attempt allowed; a queued, running or succeeded job is invalidState",
        arguments: JobQueueImplementations.all)
    func retry(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            _ = try await queue.enqueue(new("job_1"))
            await #expect(throws: JobsError.invalidState(id: "job_1", state: .queued)) {
                try await queue.retry(id: "job_1", ownerID: Self.alice, at: self.at(0))
            }
            let claimed = try #require(try await claimOne(queue, now: at(0)))
            await #expect(throws: JobsError.invalidState(id: "job_1", state: .running)) {
                try await queue.retry(id: "job_1", ownerID: Self.alice, at: self.at(0))
            }
            _ = try await queue.fail(claimed.lease, error: JobError(kind: "internal", message: "boom"), retryAt: nil, at: at(1))
            let retried = try await queue.retry(id: "job_1", ownerID: Self.alice, at: at(2))
            #expect(retried.state == .queued && retried.attempt == 1 && retried.maxAttempts == 2 && retried.runAfter == at(2))
            #expect(retried.finishedAt == nil)
            let second = try #require(try await claimOne(queue, now: at(2)))
            #expect(second.job.attempt == 2)
            _ = try await queue.complete(second.lease, result: nil, at: at(3))
            await #expect(throws: JobsError.invalidState(id: "job_1", state: .succeeded)) {
                try await queue.retry(id: "job_1", ownerID: Self.alice, at: self.at(4))
            }

            // Cancelled while queued, with attempts to spare: retried, it keeps them.
            _ = try await queue.enqueue(new("job_2", maxAttempts: 3))
            _ = try await queue.cancel(id: "job_2", ownerID: Self.alice, at: at(5))
            let revived = try await queue.retry(id: "job_2", ownerID: Self.alice, at: at(6))
            #expect(revived.state == .queued && revived.maxAttempts == 3 && revived.attempt == 0 && !revived.cancelRequested)
            #expect(try await claimOne(queue, now: at(6))?.job.id == "job_2")
        }
    }

    // MARK: Retention

    /// Enqueues `id` and ends it `end` at `at(time)`: claimed and completed or failed, or cancelled
    /// while queued. Nothing else of kind `test.noop` may be due then.
    func finish(_ queue: any JobQueue, _ id: String, owner: String? = alice, key: String? = nil, _ end: JobState, at time: TimeInterval)
        async throws
    {
        _ = try await queue.enqueue(new(id, owner: owner, runAfter: at(time - 1), key: key))
        switch end {
        case .cancelled:
            _ = try await queue.cancel(id: id, ownerID: owner, at: at(time))
        case .succeeded, .failed:
            let claimed = try #require(try await claimOne(queue, now: at(time)))
            #expect(claimed.job.id == id)
            if end == .succeeded {
                _ = try await queue.complete(claimed.lease, result: nil, at: at(time))
            } else {
                _ = try await queue.fail(claimed.lease, error: JobError(kind: "internal", message: "boom"), retryAt: nil, at: at(time))
            }
        case .queued, .running:
            Issue.record("not a finished state: \(end)")
        }
    }

    @Test(
        "prune deletes finished jobs (succeeded, failed, cancelled) finished before the date, oldest first, at most limit per call, of every owner and the system alike; live and recent ones stay",
        arguments: JobQueueImplementations.all)
    func prune(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { _, queue in
            // Finished before the cutoff (at 50), across owners and the system.
            try await finish(queue, "job_ok", .succeeded, at: 10)
            try await finish(queue, "job_bob", owner: Self.bob, .succeeded, at: 15)
            try await finish(queue, "job_failed", key: "k", .failed, at: 20)
            try await finish(queue, "job_sys", owner: nil, .succeeded, at: 25)
            try await finish(queue, "job_cancelled", owner: Self.bob, .cancelled, at: 30)
            // Finished at or after the cutoff.
            try await finish(queue, "job_at_cutoff", .succeeded, at: 50)
            try await finish(queue, "job_recent", owner: nil, .failed, at: 100)
            // Failed long ago, then retried: live again (queued, due later), whatever its old finish.
            try await finish(queue, "job_retried", .failed, at: 5)
            _ = try await queue.retry(id: "job_retried", ownerID: Self.alice, at: at(6))
            // Live jobs created long ago: one queued (another kind, never claimed), one running,
            // one waiting for its retry.
            _ = try await queue.enqueue(new("job_queued", kind: "test.idle", runAfter: at(0)))
            _ = try await queue.enqueue(new("job_waiting", runAfter: at(0), maxAttempts: 2))
            let waiting = try #require(try await claimOne(queue, now: at(1)))
            _ = try await queue.fail(waiting.lease, error: JobError(kind: "timeout", message: "t"), retryAt: at(10_000), at: at(2))
            _ = try await queue.enqueue(new("job_running", owner: nil, runAfter: at(0)))
            #expect(try await claimOne(queue, lease: .seconds(100_000), now: at(3))?.job.id == "job_running")

            /// Every job left, of alice, bob and the system.
            func left() async throws -> Set<String> {
                var ids: Set<String> = []
                for owner in [Self.alice, Self.bob, nil] {
                    ids.formUnion(try await queue.list(JobQuery(ownerID: owner, limit: 100)).map(\.job.id))
                }
                return ids
            }
            let live: Set = ["job_retried", "job_queued", "job_waiting", "job_running"]
            let recent: Set = ["job_at_cutoff", "job_recent"]
            #expect(try await queue.prune(finishedBefore: at(50), limit: 0) == 0)
            // Oldest finished first, two per call.
            #expect(try await queue.prune(finishedBefore: at(50), limit: 2) == 2)
            #expect(try await left() == live.union(recent).union(["job_failed", "job_sys", "job_cancelled"]))
            #expect(try await queue.prune(finishedBefore: at(50), limit: 2) == 2)
            #expect(try await left() == live.union(recent).union(["job_cancelled"]))
            // Short of the limit: nothing older is left.
            #expect(try await queue.prune(finishedBefore: at(50), limit: 2) == 1)
            #expect(try await queue.prune(finishedBefore: at(50), limit: 2) == 0)
            #expect(try await left() == live.union(recent))
            #expect(try await queue.job(id: "job_ok", ownerID: Self.alice) == nil)

            // Long after: every finished job goes, no live one does, and the live ones are untouched.
            let before = try await queue.list(JobQuery(ownerID: Self.alice, limit: 100)).filter { live.contains($0.job.id) }
            #expect(try await queue.prune(finishedBefore: at(1_000_000), limit: 100) == 2)
            #expect(try await left() == live)
            #expect(try await queue.list(JobQuery(ownerID: Self.alice, limit: 100)) == before)
            #expect(try await queue.job(id: "job_running", ownerID: nil)?.state == .running)

            // A pruned job's idempotency key is free again.
            #expect(try await queue.enqueue(new("job_again", key: "k")).created)
        }
    }

    // MARK: Events

    @Test(
        "each change writes its event under the owner (queued, started, succeeded, failed, cancelled); the system's jobs write none",
        arguments: JobQueueImplementations.all)
    func events(_ implementation: JobQueueImplementation) async throws {
        try await with(implementation) { harness, queue in
            _ = try await queue.enqueue(new("job_ok"))
            _ = try await queue.enqueue(new("job_ok", key: nil).withID("job_dup_key", key: "k"))
            _ = try await queue.enqueue(new("job_dup_again", key: "k"))
            _ = try await queue.enqueue(new("job_sys", owner: nil))
            let ok = try #require(try await queue.claim(kinds: ["test.noop"], workerID: "w1", limit: 3, lease: .seconds(30), now: at(1)).first)
            #expect(ok.job.id == "job_ok")
            _ = try await queue.complete(ok.lease, result: nil, at: at(2))

            _ = try await queue.enqueue(new("job_bad", owner: Self.bob, runAfter: at(3), maxAttempts: 2))
            let bad = try #require(try await claimOne(queue, now: at(3)))
            _ = try await queue.fail(bad.lease, error: JobError(kind: "timeout", message: "t"), retryAt: at(4), at: at(3))
            let badAgain = try #require(try await claimOne(queue, now: at(4)))
            _ = try await queue.fail(badAgain.lease, error: JobError(kind: "timeout", message: "t"), retryAt: nil, at: at(5))
            _ = try await queue.retry(id: "job_bad", ownerID: Self.bob, at: at(6))
            _ = try await queue.cancel(id: "job_bad", ownerID: Self.bob, at: at(7))

            let expected = [
                RecordedJobEvent(topic: "job.queued", userID: Self.alice, jobId: "job_ok", attempt: 0),
                RecordedJobEvent(topic: "job.queued", userID: Self.alice, jobId: "job_dup_key", attempt: 0),
                RecordedJobEvent(topic: "job.started", userID: Self.alice, jobId: "job_ok", attempt: 1),
                RecordedJobEvent(topic: "job.started", userID: Self.alice, jobId: "job_dup_key", attempt: 1),
                RecordedJobEvent(topic: "job.succeeded", userID: Self.alice, jobId: "job_ok", attempt: 1),
                RecordedJobEvent(topic: "job.queued", userID: Self.bob, jobId: "job_bad", attempt: 0),
                RecordedJobEvent(topic: "job.started", userID: Self.bob, jobId: "job_bad", attempt: 1),
                RecordedJobEvent(topic: "job.started", userID: Self.bob, jobId: "job_bad", attempt: 2),
                RecordedJobEvent(topic: "job.failed", userID: Self.bob, jobId: "job_bad", attempt: 2),
                RecordedJobEvent(topic: "job.queued", userID: Self.bob, jobId: "job_bad", attempt: 2),
                RecordedJobEvent(topic: "job.cancelled", userID: Self.bob, jobId: "job_bad", attempt: 2),
            ]
            // The system job was claimed with the others (priority, then age) and wrote nothing.
            let recorded = try await harness.jobEvents()
            #expect(recorded == expected)
            #expect(!recorded.contains { $0.jobId == "job_sys" })
        }
    }
}

extension NewJob {
    fileprivate func withID(_ id: String, key: String?) -> NewJob {
        var job = self
        job.id = id
        job.idempotencyKey = key
        return job
    }
}
