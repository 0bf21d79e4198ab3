import Foundation
import Logging
import RPC
import Services
import Synchronization
import Testing

@testable import Daemon

/// The workers (`JobWorkers`) against the queue protocol: time is a `ManualTime` the test moves,
/// and each test waits for the queue call or handler step it expects, never for time.
@Suite("Job workers", .timeLimit(.minutes(1)))
struct JobWorkersTests {
    /// One queue, clock, sleeper and wake signal; workers built on them run until the test ends.
    final class Fixture: Sendable {
        let time = ManualTime()
        let queue: RecordingJobQueue
        let signal = JobWakeSignal()
        let scheduler: JobScheduler
        let ids = Mutex(0)

        init(queue: any JobQueue) {
            self.queue = RecordingJobQueue(queue)
            scheduler = JobScheduler(queue: self.queue, signal: signal)
        }

        func workers(
            _ handlers: [any JobHandler], settings: JobWorkers.Settings = .init(pollInterval: .seconds(3600)), workerID: String = "host-1",
            random: @escaping @Sendable () -> Double = { 0.5 }
        ) -> JobWorkers {
            JobWorkers(
                queue: queue, handlers: handlers, signal: signal, workerID: workerID, clock: time, sleeper: time, random: random, settings: settings,
                logger: Dependencies.quietLogger)
        }

        func newJob(_ kind: String, maxAttempts: Int = 1, ownerID: String? = "usr_1") -> NewJob {
            let n = ids.withLock {
                $0 += 1
                return $0
            }
            return NewJob(id: "job_\(n)", kind: kind, ownerID: ownerID, maxAttempts: maxAttempts, runAfter: time.now())
        }

        func job(_ id: String, ownerID: String? = "usr_1") async throws -> Job {
            try #require(try await queue.job(id: id, ownerID: ownerID))
        }
    }

    /// Runs `workers` while `body` runs, then shuts them down and waits for their end.
    func running<T: Sendable>(_ workers: JobWorkers, _ body: () async throws -> T) async throws -> T {
        let task = Task { await workers.run() }
        do {
            let result = try await body()
            await workers.shutdown(timeout: .zero)
            await task.value
            return result
        } catch {
            await workers.shutdown(timeout: .zero)
            await task.value
            throw error
        }
    }

    static func backends() -> [JobQueueBackend] { JobQueueBackend.allCases }

    struct Transient: Error {}

    // MARK: - Concurrency and waking

    @Test("per kind, never more attempts at once than its concurrency (the setting overrides the policy)", arguments: backends())
    func concurrencyPerKind(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let wide = ScriptedJobHandler(JobKindPolicy(kind: "test.wide", concurrency: 5)) { _ in
            try await gate.pass()
            return nil
        }
        let narrow = ScriptedJobHandler(JobKindPolicy(kind: "test.narrow", concurrency: 1)) { _ in
            try await gate.pass()
            return nil
        }
        let workers = fixture.workers([wide, narrow], settings: .init(concurrency: ["test.wide": 2], pollInterval: .seconds(3600)))
        #expect(workers.concurrency == ["test.wide": 2, "test.narrow": 1])
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try await fixture.scheduler.enqueue(fixture.newJob("test.wide")).job.id) }
        for _ in 0..<3 { ids.append(try await fixture.scheduler.enqueue(fixture.newJob("test.narrow")).job.id) }
        try await running(workers) {
            await wide.changes.wait { wide.running == 2 }
            await narrow.changes.wait { narrow.running == 1 }
            // Idle now (every slot taken): the workers wait for an end, and claimed nothing more.
            await fixture.time.waitForSleep(of: .seconds(3600))
            #expect(wide.started.count == 2 && narrow.started.count == 1)
            gate.open()
            await fixture.queue.changes.wait { fixture.queue.completed.count == 8 }
        }
        #expect(wide.maxRunning == 2)
        #expect(narrow.maxRunning == 1)
        for id in ids { #expect(try await fixture.job(id).state == .succeeded) }
    }

    @Test("an enqueue through the scheduler starts its job at once; one behind its back waits for the poll", arguments: backends())
    func wakeOnEnqueue(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.quick"))
        let workers = fixture.workers([handler])
        try await running(workers) {
            // Nothing queued: the workers sleep for the whole poll interval.
            await fixture.time.waitForSleep(of: .seconds(3600))
            let woken = try await fixture.scheduler.enqueue(fixture.newJob("test.quick")).job
            await fixture.queue.waitFor { $0 == .complete(jobID: woken.id) }
            #expect(handler.started == [woken.id])

            await fixture.time.waitForSleep(of: .seconds(3600))
            let unseen = try await fixture.queue.enqueue(fixture.newJob("test.quick")).job
            #expect(handler.started == [woken.id])
            fixture.time.advance(by: 3600)
            await fixture.queue.waitFor { $0 == .complete(jobID: unseen.id) }
            #expect(handler.started == [woken.id, unseen.id])
        }
    }

    // MARK: - Retries

    @Test(
        "a retriable error is retried after the backoff (exact, from the injected random), up to the attempts; then failed with the last error",
        arguments: backends())
    func retriesWithBackoff(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let handler = ScriptedJobHandler(
            JobKindPolicy(kind: "test.flaky", maxAttempts: 3, baseBackoff: .seconds(4), maxBackoff: .seconds(6), isRetriable: { $0 is LLMError })
        ) { job in
            throw LLMError(.rateLimited, "attempt \(job.job.attempt)", provider: "openai")
        }
        // 0.5: three quarters of each cap.
        let workers = fixture.workers([handler], random: { 0.5 })
        let start = fixture.time.now()
        try await running(workers) {
            let id = try await fixture.scheduler.enqueue(fixture.newJob("test.flaky", maxAttempts: 3)).job.id
            let error1 = JobError(kind: "rateLimited", message: "attempt 1")
            // Retry 1: cap min(6, 4·2⁰) = 4 s → 3 s.
            await fixture.queue.waitFor { $0 == .fail(jobID: id, error: error1, retryAt: start.addingTimeInterval(3)) }
            var job = try await fixture.job(id)
            #expect(job.state == .queued && job.runAfter == start.addingTimeInterval(3) && job.error == error1)
            // Not before it is due (the workers sleep until then).
            await fixture.time.waitForSleep(of: .seconds(3))
            fixture.time.advance(by: 2)
            #expect(handler.started.count == 1)
            fixture.time.advance(by: 1)
            // Retry 2: cap min(6, 4·2¹) = 6 s → 4.5 s after the second attempt.
            let error2 = JobError(kind: "rateLimited", message: "attempt 2")
            await fixture.queue.waitFor { $0 == .fail(jobID: id, error: error2, retryAt: start.addingTimeInterval(3 + 4.5)) }
            await fixture.time.waitForSleep(of: .seconds(4.5))
            fixture.time.advance(by: 4.5)
            let error3 = JobError(kind: "rateLimited", message: "attempt 3")
            await fixture.queue.waitFor { $0 == .fail(jobID: id, error: error3, retryAt: nil) }
            job = try await fixture.job(id)
            #expect(job.state == .failed)
            #expect(job.attempt == 3)
            #expect(job.error == error3)
            #expect(handler.started == [id, id, id])
        }
    }

    @Test("the backoff: the cap doubles up to maxBackoff; jitter spans half the cap to all of it")
    func backoffFormula() {
        let policy = JobKindPolicy(kind: "k", baseBackoff: .seconds(1), maxBackoff: .seconds(10))
        #expect(policy.backoff(beforeRetry: 1, random: 0) == .milliseconds(500))
        #expect(policy.backoff(beforeRetry: 1, random: 1) == .seconds(1))
        #expect(policy.backoff(beforeRetry: 3, random: 0.5) == .seconds(3))
        #expect(policy.backoff(beforeRetry: 4, random: 1) == .seconds(8))
        #expect(policy.backoff(beforeRetry: 5, random: 1) == .seconds(10))
        #expect(policy.backoff(beforeRetry: 500, random: 0) == .seconds(5))
    }

    @Test("a non-retriable error fails the job at once; an unknown one as internal; a JobError as it is", arguments: backends())
    func nonRetriableFailsAtOnce(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        struct Secret: Error { let detail = "password=hunter2" }
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.bad", maxAttempts: 5, isRetriable: { ($0 as? LLMError)?.kind == .rateLimited })) {
            job in
            switch job.job.payload.text {
            case #"{"case":"llm"}"#: throw LLMError(.authentication, "bad key", provider: "openai")
            case #"{"case":"job"}"#: throw JobError(kind: "chatDeleted", message: "the chat is gone")
            default: throw Secret()
            }
        }
        let workers = fixture.workers([handler])
        try await running(workers) {
            var ids: [String: String] = [:]
            for name in ["llm", "job", "other"] {
                var new = fixture.newJob("test.bad", maxAttempts: 5)
                new.payload = JSONFragment(unchecked: #"{"case":"\#(name)"}"#)
                ids[name] = try await fixture.scheduler.enqueue(new).job.id
            }
            for id in ids.values { await fixture.queue.waitFor { if case .fail(id, _, nil) = $0 { true } else { false } } }
            let llm = try await fixture.job(ids["llm"]!)
            #expect(llm.state == .failed && llm.attempt == 1 && llm.error == JobError(kind: "authentication", message: "bad key"))
            #expect(try await fixture.job(ids["job"]!).error == JobError(kind: "chatDeleted", message: "the chat is gone"))
            #expect(try await fixture.job(ids["other"]!).error == JobError(kind: "internal", message: "Internal error"))
            #expect(handler.started.count == 3)
        }
    }

    // MARK: - Crash recovery

    /// Jobs (one per `maxAttempts`) claimed by a worker that then died: its lease ran out 1 s ago.
    func crashedJobs(_ fixture: Fixture, kind: String, maxAttempts: [Int]) async throws -> [String] {
        var ids: [String] = []
        for attempts in maxAttempts { ids.append(try await fixture.queue.enqueue(fixture.newJob(kind, maxAttempts: attempts)).job.id) }
        let claimed = try await fixture.queue.base.claim(
            kinds: [kind], workerID: "dead-1", limit: ids.count, lease: .seconds(30), now: fixture.time.now())
        #expect(Set(claimed.map(\.job.id)) == Set(ids))
        fixture.time.advance(by: 31)
        return ids
    }

    @Test("a recovered job of a kind that may not run again ends failed interrupted without running", arguments: backends())
    func recoveredNotRerunnable(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.once", maxAttempts: 3, rerunAfterCrash: false))
        let id = try await crashedJobs(fixture, kind: "test.once", maxAttempts: [3])[0]
        try await running(fixture.workers([handler])) {
            await fixture.queue.waitFor { $0 == .fail(jobID: id, error: .interrupted, retryAt: nil) }
        }
        let job = try await fixture.job(id)
        #expect(job.state == .failed && job.error == .interrupted)
        #expect(handler.started.isEmpty)
    }

    @Test("a recovered job of a rerunnable kind runs again; with its attempts used it ends interrupted", arguments: backends())
    func recoveredRerunnable(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.again", maxAttempts: 2, rerunAfterCrash: true))
        let ids = try await crashedJobs(fixture, kind: "test.again", maxAttempts: [2, 1])
        let (again, spent) = (ids[0], ids[1])
        try await running(fixture.workers([handler])) {
            await fixture.queue.waitFor { $0 == .complete(jobID: again) }
            await fixture.queue.waitFor { $0 == .fail(jobID: spent, error: .interrupted, retryAt: nil) }
        }
        let job = try await fixture.job(again)
        #expect(job.state == .succeeded && job.attempt == 2)
        #expect(handler.started == [again])
    }

    // MARK: - Cancellation and leases

    @Test("cancelling a running job cancels its task and it ends cancelled (told here, or learnt by a heartbeat)", arguments: backends())
    func cancelRunning(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.long", concurrency: 2, lease: .seconds(30))) { _ in
            try await gate.pass()
            return nil
        }
        let workers = fixture.workers([handler])
        try await running(workers) {
            let local = try await fixture.scheduler.enqueue(fixture.newJob("test.long")).job.id
            let remote = try await fixture.scheduler.enqueue(fixture.newJob("test.long")).job.id
            await handler.changes.wait { handler.running == 2 }
            #expect(workers.runningJobIDs == [local, remote])

            // As jobs.cancel does in the process that runs the job.
            #expect(try await fixture.queue.cancel(id: local, ownerID: "usr_1", at: fixture.time.now()).cancelRequested)
            #expect(workers.cancelRunning(jobID: local))
            await fixture.queue.waitFor { if case .fail(local, _, nil) = $0 { true } else { false } }
            #expect(try await fixture.job(local).state == .cancelled)
            #expect(handler.cancelled == [local])

            // As another process's jobs.cancel: this worker learns it at the next heartbeat.
            _ = try await fixture.queue.cancel(id: remote, ownerID: "usr_1", at: fixture.time.now())
            #expect(try await fixture.job(remote).state == .running)
            await fixture.time.waitForSleep(of: .seconds(10))
            fixture.time.advance(by: 10)
            await fixture.queue.waitFor { if case .fail(remote, _, nil) = $0 { true } else { false } }
            #expect(try await fixture.job(remote).state == .cancelled)
            #expect(handler.cancelled == [local, remote])
        }
        #expect(workers.cancelRunning(jobID: "job_none") == false)
    }

    @Test("heartbeats renew the lease: a job running past its first lease is not claimed by another worker", arguments: backends())
    func leaseRenewal(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.slow", lease: .seconds(30))) { _ in
            try await gate.pass()
            return JSONFragment(unchecked: #"{"done":true}"#)
        }
        let workers = fixture.workers([handler])
        try await running(workers) {
            let id = try await fixture.scheduler.enqueue(fixture.newJob("test.slow")).job.id
            await handler.changes.wait { handler.running == 1 }
            // Three minutes, a heartbeat every 10 s.
            for beat in 1...18 {
                await fixture.time.waitForSleep(of: .seconds(10))
                fixture.time.advance(by: 10)
                let until = fixture.time.now().addingTimeInterval(30)
                await fixture.queue.waitFor { $0 == .heartbeat(jobID: id, until: until, status: .held) }
                #expect(fixture.queue.calls.filter { if case .heartbeat = $0 { true } else { false } }.count == beat)
            }
            let other = try await fixture.queue.base.claim(
                kinds: ["test.slow"], workerID: "host-2", limit: 1, lease: .seconds(30), now: fixture.time.now())
            #expect(other.isEmpty)
            gate.open()
            await fixture.queue.waitFor { $0 == .complete(jobID: id) }
            let job = try await fixture.job(id)
            #expect(job.state == .succeeded && job.attempt == 1 && job.result == JSONFragment(unchecked: #"{"done":true}"#))
        }
    }

    @Test(
        "one heartbeat loop renews every running attempt each third of the shortest lease, each for its own kind's lease",
        arguments: backends())
    func heartbeatsOfSeveralKinds(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let short = ScriptedJobHandler(JobKindPolicy(kind: "test.short", lease: .seconds(30))) { _ in
            try await gate.pass()
            return nil
        }
        let long = ScriptedJobHandler(JobKindPolicy(kind: "test.long", concurrency: 2, lease: .seconds(90))) { _ in
            try await gate.pass()
            return nil
        }
        let workers = fixture.workers([short, long])
        try await running(workers) {
            let a = try await fixture.scheduler.enqueue(fixture.newJob("test.short")).job.id
            let b = try await fixture.scheduler.enqueue(fixture.newJob("test.long")).job.id
            let c = try await fixture.scheduler.enqueue(fixture.newJob("test.long")).job.id
            await short.changes.wait { short.running == 1 }
            await long.changes.wait { long.running == 2 }
            for beat in 1...4 {
                await fixture.time.waitForSleep(of: .seconds(10))
                fixture.time.advance(by: 10)
                let now = fixture.time.now()
                await fixture.queue.waitFor { $0 == .heartbeat(jobID: a, until: now.addingTimeInterval(30), status: .held) }
                await fixture.queue.waitFor { $0 == .heartbeat(jobID: b, until: now.addingTimeInterval(90), status: .held) }
                await fixture.queue.waitFor { $0 == .heartbeat(jobID: c, until: now.addingTimeInterval(90), status: .held) }
                #expect(fixture.queue.calls.filter { if case .heartbeat = $0 { true } else { false } }.count == 3 * beat)
            }
            // 40 s in: past the first lease of the short kind, and nobody else can take any of them.
            let other = try await fixture.queue.base.claim(
                kinds: ["test.short", "test.long"], workerID: "host-2", limit: 3, lease: .seconds(30), now: fixture.time.now())
            #expect(other.isEmpty)
            gate.open()
            await fixture.queue.changes.wait { fixture.queue.completed.count == 3 }
        }
    }

    @Test("a lost lease stops the attempt and stores nothing", arguments: backends())
    func lostLease(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let handler = ScriptedJobHandler(JobKindPolicy(kind: "test.lost", lease: .seconds(30))) { _ in
            try await gate.pass()
            return nil
        }
        let workers = fixture.workers([handler])
        try await running(workers) {
            let id = try await fixture.scheduler.enqueue(fixture.newJob("test.lost")).job.id
            await handler.changes.wait { handler.running == 1 }
            // The lease ran out before a heartbeat (a stalled process) and another worker took the
            // job (its clock ahead of ours: this worker's next heartbeat is still to come).
            let stolen = try await fixture.queue.base.claim(
                kinds: ["test.lost"], workerID: "host-2", limit: 1, lease: .seconds(300), now: fixture.time.now().addingTimeInterval(31))
            #expect(stolen.map(\.recovered) == [true])
            await fixture.time.waitForSleep(of: .seconds(10))
            fixture.time.advance(by: 10)
            await fixture.queue.waitFor { $0 == .heartbeat(jobID: id, until: fixture.time.now().addingTimeInterval(30), status: .lost) }
            await handler.changes.wait { handler.ended == [id] }
            #expect(handler.cancelled == [id])
            let job = try await fixture.job(id)
            #expect(job.state == .running && job.workerId == "host-2")
        }
        #expect(!fixture.queue.calls.contains { if case .fail = $0 { true } else if case .complete = $0 { true } else { false } })
    }

    // MARK: - Shutdown

    @Test("shutdown cancels running attempts and releases them; a handler that ignores it is released at the timeout", arguments: backends())
    func shutdownReleases(backend: JobQueueBackend) async throws {
        let fixture = Fixture(queue: try await backend.makeQueue())
        let gate = JobGate()
        let polite = ScriptedJobHandler(JobKindPolicy(kind: "test.polite")) { _ in
            try await gate.pass()
            return nil
        }
        let stubborn = JobGate()
        let deaf = ScriptedJobHandler(JobKindPolicy(kind: "test.deaf")) { _ in
            // Ignores cancellation until the test opens its own gate (awaiting an unstructured
            // task's value does not pass the cancellation on).
            await Task { try? await stubborn.pass() }.value
            return nil
        }
        let workers = fixture.workers([polite, deaf])
        let task = Task { await workers.run() }
        let a = try await fixture.scheduler.enqueue(fixture.newJob("test.polite")).job.id
        let b = try await fixture.scheduler.enqueue(fixture.newJob("test.deaf")).job.id
        await polite.changes.wait { polite.running == 1 }
        await deaf.changes.wait { deaf.running == 1 }

        let shutdown = Task { await workers.shutdown(timeout: .seconds(7)) }
        await fixture.queue.waitFor { $0 == .release(jobID: a) }
        #expect(polite.cancelled == [a])
        #expect(!fixture.queue.calls.contains(.release(jobID: b)))
        await fixture.time.waitForSleep(of: .seconds(7))
        fixture.time.advance(by: 7)
        await shutdown.value
        await task.value
        #expect(fixture.queue.calls.contains(.release(jobID: b)))
        for id in [a, b] {
            let job = try await fixture.job(id)
            #expect(job.state == .queued && job.attempt == 0)
        }
        stubborn.open()
        await deaf.changes.wait { deaf.ended == [b] }
    }

    // MARK: - Errors

    @Test("what a failed job keeps: JobError as is, LLMError as its kind and message, anything else internal")
    func jobErrorMapping() {
        #expect(JobWorkers.jobError(for: JobError.interrupted) == .interrupted)
        #expect(JobWorkers.jobError(for: LLMError(.timeout, "slow", provider: "openai")) == JobError(kind: "timeout", message: "slow"))
        #expect(JobWorkers.jobError(for: CocoaError(.fileNoSuchFile)) == JobError(kind: "internal", message: "Internal error"))
    }

    @Test("a worker id is the host and a random part")
    func workerID() {
        let id = JobWorkers.makeWorkerID(host: "box")
        #expect(id.hasPrefix("box-") && id.count == 12)
        #expect(id != JobWorkers.makeWorkerID(host: "box"))
    }
}
