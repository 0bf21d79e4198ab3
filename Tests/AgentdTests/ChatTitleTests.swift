import AgentdTesting
import Foundation
import RPC
import Services
import Storage
import Testing

@testable import Daemon
@testable import Services

/// Chat titles (issue 19): the agent's first answer in a chat enqueues one `chat.title` job, which
/// asks the model for a short title and renames the chat (`chat.renamed`) unless its user named it.
/// The graph of the daemon (`Dependencies.testing`) with a scripted provider; the jobs are claimed
/// and run here the way a worker runs them (claim, `run`, complete or fail), one step at a time.
@Suite("Chat titles", .timeLimit(.minutes(2)))
struct ChatTitleTests {
    let clock = TestClock()

    struct Graph {
        var dependencies: Dependencies
        var provider: ScriptedLLMProvider
        var alice: User
        var agent: AgentService { dependencies.agent }
        var queue: any JobQueue { dependencies.jobQueue }
    }

    /// `scripts`: the provider's answers in order (the run's, then the title's).
    func graph(autoTitle: Bool? = true, _ scripts: [[ScriptedLLMProvider.Step]]) async throws -> Graph {
        let provider = ScriptedLLMProvider(scripts: scripts)
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider)
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.autoTitle = autoTitle
        let dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        return Graph(
            dependencies: dependencies, provider: provider, alice: try await dependencies.auth.register(username: "alice", password: "password1"))
    }

    func titleJobs(_ graph: Graph) async throws -> [Job] {
        try await graph.queue.list(JobQuery(ownerID: graph.alice.id, kind: ChatTitles.kind, limit: 100)).map(\.job)
    }

    /// Claims the due title jobs and runs each once, as a worker does: the result stored on
    /// success; on failure the job queued again when the kind calls the error retriable and
    /// attempts are left, else failed.
    @discardableResult
    func runDueTitleJobs(_ graph: Graph) async throws -> [Job] {
        let handler = try #require(graph.dependencies.jobHandlers.first { $0.policy.kind == ChatTitles.kind })
        let claimed = try await graph.queue.claim(
            kinds: [ChatTitles.kind], workerID: "test-worker", limit: 10, lease: handler.policy.lease, now: clock.now())
        var ended: [Job] = []
        for job in claimed {
            do {
                let result = try await handler.run(job)
                ended.append(try await graph.queue.complete(job.lease, result: result, at: clock.now()))
            } catch {
                let jobError =
                    switch error {
                    case let error as JobError: error
                    case let error as LLMError: JobError(kind: error.kind.rawValue, message: error.message)
                    default: JobError(kind: "internal", message: "\(error)")
                    }
                let retry = handler.policy.isRetriable(error) && job.job.attempt < job.job.maxAttempts
                ended.append(try await graph.queue.fail(job.lease, error: jobError, retryAt: retry ? clock.now() : nil, at: clock.now()))
            }
        }
        return ended
    }

    func renamedEvents(_ graph: Graph) async throws -> [JSONValue] {
        try await SQLiteEventStore(writer: graph.dependencies.database.writer).events(
            topics: [ChatsEvents.ChatRenamed.topic], afterSeq: 0, limit: 100
        )
        .map { try JSONDecoder().decode(JSONValue.self, from: Data($0.data.text.utf8)) }
    }

    func title(_ graph: Graph, _ chatID: String) async throws -> String {
        try await graph.dependencies.chats.get(id: chatID, userID: graph.alice.id).title
    }

    @Test("the first answer enqueues one chat.title job; it asks the model a small question and renames the chat with chat.renamed")
    func firstAnswerRetitles() async throws {
        let graph = try await graph([
            ScriptedLLMProvider.answer(["Pack light, ", "take the train."]), ScriptedLLMProvider.answer(["\"Travelling ", "Light by Train.\""]),
        ])
        let answer = try await graph.agent.act(.init(message: "How should I travel across Europe?"), user: graph.alice) { _ in }
        #expect(try await title(graph, answer.chatId) == "How should I travel across Europe?")

        let jobs = try await titleJobs(graph)
        #expect(jobs.count == 1)
        let job = try #require(jobs.first)
        #expect(job.state == .queued && job.idempotencyKey == answer.chatId && job.maxAttempts == ChatTitleJob.maxAttempts)
        #expect(try job.payload.decode(ChatTitles.Payload.self) == ChatTitles.Payload(chatId: answer.chatId, messageId: answer.message.id))

        let ended = try await runDueTitleJobs(graph)
        #expect(ended.map(\.state) == [.succeeded])
        #expect(try ended.first?.result?.decode(ChatTitleJob.Outcome.self) == ChatTitleJob.Outcome(renamed: true, title: "Travelling Light by Train"))
        #expect(try await title(graph, answer.chatId) == "Travelling Light by Train")
        let renamed = try await renamedEvents(graph)
        #expect(renamed == [.object(["chatId": .string(answer.chatId), "title": .string("Travelling Light by Train")])])

        // The title request: the instruction, the question and the answer's beginning, few tokens.
        let request = try #require(graph.provider.requests.last)
        #expect(graph.provider.requests.count == 2)
        #expect(request.maxTokens == ChatTitleJob.maxTokens && request.tools.isEmpty && request.model == nil)
        #expect(request.messages.first?.role == .system && request.messages.first?.content == ChatTitleJob.instruction)
        let prompt = try #require(request.messages.last?.content)
        #expect(prompt.contains("How should I travel across Europe?") && prompt.contains("Pack light, take the train."))
    }

    @Test("later answers (act again, regenerate) enqueue nothing: one title job per chat")
    func secondAnswerDoesNotEnqueue() async throws {
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."])])
        let first = try await graph.agent.act(.init(message: "First question"), user: graph.alice) { _ in }
        let second = try await graph.agent.act(.init(chatId: first.chatId, message: "Second question"), user: graph.alice) { _ in }
        _ = try await graph.agent.regenerate(.init(messageId: first.message.id), user: graph.alice) { _ in }
        #expect(second.chatId == first.chatId)
        let jobs = try await titleJobs(graph)
        #expect(jobs.count == 1)
        #expect(try jobs.first?.payload.decode(ChatTitles.Payload.self) == ChatTitles.Payload(chatId: first.chatId, messageId: first.message.id))
        // Another chat has its own, with the model its run asked for.
        let named = try await graph.agent.act(.init(message: "Another chat", model: "fake-large"), user: graph.alice) { _ in }
        let both = try await titleJobs(graph)
        #expect(both.count == 2)
        #expect(try both.first { $0.idempotencyKey == named.chatId }?.payload.decode(ChatTitles.Payload.self).model == "fake-large")
    }

    @Test("a cancelled first run (its partial text stored as an answer) does not use up the title: the first completed answer retitles the chat once")
    func cancelledFirstRunLeavesTheTitle() async throws {
        let gate = Gate()
        let graph = try await graph([
            [.event(.text("Hal")), .wait(gate), .event(.text("f")), .event(.finished(reason: .stop, model: "m"))],
            ScriptedLLMProvider.answer(["A whole answer."]), ScriptedLLMProvider.answer(["Whole Answers"]),
            ScriptedLLMProvider.answer(["Another answer."]),
        ])
        let (agent, alice, deltas) = (graph.agent, graph.alice, DeltaRecorder())
        let first = Task { try await agent.act(.init(message: "A question"), user: alice, onDelta: deltas.record) }
        await deltas.firstDelta.wait()
        let runID = try #require(deltas.all.first?.runId)
        let cancelled = try await agent.cancel(runID: runID, userID: alice.id)
        gate.open()
        #expect(cancelled.status == .cancelled && cancelled.assistantMessageId != nil, "the partial text is an answer: \(cancelled)")
        await #expect(throws: AgentError.self) { try await first.value }
        #expect(try await titleJobs(graph).isEmpty)

        let answer = try await agent.act(.init(chatId: cancelled.chatId, message: "Again"), user: alice) { _ in }
        let jobs = try await titleJobs(graph)
        #expect(jobs.count == 1)
        #expect(try jobs.first?.payload.decode(ChatTitles.Payload.self) == ChatTitles.Payload(chatId: cancelled.chatId, messageId: answer.message.id))
        #expect(try await runDueTitleJobs(graph).map(\.state) == [.succeeded])
        #expect(try await title(graph, cancelled.chatId) == "Whole Answers")

        // Once: a later completed answer enqueues nothing more.
        _ = try await agent.act(.init(chatId: cancelled.chatId, message: "Once more"), user: alice) { _ in }
        #expect(try await titleJobs(graph).count == 1)
        #expect(try await renamedEvents(graph).count == 1)
    }

    @Test("enqueueing a chat's title again answers the same job (the chat id is the idempotency key)")
    func enqueueIsIdempotent() async throws {
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."])])
        let answer = try await graph.agent.act(.init(message: "Question"), user: graph.alice) { _ in }
        let titles = ChatTitles(scheduler: graph.dependencies.jobScheduler, clock: clock, ids: SequentialIDs())
        let again = try await titles.enqueue(chatID: answer.chatId, answerID: answer.message.id, userID: graph.alice.id)
        #expect(!again.created)
        #expect(try await titleJobs(graph).map(\.id) == [again.job.id])
    }

    @Test("a chat its user renamed before the job ran keeps its title, and the model is not asked")
    func userRenameBeforeTheJobWins() async throws {
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."]), ScriptedLLMProvider.answer(["Model Title"])])
        let answer = try await graph.agent.act(.init(message: "Question"), user: graph.alice) { _ in }
        _ = try await graph.dependencies.chats.rename(.init(id: answer.chatId, title: "My own title"), userID: graph.alice.id)

        let ended = try await runDueTitleJobs(graph)
        #expect(ended.map(\.state) == [.succeeded])
        #expect(try ended.first?.result?.decode(ChatTitleJob.Outcome.self) == ChatTitleJob.Outcome(renamed: false))
        #expect(try await title(graph, answer.chatId) == "My own title")
        #expect(try await renamedEvents(graph).map { $0["title"] } == [.string("My own title")])
        #expect(graph.provider.requests.count == 1)
    }

    @Test("a user rename that commits while the model is answering wins: the job's rename is conditional")
    func userRenameRacingTheJobWins() async throws {
        let gate = Gate()
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."]), [.wait(gate)] + ScriptedLLMProvider.answer(["Model Title"])])
        let answer = try await graph.agent.act(.init(message: "Question"), user: graph.alice) { _ in }
        let running = Task { try await runDueTitleJobs(graph) }
        // The job has read the chat (not named) and is waiting for the model.
        while graph.provider.requests.count < 2 { await Task.yield() }
        _ = try await graph.dependencies.chats.rename(.init(id: answer.chatId, title: "My own title"), userID: graph.alice.id)
        gate.open()
        let ended = try await running.value
        #expect(ended.map(\.state) == [.succeeded])
        #expect(try ended.first?.result?.decode(ChatTitleJob.Outcome.self) == ChatTitleJob.Outcome(renamed: false))
        #expect(try await title(graph, answer.chatId) == "My own title")
        #expect(try await renamedEvents(graph).map { $0["title"] } == [.string("My own title")])
    }

    @Test("a title given to chats.create is the user's: the chat is not retitled")
    func titleGivenAtCreationIsKept() async throws {
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."]), ScriptedLLMProvider.answer(["Model Title"])])
        let chat = try await graph.dependencies.chats.create(.init(title: "Named at creation"), userID: graph.alice.id)
        _ = try await graph.agent.act(.init(chatId: chat.id, message: "Question"), user: graph.alice) { _ in }
        _ = try await runDueTitleJobs(graph)
        #expect(try await title(graph, chat.id) == "Named at creation")
        #expect(graph.provider.requests.count == 1)
    }

    @Test("a fork of a chat its user named keeps the user's title: its first answer does not retitle it")
    func forkOfANamedChatIsKept() async throws {
        let graph = try await graph([ScriptedLLMProvider.answer(["An answer."]), ScriptedLLMProvider.answer(["Model Title"])])
        let chat = try await graph.dependencies.chats.create(.init(title: "Mine"), userID: graph.alice.id)
        let question = try await graph.dependencies.chats.append(.init(chatId: chat.id, role: .user, content: "Question"), userID: graph.alice.id)
        let fork = try await graph.dependencies.chats.fork(.init(messageId: question.id), userID: graph.alice.id)
        #expect(fork.title == "Mine (fork)")
        _ = try await graph.agent.regenerate(.init(messageId: fork.activeMessageId ?? ""), user: graph.alice) { _ in }
        _ = try await runDueTitleJobs(graph)
        #expect(try await title(graph, fork.id) == "Mine (fork)")
        #expect(graph.provider.requests.count == 1)
    }

    @Test("agent.auto_title off: no title job, no chat.title handler")
    func autoTitleOff() async throws {
        let graph = try await graph(autoTitle: false, [ScriptedLLMProvider.answer(["An answer."])])
        let answer = try await graph.agent.act(.init(message: "Question"), user: graph.alice) { _ in }
        #expect(try await titleJobs(graph).isEmpty)
        #expect(!graph.dependencies.jobHandlers.contains { $0.policy.kind == ChatTitles.kind })
        #expect(try await title(graph, answer.chatId) == "Question")
        #expect(graph.provider.requests.count == 1)
    }

    @Test("agent.auto_title's default: on when [llm] is configured, off when not (the test graph's)")
    func autoTitleDefault() async throws {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        #expect(!configuration.autoTitleEnabled)
        configuration.llm.apiKey = "sk-test"
        #expect(configuration.autoTitleEnabled)
        configuration.autoTitle = false
        #expect(!configuration.autoTitleEnabled)
        let graph = try await graph(autoTitle: nil, [ScriptedLLMProvider.answer(["An answer."])])
        _ = try await graph.agent.act(.init(message: "Question"), user: graph.alice) { _ in }
        #expect(try await titleJobs(graph).isEmpty)
    }

    @Test("a failing model leaves the title: not retried after a permanent error, once more after a transient one")
    func failingModelLeavesTheTitle() async throws {
        let graph = try await graph([
            ScriptedLLMProvider.answer(["An answer."]), [.fail(LLMError(.authentication, "bad key", provider: "fake"))],
            ScriptedLLMProvider.answer(["Another answer."]), [.fail(LLMError(.upstreamUnavailable, "503", provider: "fake"))],
            [.fail(LLMError(.upstreamUnavailable, "503 again", provider: "fake"))],
        ])
        let first = try await graph.agent.act(.init(message: "First chat"), user: graph.alice) { _ in }
        let failed = try await runDueTitleJobs(graph)
        #expect(failed.map(\.state) == [.failed] && failed.first?.error?.kind == "authentication" && failed.first?.attempt == 1)
        #expect(try await title(graph, first.chatId) == "First chat")

        let second = try await graph.agent.act(.init(message: "Second chat"), user: graph.alice) { _ in }
        let retried = try await runDueTitleJobs(graph)
        #expect(retried.map(\.state) == [.queued] && retried.first?.error?.kind == "upstreamUnavailable")
        let last = try await runDueTitleJobs(graph)
        #expect(last.map(\.state) == [.failed] && last.first?.attempt == 2)
        #expect(try await title(graph, second.chatId) == "Second chat")
        #expect(try await renamedEvents(graph).isEmpty)
        #expect(try await runDueTitleJobs(graph).isEmpty)
    }

    @Test("through the daemon's own workers: agent.act on a connection, then chat.renamed on a subscription and the new title in chats.get")
    func workersRetitle() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["Sure."]), ScriptedLLMProvider.answer(["Weekend Hiking Plans"])])
        let collaborators = Dependencies.Collaborators(
            clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider)
        try await withInProcessDaemon(configure: { $0.autoTitle = true }, collaborators: collaborators) { daemon in
            let watcher = try await daemon.connect()
            _ = try await watcher.send(Events.Subscribe.self, .init(topics: ["chat.renamed"]))
            let client = try await daemon.connect()
            let answer = try await client.send(Agent.Act.self, .init(message: "Plan a hike for the weekend"))
            let event = try await watcher.nextNotification(of: EventsNotifications.Event.self)
            #expect(event.topic == "chat.renamed")
            #expect(try event.data.decode(JSONValue.self) == .object(["chatId": .string(answer.chatId), "title": .string("Weekend Hiking Plans")]))
            #expect(try await client.send(Chats.Get.self, .init(id: answer.chatId)).title == "Weekend Hiking Plans")
            let me = try await client.send(Auth.WhoAmI.self).id
            let jobs = try await daemon.dependencies.jobQueue.list(JobQuery(ownerID: me, kind: ChatTitles.kind, limit: 10)).map(\.job)
            #expect(jobs.count == 1)
        }
    }

    @Test("the model's reply is cleaned: first line, no label, quotes or final period, at most 8 words; nothing left is no title")
    func cleaning() {
        #expect(ChatTitleJob.cleaned("\n  Title: \"Rust lifetimes explained.\"\nMore text") == "Rust lifetimes explained")
        #expect(ChatTitleJob.cleaned("**Baking sourdough at home**") == "Baking sourdough at home")
        #expect(ChatTitleJob.cleaned("one two three four five six seven eight nine ten") == "one two three four five six seven eight")
        #expect(ChatTitleJob.cleaned("« Les trains de nuit »") == "Les trains de nuit")
        #expect(ChatTitleJob.cleaned("  \"\" \n ") == nil)
        #expect(ChatTitleJob.cleaned("") == nil)
    }
}
