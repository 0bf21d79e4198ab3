import AgentdTesting
import Foundation
import RPC
import Services
import Synchronization
import Testing

/// The `jobs.*` methods through the daemon's router and middleware, in process: jobs are enqueued
/// on the daemon's own queue (`dependencies.jobQueue`), as the domains that run background work do.
/// The workers do not run (`runJobs: false`): the test drives the queue itself, and the retention
/// jobs they would enqueue at start take ids (`job_1`, …) from the same sequence as these.
@Suite("Jobs methods (in process)", .timeLimit(.minutes(2)))
struct JobsTests {
    /// Records what `jobs.cancel` asks the workers to stop.
    final class RecordingCanceller: JobCanceller {
        private let cancelled = Mutex<[String]>([])
        func cancelRunning(jobID: String) -> Bool {
            cancelled.withLock { $0.append(jobID) }
            return true
        }
        var jobIDs: [String] { cancelled.withLock { $0 } }
    }

    static func enqueue(_ daemon: InProcessDaemon, _ id: String, owner: String?, kind: String = "test.noop", maxAttempts: Int = 1) async throws
        -> Job
    {
        try await daemon.dependencies.jobQueue.enqueue(
            NewJob(
                id: id, kind: kind, ownerID: owner, payload: JSONFragment(unchecked: #"{"n":1}"#), maxAttempts: maxAttempts,
                runAfter: daemon.clock.now())
        ).job
    }

    @Test("list (newest first, state and kind filters, keyset pages, limit and cursor checked), get, cancel and retry of the caller's jobs")
    func lifecycle() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let me = try await client.send(Auth.WhoAmI.self, RPCNoParams()).id
            _ = try await Self.enqueue(daemon, "job_1", owner: me)
            _ = try await Self.enqueue(daemon, "job_2", owner: me, kind: "test.other")
            _ = try await Self.enqueue(daemon, "job_3", owner: me)
            _ = try await Self.enqueue(daemon, "job_system", owner: nil)

            let all = try await client.send(Jobs.List.self, .init())
            #expect(all.items.map(\.id) == ["job_3", "job_2", "job_1"] && all.nextCursor == nil)
            #expect(all.items.last?.payload.text == #"{"n":1}"# && all.items.allSatisfy { $0.state == .queued })
            let page = try await client.send(Jobs.List.self, .init(limit: 2))
            #expect(page.items.map(\.id) == ["job_3", "job_2"])
            let cursor: String = try #require(page.nextCursor)
            let next = try await client.send(Jobs.List.self, .init(cursor: cursor, limit: 2))
            #expect(next.items.map(\.id) == ["job_1"] && next.nextCursor == nil)
            #expect(try await client.send(Jobs.List.self, .init(kind: "test.other")).items.map(\.id) == ["job_2"])

            for (params, field) in [(Jobs.List.Params(limit: 0), "limit"), (.init(limit: 201), "limit"), (.init(cursor: "nope"), "cursor")] {
                let error = await #expect(throws: RPCError.self) { try await client.send(Jobs.List.self, params) }
                #expect(error?.code == .invalidParams && error?.dataValue?["field"]?.stringValue == field, "\(String(describing: error))")
            }
            let badState = await #expect(throws: RPCError.self) { try await client.call("jobs.list", #"{"state":"paused"}"#) }
            #expect(badState?.code == .invalidParams)

            let got = try await client.send(Jobs.Get.self, .init(id: "job_1"))
            #expect(got.id == "job_1" && got.kind == "test.noop" && got.attempt == 0 && got.maxAttempts == 1)

            // Cancel a queued job: cancelled at once; cancelling again answers it as it is.
            let cancelled = try await client.send(Jobs.Cancel.self, .init(id: "job_1"))
            #expect(cancelled.state == .cancelled && cancelled.finishedAt != nil)
            #expect(try await client.send(Jobs.Cancel.self, .init(id: "job_1")) == cancelled)
            #expect(try await client.send(Jobs.List.self, .init(state: .cancelled)).items.map(\.id) == ["job_1"])

            // Retry it: queued again, with one more attempt allowed; a queued job cannot be retried.
            let retried = try await client.send(Jobs.Retry.self, .init(id: "job_1"))
            #expect(retried.state == .queued && retried.finishedAt == nil)
            let notRetriable = await #expect(throws: RPCError.self) { try await client.send(Jobs.Retry.self, .init(id: "job_1")) }
            #expect(notRetriable?.code == .invalidParams && notRetriable?.dataValue?["field"]?.stringValue == "id")
            #expect(notRetriable?.dataValue?["reason"]?.stringValue?.contains("queued") == true, "\(String(describing: notRetriable))")

            // The changes' events are the caller's, on the bus and in the log.
            let replayed = try await client.send(Events.Replay.self, .init(since: 0, topics: ["job.*"]))
            #expect(replayed.events.map(\.topic) == ["job.queued", "job.queued", "job.queued", "job.cancelled", "job.queued"])
        }
    }

    @Test("another user's job, and the daemon's own, are Not found {kind: job} to jobs.get, cancel and retry, and absent from jobs.list")
    func isolation() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let owner = try await daemon.connect()
            let ownerID = try await owner.send(Auth.WhoAmI.self, RPCNoParams()).id
            _ = try await Self.enqueue(daemon, "job_mine", owner: ownerID)
            _ = try await Self.enqueue(daemon, "job_system", owner: nil)
            let other = try await daemon.registerAndLogin(username: "mallory")
            #expect(try await other.send(Jobs.List.self, .init()).items.isEmpty)

            let calls: [(String, @Sendable (InProcessClient, String) async throws -> Void)] = [
                ("jobs.get", { _ = try await $0.send(Jobs.Get.self, .init(id: $1)) }),
                ("jobs.cancel", { _ = try await $0.send(Jobs.Cancel.self, .init(id: $1)) }),
                ("jobs.retry", { _ = try await $0.send(Jobs.Retry.self, .init(id: $1)) }),
            ]
            for (name, call) in calls {
                for id in ["job_mine", "job_system", "job_missing"] {
                    let error = await #expect(throws: RPCError.self) { try await call(other, id) }
                    #expect(error?.code.rawValue == -32030, "\(name) \(id)")
                    #expect(error?.dataValue?["kind"]?.stringValue == "job" && error?.dataValue?["id"]?.stringValue == id, "\(name) \(id)")
                }
            }
            // Nothing the other user tried changed the job.
            #expect(try await owner.send(Jobs.Get.self, .init(id: "job_mine")).state == .queued)
            // The owner does not see the daemon's own job either.
            let hidden = await #expect(throws: RPCError.self) { try await owner.send(Jobs.Get.self, .init(id: "job_system")) }
            #expect(hidden?.code.rawValue == -32030)
        }
    }

    @Test("cancelling a running job marks it cancelRequested and tells the worker running it here")
    func cancelRunning() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let me = try await client.send(Auth.WhoAmI.self, RPCNoParams()).id
            let queue = daemon.dependencies.jobQueue
            _ = try await Self.enqueue(daemon, "job_run", owner: me)
            _ = try await Self.enqueue(daemon, "job_wait", owner: me)
            let claimed = try await queue.claim(kinds: ["test.noop"], workerID: "w1", limit: 1, lease: .seconds(30), now: daemon.clock.now())
            #expect(claimed.map(\.job.id) == ["job_run"])

            // Through the wire (the composition root's canceller does nothing yet): marked, still running.
            let marked = try await client.send(Jobs.Cancel.self, .init(id: "job_run"))
            #expect(marked.state == .running && marked.cancelRequested)
            #expect(try await queue.heartbeat(try #require(claimed.first?.lease), until: daemon.clock.now()) == .cancelRequested)

            // The service tells the canceller about a running job only.
            let canceller = RecordingCanceller()
            let service = JobsService(queue: queue, clock: daemon.clock, canceller: canceller)
            _ = try await service.cancel(id: "job_run", userID: me)
            _ = try await service.cancel(id: "job_wait", userID: me)
            #expect(canceller.jobIDs == ["job_run"])
        }
    }
}
