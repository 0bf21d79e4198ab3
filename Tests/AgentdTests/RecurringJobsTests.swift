import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// Retention as recurring system jobs (`RecurringJobs`, `events.prune`, `audit.prune`, `jobs.prune`) on the
/// daemon's graph and its SQLite queue, with a clock and sleeper the test moves; and the
/// `[jobs]` settings.
@Suite("Recurring jobs", .timeLimit(.minutes(1)))
struct RecurringJobsTests {
    /// 123 s into the 600 s slot that starts at 1_800_000_000.
    static let start = Date(timeIntervalSince1970: 1_800_000_123)
    static let slot = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("retention is enqueued once per interval slot (idempotent, due at the slot's start) and each occurrence prunes")
    func retentionPerSlot() async throws {
        let time = ManualTime(Self.start)
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.events.retentionCount = 1
        configuration.audit.retentionCount = 1
        let collaborators = Dependencies.Collaborators(
            clock: time, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), jobSleeper: time)
        let dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        defer { try? dependencies.database.close() }
        // The daemon's graph registers four recurring kinds: events and audit every 600 s by default,
        // the queue's own retention every hour, expired uploads every 5 minutes.
        #expect(dependencies.recurringJobs.jobs.map(\.kind) == ["events.prune", "audit.prune", "jobs.prune", "files.uploads_expire"])
        #expect(dependencies.recurringJobs.jobs.map(\.interval) == [.seconds(600), .seconds(600), .seconds(3600), .seconds(300)])
        // The workers run those, agent.run (background agent runs) and files.blob_delete (enqueued
        // by files.delete), which do not recur.
        #expect(
            Set(dependencies.jobWorkers.concurrency.keys)
                == ["agent.run", "events.prune", "audit.prune", "jobs.prune", "files.uploads_expire", "files.blob_delete"])

        // Three events (two accounts, one module), two audit entries, all handled by the audit log.
        let alice = try await dependencies.auth.register(username: "alice", password: "password1")
        _ = try await dependencies.auth.register(username: "bob", password: "password1")
        _ = try await dependencies.modules.create(.init(title: "m"), userID: alice.id)
        try await dependencies.eventConsumers.first!.catchUp()

        // The same pieces the graph wires, on a queue that tells the test what happens.
        let queue = RecordingJobQueue(dependencies.jobQueue)
        let signal = JobWakeSignal()
        let scheduler = JobScheduler(queue: queue, signal: signal)
        let handlers: [any JobHandler] = [
            EventsPruneJob(events: dependencies.events, logger: Dependencies.quietLogger),
            AuditPruneJob(audit: dependencies.audit, logger: Dependencies.quietLogger),
        ]
        let workers = JobWorkers(
            queue: queue, handlers: handlers, signal: signal, workerID: "host-1", clock: time, sleeper: time,
            settings: .init(pollInterval: .seconds(3600)), logger: Dependencies.quietLogger)
        let recurring = RecurringJobs(
            jobs: handlers.map { RecurringJob($0, every: .seconds(600)) }, scheduler: scheduler, ids: SequentialIDs(), clock: time, sleeper: time,
            logger: Dependencies.quietLogger)
        let running = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await workers.run() }
                group.addTask { await recurring.run() }
            }
        }

        await queue.changes.wait { queue.completed.count == 2 }
        var jobs = try await queue.list(JobQuery(ownerID: nil, limit: 10)).map(\.job)
        #expect(jobs.count == 2)
        for job in jobs {
            #expect(job.state == .succeeded && job.ownerID == nil)
            #expect(job.runAfter == Self.slot)
            #expect(job.idempotencyKey == "600s@1800000000")
            #expect(job.maxAttempts == 3)
        }
        let results = Dictionary(uniqueKeysWithValues: jobs.map { ($0.kind, $0.result?.text) })
        #expect(results["events.prune"] == #"{"deleted":2,"prunedThrough":2}"#)
        #expect(results["audit.prune"] == #"{"deleted":1}"#)

        // Asked again within the slot (a restart, another daemon on the same database): the same job.
        let again = try await recurring.enqueueOccurrence(of: recurring.jobs[0], at: Self.start.addingTimeInterval(400))
        #expect(!again.created)
        #expect(again.job.id == jobs.first { $0.kind == "events.prune" }?.id)

        // The next slot: one more of each, due at its start.
        await time.waitForSleep(of: .seconds(477), count: 2)
        time.advance(by: 477)
        await queue.changes.wait { queue.completed.count == 4 }
        jobs = try await queue.list(JobQuery(ownerID: nil, limit: 10)).map(\.job)
        #expect(jobs.count == 4)
        #expect(jobs.filter { $0.idempotencyKey == "600s@1800000600" }.map(\.kind).sorted() == ["audit.prune", "events.prune"])
        #expect(jobs.allSatisfy { $0.state == .succeeded })

        await workers.shutdown(timeout: .zero)
        running.cancel()
        await running.value
    }

    @Test(
        "jobs.prune, run by the workers as a recurring job, deletes the jobs finished more than the retention ago, in batches, and no live one",
        arguments: JobQueueBackend.allCases)
    func jobsPrune(backend: JobQueueBackend) async throws {
        let day: TimeInterval = 24 * 3600
        let time = ManualTime(Self.start)
        // Set up on the queue itself: the recording one (below) sees only what the workers do.
        let base = try await backend.makeQueue()
        // Jobs that ended 8, 9 and 10 days ago (a user's and the daemon's alike), one 6 days ago,
        // and live ones created long ago: one queued, one waiting for its retry.
        func finish(_ id: String, owner: String?, daysAgo: Double, failed: Bool = false) async throws {
            let at = Self.start.addingTimeInterval(-daysAgo * day)
            _ = try await base.enqueue(NewJob(id: id, kind: "test.done", ownerID: owner, runAfter: at))
            let claimed = try #require(try await base.claim(kinds: ["test.done"], workerID: "old", limit: 1, lease: .seconds(30), now: at).first)
            if failed {
                _ = try await base.fail(claimed.lease, error: JobError(kind: "internal", message: "boom"), retryAt: nil, at: at)
            } else {
                _ = try await base.complete(claimed.lease, result: nil, at: at)
            }
        }
        try await finish("job_old_1", owner: "usr_1", daysAgo: 10, failed: true)
        try await finish("job_old_2", owner: nil, daysAgo: 9)
        try await finish("job_old_3", owner: "usr_1", daysAgo: 8)
        try await finish("job_recent", owner: "usr_1", daysAgo: 6, failed: true)
        _ = try await base.enqueue(NewJob(id: "job_queued", kind: "test.idle", ownerID: "usr_1", runAfter: Self.start.addingTimeInterval(-30 * day)))
        _ = try await base.enqueue(
            NewJob(id: "job_waiting", kind: "test.done", ownerID: nil, maxAttempts: 2, runAfter: Self.start.addingTimeInterval(-20 * day)))
        let waiting = try #require(
            try await base.claim(kinds: ["test.done"], workerID: "old", limit: 1, lease: .seconds(30), now: Self.start.addingTimeInterval(-20 * day))
                .first)
        _ = try await base.fail(
            waiting.lease, error: JobError(kind: "timeout", message: "t"), retryAt: Self.start.addingTimeInterval(day), at: waiting.job.runAfter)

        // Two per batch: three old jobs take a full batch and a short one.
        let queue = RecordingJobQueue(base)
        let prune = JobsPruneJob(queue: queue, clock: time, retention: 7 * day, batchSize: 2, logger: Dependencies.quietLogger)
        let signal = JobWakeSignal()
        let workers = JobWorkers(
            queue: queue, handlers: [prune], signal: signal, workerID: "host-1", clock: time, sleeper: time,
            settings: .init(pollInterval: .seconds(3600)), logger: Dependencies.quietLogger)
        let recurring = RecurringJobs(
            jobs: [RecurringJob(prune, every: .seconds(3600))], scheduler: JobScheduler(queue: queue, signal: signal), ids: SequentialIDs(),
            clock: time, sleeper: time, logger: Dependencies.quietLogger)
        let running = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { await workers.run() }
                group.addTask { await recurring.run() }
            }
        }
        await queue.changes.wait { queue.completed.count == 1 }
        await workers.shutdown(timeout: .zero)
        running.cancel()
        await running.value

        let cutoff = Self.start.addingTimeInterval(-7 * day)
        let prunes = queue.calls.filter { if case .prune = $0 { true } else { false } }
        #expect(prunes == [.prune(finishedBefore: cutoff, limit: 2, deleted: 2), .prune(finishedBefore: cutoff, limit: 2, deleted: 1)])
        let system = try await queue.list(JobQuery(ownerID: nil, limit: 10)).map(\.job)
        let pruneJob = try #require(system.first { $0.kind == JobsPruneJob.kind })
        #expect(pruneJob.state == .succeeded && pruneJob.result?.text == #"{"deleted":3}"#)
        let users = try await queue.list(JobQuery(ownerID: "usr_1", limit: 10)).map(\.job.id)
        #expect(Set(users) == ["job_recent", "job_queued"])
        #expect(Set(system.map(\.id)) == [pruneJob.id, "job_waiting"])
        #expect(system.first { $0.id == "job_waiting" }?.state == .queued)
    }

    @Test("interval slots are aligned on the epoch; the key names the interval and the slot")
    func slots() {
        let job = RecurringJob(kind: "events.prune", interval: .seconds(600))
        #expect(job.slotStart(containing: Self.start) == Self.slot)
        #expect(job.slotStart(containing: Self.slot) == Self.slot)
        #expect(job.slotStart(containing: Self.slot.addingTimeInterval(599.9)) == Self.slot)
        #expect(job.slotStart(containing: Self.slot.addingTimeInterval(600)) == Self.slot.addingTimeInterval(600))
        #expect(job.idempotencyKey(slotStart: Self.slot) == "600s@1800000000")
    }

    @Test(
        "[jobs] (retention and prune interval too), events.prune_interval_seconds and audit.prune_interval_seconds from the file and the environment; bad values refused by name"
    )
    func settings() throws {
        let defaults = try LLMConfigurationTests.load().configuration.jobs
        #expect(defaults.concurrency.isEmpty && defaults.pollInterval == .seconds(5))
        #expect(defaults.eventsPruneInterval == .seconds(600) && defaults.auditPruneInterval == .seconds(600))
        #expect(defaults.retentionAge == 7 * 24 * 3600 && defaults.pruneInterval == .seconds(3600))

        let loaded = try LLMConfigurationTests.load(
            """
            [jobs]
            concurrency.agent_run = 8
            poll_interval_ms = 250
            retention_days = 30

            [jobs.concurrency]
            chat_title = 2

            [events]
            prune_interval_seconds = 60

            [audit]
            prune_interval_seconds = 3600
            """, environment: ["AGENTD_JOBS_CONCURRENCY_EVENTS_PRUNE": "3", "AGENTD_JOBS_PRUNE_INTERVAL_SECONDS": "120"])
        let jobs = loaded.configuration.jobs
        #expect(jobs.concurrency == ["agent.run": 8, "chat.title": 2, "events.prune": 3])
        #expect(jobs.pollInterval == .milliseconds(250))
        #expect(jobs.eventsPruneInterval == .seconds(60) && jobs.auditPruneInterval == .seconds(3600))
        #expect(jobs.retentionAge == 30 * 24 * 3600 && jobs.pruneInterval == .seconds(120))
        #expect(ConfigurationLoader.describe(loaded).contains("jobs.concurrency.agent_run"))

        func refusal(_ toml: String) -> String {
            do {
                _ = try LLMConfigurationTests.load(toml)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("[jobs]\nconcurrency.agent_run = 0\n").contains("jobs.concurrency.agent_run must be at least 1, got 0"))
        #expect(refusal("[jobs]\nconcurrency.agent_run = \"many\"\n").contains("jobs.concurrency.agent_run must be an integer"))
        #expect(refusal("[jobs]\nconcurrency.nope = 2\n").contains("unknown key jobs.concurrency.nope"))
        #expect(refusal("[events]\nprune_interval_seconds = 0\n").contains("events.prune_interval_seconds must be at least 1, got 0"))
        #expect(refusal("[jobs]\npoll_interval_ms = 1\n").contains("jobs.poll_interval_ms must be at least 10, got 1"))
        #expect(refusal("[jobs]\nretention_days = 0\n").contains("jobs.retention_days must be at least 1, got 0"))
        #expect(refusal("[jobs]\nprune_interval_seconds = 0\n").contains("jobs.prune_interval_seconds must be at least 1, got 0"))
    }

    @Test("every job kind the daemon registers has its jobs.concurrency setting, which the workers apply")
    func everyKindHasASetting() async throws {
        try await withInProcessDaemon(configure: { $0.jobs.concurrency["events.prune"] = 4 }, runJobs: false) { daemon in
            let kinds = daemon.dependencies.jobWorkers.concurrency
            // bench/jobs.sh's no-op kind exists only with the test methods: no setting.
            for kind in kinds.keys where kind != NoopJob.kind {
                #expect(JobsSettings.kinds.contains(kind), "\(kind) has no jobs.concurrency setting: add it to JobsSettings.kinds")
                #expect(Settings.byKey[JobsSettings.concurrencyKey(kind: kind)] != nil)
            }
            #expect(kinds["events.prune"] == 4)
            #expect(kinds["audit.prune"] == 1)
        }
    }

    @Test("in the daemon's graph, a job enqueued through the scheduler runs at once (no poll) and its events reach its owner")
    func daemonGraphRunsJobs() async throws {
        // A poll of an hour: only the scheduler's wake can start the job within the time limit.
        try await withInProcessDaemon(configure: { $0.jobs.pollInterval = .seconds(3600) }) { daemon in
            let client = try await daemon.connect()
            let me = try await client.send(Auth.WhoAmI.self, RPCNoParams()).id
            _ = try await client.send(Events.Subscribe.self, .init(topics: ["job.*"]))
            // A retention run filed under a user, so that its events reach the user's subscription.
            let job = try await daemon.dependencies.jobScheduler.enqueue(
                NewJob(id: "job_wired", kind: EventsPruneJob.kind, ownerID: me, maxAttempts: 1, runAfter: daemon.clock.now())
            ).job
            var topics: [String] = []
            while topics.last != "job.succeeded" {
                let event = try await client.nextNotification(of: EventsNotifications.Event.self)
                if event.data.text.contains(job.id) { topics.append(event.topic) }
            }
            #expect(topics == ["job.queued", "job.started", "job.succeeded"])
            #expect(try await client.send(Jobs.Get.self, .init(id: job.id)).state == .succeeded)
        }
    }
}
