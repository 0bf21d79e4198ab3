import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// `background: true` through the daemon's router (in process): the reply's shape, the run and its
/// job as clients see them, both ways of cancelling a run whose job is still queued (workers
/// off), and runs carried out by the daemon's job workers (a scripted provider).
@Suite("Agent background runs (in process)", .timeLimit(.minutes(2)))
struct AgentBackgroundTests {
    @Test("agent.act background: true answers {runId, jobId, chatId, messageId} at once; the run and its agent.run job are visible")
    func reply() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let reply = try await client.call("v2.agent.act", #"{"message":"In the background","background":true}"#).decode(JSONValue.self)
            guard case .object(let members) = reply else { throw RPCError(.internalError, "reply: \(reply)") }
            #expect(Set(members.keys) == ["runId", "jobId", "chatId", "messageId"], "reply: \(reply)")
            let typed = try await client.send(Agent.Act.self, .init(message: "Typed", background: true))
            let started = try #require(typed.background, "\(typed)")
            #expect(typed.answer == nil)

            let messages = try await client.call("v2.chats.messages.list", #"{"chatId":"\#(started.chatId)"}"#).decode(JSONValue.self)
            #expect(messages["items"]?.arrayValue?.map { $0["id"]?.stringValue } == [started.messageId], "the question is stored: \(messages)")
            let run = try await client.send(Agent.Runs.Get.self, .init(runId: started.runId))
            #expect(run.jobId == started.jobId && run.attempt == 1 && run.partial == nil, "\(run)")
            let job = try await client.send(Jobs.Get.self, .init(id: started.jobId))
            #expect(job.kind == "agent.run" && job.idempotencyKey == started.runId && job.maxAttempts == AgentRunJob.maxAttempts, "\(job)")
            #expect(try job.payload.decode(AgentRunJob.Payload.self).runId == started.runId)

            // agent.regenerate too; messageId is the question it answers again.
            let again = try await client.send(Agent.Regenerate.self, .init(messageId: started.messageId, background: true))
            #expect(again.background?.messageId == started.messageId && again.background?.chatId == started.chatId, "\(again)")
        }
    }

    @Test("agent.cancel of a background run whose job is queued ends both cancelled; jobs.cancel of the queued job ends the run cancelled too")
    func cancelQueued() async throws {
        try await withInProcessDaemon(runJobs: false) { daemon in
            let client = try await daemon.connect()
            let first = try #require(try await client.send(Agent.Act.self, .init(message: "One", background: true)).background)
            let cancelled = try await client.send(Agent.Cancel.self, .init(runId: first.runId))
            #expect(cancelled.status == .cancelled && cancelled.assistantMessageId == nil, "\(cancelled)")
            #expect(try await client.send(Jobs.Get.self, .init(id: first.jobId)).state == .cancelled)

            let watcher = try await daemon.connect()
            _ = try await watcher.send(Events.Subscribe.self, .init(topics: ["agent.run.cancelled"]))
            let second = try #require(try await client.send(Agent.Act.self, .init(chatId: first.chatId, message: "Two", background: true)).background)
            #expect(try await client.send(Jobs.Cancel.self, .init(id: second.jobId)).state == .cancelled)
            let event = try await watcher.nextNotification(of: EventsNotifications.Event.self)
            let data = try event.data.decode(JSONValue.self)
            #expect(event.topic == "agent.run.cancelled" && data["runId"] == .string(second.runId), "\(event)")
            #expect(try await client.send(Agent.Runs.Get.self, .init(runId: second.runId)).status == .cancelled)
        }
    }

    /// A daemon whose agent answers from `scripts`, with the job workers running; `started` opens
    /// when the provider is asked (an attempt is generating: its run can be cancelled here).
    func withWorkers<T: Sendable>(
        _ scripts: [[ScriptedLLMProvider.Step]], _ body: (InProcessDaemon, ScriptedLLMProvider, Gate) async throws -> T
    ) async throws -> T {
        let provider = ScriptedLLMProvider(scripts: scripts)
        let started = Gate()
        let collaborators = Dependencies.Collaborators(
            clock: SystemClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(),
            llmProvider: SignallingProvider(base: provider, asked: started))
        return try await withInProcessDaemon(collaborators: collaborators) { daemon in try await body(daemon, provider, started) }
    }

    /// Events of `topics` on a connection of its own, from the start (`since: 0`).
    func watch(_ daemon: InProcessDaemon, _ topics: [String]) async throws -> InProcessClient {
        let watcher = try await daemon.connect()
        _ = try await watcher.send(Events.Subscribe.self, .init(topics: topics, since: 0))
        return watcher
    }

    /// The next event about `id` (a run or job id in its data) of those `watcher` receives.
    func next(_ watcher: InProcessClient, about id: String, key: String = "runId") async throws -> (topic: String, data: JSONValue) {
        while true {
            let event = try await watcher.nextNotification(of: EventsNotifications.Event.self)
            let data = try event.data.decode(JSONValue.self)
            if data[key] == .string(id) { return (event.topic, data) }
        }
    }

    @Test("the job runs the run after its connection closed: completed, one answer, the job succeeded")
    func outlivesConnection() async throws {
        let gate = Gate()
        try await withWorkers([AgentServiceTests.blockingScript(gate)]) { daemon, _, started in
            let watcher = try await watch(daemon, ["agent.run.completed", "agent.run.failed", "agent.run.cancelled"])
            let client = try await daemon.connect()
            let run = try #require(try await client.send(Agent.Act.self, .init(message: "Outlive me", background: true)).background)
            await client.close()
            await started.wait()
            gate.open()
            let ended = try await next(watcher, about: run.runId)
            #expect(ended.topic == "agent.run.completed", "\(ended)")
            let other = try await daemon.connect()
            let stored = try await other.send(Agent.Runs.Get.self, .init(runId: run.runId))
            let messages = try await other.send(Chats.Messages.List.self, .init(chatId: run.chatId))
            let answers = messages.items.filter { $0.role == .assistant }
            #expect(stored.status == .completed && answers.map(\.content) == ["Hello"] && stored.assistantMessageId == answers.first?.id)
            let jobWatcher = try await watch(daemon, ["job.succeeded"])
            _ = try await next(jobWatcher, about: run.jobId, key: "jobId")
            let job = try await other.send(Jobs.Get.self, .init(id: run.jobId))
            #expect(job.state == .succeeded && job.attempt == 1, "\(job)")
        }
    }

    @Test("a transient provider error is retried by the workers: the second attempt answers, once")
    func transientRetried() async throws {
        let unavailable = LLMError(.upstreamUnavailable, "503", provider: "fake", status: 503, retryAfterMs: 1)
        try await withWorkers([[.fail(unavailable)], ScriptedLLMProvider.answer(["Second time"])]) { daemon, provider, _ in
            let watcher = try await watch(daemon, ["agent.run.completed", "agent.run.failed"])
            let client = try await daemon.connect()
            let run = try #require(try await client.send(Agent.Act.self, .init(message: "Flaky", background: true)).background)
            let ended = try await next(watcher, about: run.runId)
            #expect(ended.topic == "agent.run.completed", "\(ended)")
            let stored = try await client.send(Agent.Runs.Get.self, .init(runId: run.runId))
            #expect(stored.status == .completed && stored.attempt == 2 && provider.requests.count == 2, "\(stored)")
            let answers = try await client.send(Chats.Messages.List.self, .init(chatId: run.chatId)).items.filter { $0.role == .assistant }
            #expect(answers.map(\.content) == ["Second time"])
        }
    }

    @Test("agent.cancel of a running background run: run cancelled with its partial answer, job cancelled")
    func agentCancelRunning() async throws {
        let gate = Gate()
        try await withWorkers([AgentServiceTests.blockingScript(gate)]) { daemon, _, started in
            let watcher = try await watch(daemon, ["job.cancelled", "job.failed", "job.succeeded"])
            let client = try await daemon.connect()
            let run = try #require(try await client.send(Agent.Act.self, .init(message: "Stop", background: true)).background)
            await started.wait()
            let cancelled = try await client.send(Agent.Cancel.self, .init(runId: run.runId))
            #expect(cancelled.status == .cancelled && cancelled.finishReason == .cancelled, "\(cancelled)")
            let job = try await next(watcher, about: run.jobId, key: "jobId")
            #expect(job.topic == "job.cancelled", "\(job)")
            gate.open()
        }
    }

    @Test("jobs.cancel of a running background run: run cancelled, job cancelled")
    func jobsCancelRunning() async throws {
        let gate = Gate()
        try await withWorkers([AgentServiceTests.blockingScript(gate)]) { daemon, _, started in
            let watcher = try await watch(daemon, ["agent.run.cancelled", "agent.run.completed", "agent.run.failed"])
            let client = try await daemon.connect()
            let run = try #require(try await client.send(Agent.Act.self, .init(message: "Stop", background: true)).background)
            await started.wait()
            _ = try await client.send(Jobs.Cancel.self, .init(id: run.jobId))
            let ended = try await next(watcher, about: run.runId)
            #expect(ended.topic == "agent.run.cancelled", "\(ended)")
            let jobWatcher = try await watch(daemon, ["job.cancelled", "job.failed", "job.succeeded"])
            let job = try await next(jobWatcher, about: run.jobId, key: "jobId")
            #expect(job.topic == "job.cancelled", "\(job)")
            gate.open()
        }
    }
}

/// A provider that opens `asked` when a stream is requested, then streams `base`'s.
final class SignallingProvider: LLMProvider {
    let base: any LLMProvider
    let asked: Gate

    init(base: any LLMProvider, asked: Gate) {
        self.base = base
        self.asked = asked
    }

    var name: String { base.name }
    var defaultModel: String? { base.defaultModel }
    func contextWindow(model: String) -> Int { base.contextWindow(model: model) }

    func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        defer { asked.open() }
        return base.stream(request)
    }
}
