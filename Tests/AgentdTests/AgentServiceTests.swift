import AgentdTesting
import Foundation
import RPC
import Services
import Storage
import Synchronization
import Testing

@testable import Daemon
@testable import Services

/// AgentService through the container (`Dependencies.testing`): in-memory SQLite, a test clock,
/// sequential ids, a scripted provider and a fake web search. No socket.
@Suite("Agent service", .timeLimit(.minutes(2)))
struct AgentServiceTests {
    let clock = TestClock()

    struct Graph {
        var dependencies: Dependencies
        var agent: AgentService { dependencies.agent }
        var chats: ChatsService { dependencies.chats }
        var alice: User
        var bob: User
    }

    func graph(_ provider: any LLMProvider, search: (any WebSearchClient)? = nil) async throws -> Graph {
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider, webSearch: search)
        let dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""), collaborators: collaborators)
        return Graph(
            dependencies: dependencies, alice: try await dependencies.auth.register(username: "alice", password: "password1"),
            bob: try await dependencies.auth.register(username: "bob", password: "password1"))
    }

    /// The topics committed, oldest first, of the agent's and the chats' events.
    func topics(_ dependencies: Dependencies) async throws -> [String] {
        let all = (ChatsEvents.all + AgentEvents.all).map { $0.topic }
        return try await SQLiteEventStore(writer: dependencies.database.writer).events(topics: all, afterSeq: 0, limit: 1000).map(\.topic)
    }

    func branch(_ graph: Graph, _ chatID: String) async throws -> [Message] {
        try await graph.chats.messages(.init(chatId: chatID, limit: 500), userID: graph.alice.id).items
    }

    func expectLLMError(_ kind: LLMError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any) async
        -> LLMError?
    {
        do {
            _ = try await body()
            Issue.record("accepted; expected \(kind)", sourceLocation: sourceLocation)
        } catch let error as LLMError {
            #expect(error.kind == kind, sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("\(error); expected \(kind)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test(
        "act: a new chat titled from the message, the question stored first, deltas in order, the answer stored with its generation, events in order")
    func act() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["Write-", "ahead ", "logging."])])
        let graph = try await graph(provider)
        let deltas = DeltaRecorder()
        clock.advance(by: 1)
        let answer = try await graph.agent.act(.init(message: "  What is\nWAL?  "), user: graph.alice, onDelta: deltas.record)

        #expect(deltas.all.map(\.seq) == [1, 2, 3])
        #expect(deltas.text == "Write-ahead logging.")
        #expect(deltas.all.allSatisfy { $0.runId == answer.runId && $0.chatId == answer.chatId })
        #expect(answer.message.content == "Write-ahead logging." && answer.message.role == .assistant)
        #expect(answer.finishReason == .stop)
        #expect(answer.usage == LLMUsage(promptTokens: 10, completionTokens: 5, estimated: false))
        #expect(answer.context.keptMessages == 1 && answer.context.droppedMessages == 0 && answer.context.estimatedTokens > 0)
        #expect(answer.sources == nil)

        let chat = try await graph.chats.get(id: answer.chatId, userID: graph.alice.id)
        #expect(chat.title == "What is WAL?")
        #expect(chat.activeMessageId == answer.message.id)
        let messages = try await branch(graph, answer.chatId)
        #expect(messages.map(\.role) == [.user, .assistant])
        #expect(messages[0].content == "  What is\nWAL?  ")
        #expect(answer.message.parentId == messages[0].id)

        // The request: no system prompt (no module, no promptId), the question last.
        let request = try #require(provider.requests.first)
        #expect(request.messages == [LLMMessage(role: .user, content: "  What is\nWAL?  ")])
        #expect(request.tools.isEmpty && request.model == nil)

        let detail = try await graph.chats.messageDetail(id: answer.message.id, userID: graph.alice.id)
        let generation = try #require(detail.generation)
        #expect(generation.runId == answer.runId && generation.provider == "fake" && generation.model == "fake-model-2026")
        #expect(generation.finishReason == .stop && generation.usage == answer.usage && generation.latencyMs == 0 && generation.searches.isEmpty)
        #expect(try await graph.chats.messageDetail(id: messages[0].id, userID: graph.alice.id).generation == nil)

        let run = try await graph.agent.run(id: answer.runId, userID: graph.alice.id)
        #expect(run.status == .completed && run.assistantMessageId == answer.message.id && run.userMessageId == messages[0].id)
        #expect(run.finishReason == .stop && run.context == answer.context && run.error == nil && run.firstTokenAt != nil)

        #expect(
            try await topics(graph.dependencies) == [
                "chat.created", "chat.message.created", "agent.run.started", "chat.message.created", "agent.run.completed",
            ])
        #expect(
            try await graph.dependencies.recorded(AgentEvents.RunCompleted.self) == [
                try RecordedEvent(
                    AgentEvents.RunCompleted(
                        userID: graph.alice.id, runId: answer.runId, chatId: answer.chatId, messageId: answer.message.id, finishReason: .stop,
                        usage: answer.usage))
            ])
    }

    @Test("the system prompt: default.system for a chat with a module (rendered with the agent's variables), the module's content placed once")
    func systemPrompt() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["ok"])])
        let graph = try await graph(provider)
        let module = try await graph.dependencies.modules.create(.init(title: "Notes", content: "The budget is 42."), userID: graph.alice.id)
        _ = try await graph.agent.act(.init(moduleId: module.id, message: "Budget?"), user: graph.alice) { _ in }
        let system = try #require(provider.requests.first?.messages.first)
        #expect(system.role == .system)
        #expect(system.content?.contains("working with alice on their module \"Notes\"") == true)
        #expect(system.content?.components(separatedBy: "The budget is 42.").count == 2, "the content once: \(system.content ?? "")")

        // A prompt of the user's that does not place the module: the module is appended.
        let prompt = try await graph.dependencies.prompts.create(
            .init(name: "terse", body: "Be terse, {{user}}. Tone: {{tone}}."), userID: graph.alice.id)
        let chatID = try #require(try await graph.chats.list(.init(), userID: graph.alice.id).items.first?.id)
        _ = try await graph.agent.act(.init(chatId: chatID, message: "Again?", promptId: prompt.id, variables: ["tone": "dry"]), user: graph.alice) {
            _ in
        }
        let second = try #require(provider.requests.last?.messages.first?.content)
        #expect(second.hasPrefix("Be terse, alice. Tone: dry.") && second.contains("<module>\nThe budget is 42.\n</module>"))

        // A missing variable is refused before anything is stored.
        let before = try await branch(graph, chatID).count
        await #expect(throws: PromptsError.self) {
            try await graph.agent.act(.init(chatId: chatID, message: "x", promptId: prompt.id), user: graph.alice) { _ in }
        }
        #expect(try await branch(graph, chatID).count == before)
    }

    @Test(
        "context budget: newest history kept, older dropped and counted; a message that cannot fit alone fails before any provider call, the question kept"
    )
    func budget() async throws {
        let provider = ScriptedLLMProvider(window: 400, scripts: [ScriptedLLMProvider.answer(["ok"])])
        let graph = try await graph(provider)
        let chat = try await graph.chats.create(.init(), userID: graph.alice.id)
        // Six messages of ~129 tokens each (500 bytes + overhead): with a 400-token window and 50
        // reserved for the answer, two fit beside the new question.
        for index in 0..<6 {
            _ = try await graph.chats.append(
                .init(chatId: chat.id, role: index.isMultiple(of: 2) ? .user : .assistant, content: "\(index)" + String(repeating: "x", count: 499)),
                userID: graph.alice.id)
        }
        let answer = try await graph.agent.act(.init(chatId: chat.id, message: "newest"), user: graph.alice) { _ in }
        #expect(answer.context.keptMessages == 3 && answer.context.droppedMessages == 4)
        #expect(answer.context.estimatedTokens <= 400 - 50)
        let sent = try #require(provider.requests.first).messages
        #expect(sent.map { $0.content?.first } == ["4", "5", "n"])

        // Too big even alone: contextOverflow, no request, the question stored, the run failed.
        let requests = provider.requests.count
        let error = await expectLLMError(.contextOverflow) {
            try await graph.agent.act(.init(chatId: chat.id, message: String(repeating: "y", count: 2000)), user: graph.alice) { _ in }
        }
        #expect(error?.contextWindow == 400 && (error?.estimatedTokens ?? 0) > 400)
        #expect(provider.requests.count == requests)
        let last = try #require(try await branch(graph, chat.id).last)
        #expect(last.role == .user && last.content.count == 2000)
        let failed = try #require(try await graph.agent.runs(.init(chatId: chat.id), userID: graph.alice.id).items.first)
        #expect(failed.status == .failed && failed.error?.kind == "contextOverflow" && failed.assistantMessageId == nil)
        #expect(try await topics(graph.dependencies).suffix(3) == ["chat.message.created", "agent.run.started", "agent.run.failed"])
    }

    @Test("the budget drops a tool turn whole: a call never goes without its results")
    func toolTurnsStayWhole() throws {
        let call = LLMToolCall(id: "call_1_1", name: "web_search", arguments: #"{"query":"q"}"#)
        let turn = AgentContext.Unit(
            messages: [
                LLMMessage(role: .assistant, content: nil, toolCalls: [call]),
                LLMMessage(role: .tool, content: String(repeating: "r", count: 400), toolCallID: call.id),
                LLMMessage(role: .assistant, content: "answer"),
            ], chatMessages: 1)
        let question = AgentContext.Unit(messages: [LLMMessage(role: .user, content: "q")], chatMessages: 1)
        let current = AgentContext.Unit(messages: [LLMMessage(role: .user, content: "next")], chatMessages: 1)
        // Room for the question and the tool call, not for its result: the whole turn goes.
        let window = 60 + AgentContext.estimate(turn.messages[0]) + AgentContext.estimate(question.messages) + AgentContext.estimate(current.messages)
        let built = try AgentContext.build(
            system: nil, history: [question, turn], current: current, window: window, reserve: 60, tools: [], provider: "fake")
        #expect(built.messages == current.messages)
        #expect(built.report == AgentContextReport(keptMessages: 1, droppedMessages: 2, estimatedTokens: AgentContext.estimate(current.messages)))
        let roomy = try AgentContext.build(
            system: "s", history: [question, turn], current: current, window: 10_000, reserve: 60, tools: [], provider: "fake")
        #expect(roomy.messages.count == 6 && roomy.report.droppedMessages == 0)
    }

    @Test("the prompt's date variable is the UTC day, the same as Foundation's Gregorian calendar says, across leap years and centuries")
    func dayVariable() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        // Every day edge from 1899 to 2101 would be 73k cases; the edges of each sampled day, plus
        // the known hard ones (leap days, century years, the epoch).
        var instants: [Double] = [0, -1, 86_399, 86_400, 951_782_400, 951_868_799, 4_107_542_400, -2_203_891_200, 253_402_300_799]
        for _ in 0..<2_000 {
            let day = Double(Int.random(in: -25_567...47_482, using: &generator)) * 86_400
            instants += [day, day + 86_399.999, day + Double.random(in: 0..<86_400, using: &generator)]
        }
        for instant in instants {
            let date = Date(timeIntervalSince1970: instant)
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let expected = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
            #expect(AgentService.day(date) == expected, "\(instant)")
        }
    }

    @Test("history repair: a call without a result gets an 'interrupted' result, a stray result is dropped; ids normalised per answer")
    func repair() {
        let steps = [
            LLMMessage(role: .tool, content: "stray", toolCallID: "x"),
            LLMMessage(
                role: .assistant, content: nil,
                toolCalls: [LLMToolCall(id: "a", name: "web_search", arguments: "{}"), LLMToolCall(id: "b", name: "web_search", arguments: "{}")]),
            LLMMessage(role: .tool, content: "result b", toolCallID: "b"),
        ]
        let repaired = AgentContext.repair(steps)
        #expect(repaired.map(\.role) == [.assistant, .tool, .tool])
        #expect(repaired[1] == LLMMessage(role: .tool, content: AgentContext.interruptedToolResult, toolCallID: "a"))
        #expect(repaired[2].content == "result b")
        let normalised = AgentContext.normalised(repaired)
        #expect(normalised[0].toolCalls.map(\.id) == ["call_1", "call_2"])
        #expect(normalised.dropFirst().map(\.toolCallID) == ["call_1", "call_2"])
    }

    @Test(
        "web search: the tool offered, calls run and fed back, rounds bounded (the last offers no tools), results stored beside the answer, sources returned once each"
    )
    func webSearch() async throws {
        let toolRound: (String, [String]) -> [ScriptedLLMProvider.Step] = { prefix, queries in
            queries.enumerated().map { index, query in
                .event(.toolCall(index: index, id: "\(prefix)\(index)", name: "web_search", arguments: #"{"query":"\#(query)"}"#))
            } + [.event(.usage(LLMUsage(promptTokens: 1, completionTokens: 1, estimated: false))), .event(.finished(reason: .toolCalls, model: "m"))]
        }
        // Round 1 asks two searches, round 2 one more, round 3 (offered no tools) answers.
        let provider = ScriptedLLMProvider(scripts: [
            toolRound("prov_a", ["swift", "nio"]), toolRound("prov_b", ["more"]), ScriptedLLMProvider.answer(["Found it."]),
        ])
        let search = FakeWebSearch()
        let graph = try await graph(provider, search: search)
        let answer = try await graph.agent.act(.init(message: "Search please", webSearch: true), user: graph.alice) { _ in }

        #expect(Set(search.received) == ["swift", "nio", "more"] && search.received.count == 3)
        let requests = provider.requests
        #expect(requests.count == 3)
        #expect(requests[0].tools == [AgentService.webSearchTool] && requests[1].tools == [AgentService.webSearchTool] && requests[2].tools.isEmpty)
        // Round 2's request: the question, the calls, one result each (the provider's ids).
        #expect(requests[1].messages.map(\.role) == [.user, .assistant, .tool, .tool])
        #expect(requests[1].messages[1].toolCalls.map(\.id) == ["prov_a0", "prov_a1"])
        #expect(requests[1].messages.dropFirst(2).map(\.toolCallID) == ["prov_a0", "prov_a1"])
        #expect(requests[1].messages[2].content?.contains("https://example.test/swift") == true)
        #expect(answer.message.content == "Found it.")
        #expect(answer.usage == LLMUsage(promptTokens: 12, completionTokens: 7, estimated: false))
        #expect(
            answer.sources?.map(\.url) == [
                "https://example.test/swift", "https://example.test/shared", "https://example.test/nio", "https://example.test/more",
            ]
                || answer.sources?.map(\.url) == [
                    "https://example.test/nio", "https://example.test/shared", "https://example.test/swift", "https://example.test/more",
                ])

        let generation = try #require(try await graph.chats.messageDetail(id: answer.message.id, userID: graph.alice.id).generation)
        #expect(generation.searches.map(\.query) == ["swift", "nio", "more"])
        #expect(generation.searches.map(\.toolCallId) == ["call_1", "call_2", "call_3"])
        #expect(
            generation.searches.map(\.requestId) == ["req-swift", "req-nio", "req-more"]
                && generation.searches.allSatisfy { $0.credits == 1 && $0.results.count == 2 })
        #expect(generation.toolCalls.map(\.id) == ["call_1", "call_2", "call_3"])
        #expect(try await graph.agent.run(id: answer.runId, userID: graph.alice.id).searchCount == 3)

        // The next request replays the tool turn with ids unique in that request, before the answer.
        _ = try await graph.agent.act(.init(chatId: answer.chatId, message: "Thanks"), user: graph.alice) { _ in }
        let replay = try #require(provider.requests.last).messages
        #expect(replay.map(\.role) == [.user, .assistant, .tool, .tool, .assistant, .tool, .assistant, .user])
        #expect(
            replay[1].toolCalls.map(\.id) == ["call_1_1", "call_1_2"] && replay[2].toolCallID == "call_1_1" && replay[5].toolCallID == "call_1_3")
    }

    @Test("web search rounds are bounded: a model that keeps calling gets maxToolRounds requests, the last without tools")
    func roundsBounded() async throws {
        let calling: [ScriptedLLMProvider.Step] = [
            .event(.toolCall(index: 0, id: nil, name: "web_search", arguments: #"{"query":"again"}"#)),
            .event(.finished(reason: .toolCalls, model: "m")),
        ]
        let provider = ScriptedLLMProvider(scripts: [calling])
        let search = FakeWebSearch()
        let graph = try await graph(provider, search: search)
        let answer = try await graph.agent.act(.init(message: "loop", webSearch: true), user: graph.alice) { _ in }
        #expect(provider.requests.count == AgentService.maxToolRounds)
        #expect(provider.requests.last?.tools.isEmpty == true)
        #expect(search.received.count == AgentService.maxToolRounds - 1)
        #expect(answer.finishReason == .toolCalls && answer.usage.estimated)
    }

    @Test(
        "not configured: webSearch without a search client, and the placeholder provider, answer notConfigured naming the settings; the question is stored"
    )
    func notConfigured() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["never"])])
        let graph = try await graph(provider)
        let error = await expectLLMError(.notConfigured) {
            try await graph.agent.act(.init(message: "Search", webSearch: true), user: graph.alice) { _ in }
        }
        #expect(error?.missingSettings == AgentService.missingSearchSettings)
        #expect(error?.rpcError.code == .llmNotConfigured)
        #expect(provider.requests.isEmpty)
        let run = try #require(try await graph.agent.runs(.init(), userID: graph.alice.id).items.first)
        #expect(run.status == .failed && run.error?.kind == "notConfigured")
        #expect(try await branch(graph, run.chatId).map(\.content) == ["Search"])

        let unconfiguredProvider = UnconfiguredLLMProvider(configuration: LLMConfiguration())
        let unconfigured = try await self.graph(unconfiguredProvider)
        let missing = await expectLLMError(.notConfigured) {
            try await unconfigured.agent.act(.init(message: "Hello"), user: unconfigured.alice) { _ in }
        }
        #expect(missing?.missingSettings == unconfiguredProvider.error.missingSettings)
        #expect(missing?.missingSettings.isEmpty == false)
        #expect(try await unconfigured.dependencies.recorded(AgentEvents.RunFailed.self).count == 1)
    }

    @Test("a provider error reaches the caller as itself; the run fails with its kind; the question stays")
    func providerError() async throws {
        let provider = ScriptedLLMProvider(scripts: [[.fail(LLMError(.rateLimited, "slow down", provider: "fake", status: 429, retryAfterMs: 1500))]])
        let graph = try await graph(provider)
        let error = await expectLLMError(.rateLimited) { try await graph.agent.act(.init(message: "Hi"), user: graph.alice) { _ in } }
        #expect(error?.retryAfterMs == 1500)
        let run = try #require(try await graph.agent.runs(.init(), userID: graph.alice.id).items.first)
        #expect(run.status == .failed && run.error == LLMErrorSummary(kind: "rateLimited", message: "slow down") && run.assistantMessageId == nil)
        #expect(try await branch(graph, run.chatId).map(\.role) == [.user])
        #expect(
            try await graph.dependencies.recorded(AgentEvents.RunFailed.self) == [
                try RecordedEvent(
                    AgentEvents.RunFailed(
                        userID: graph.alice.id, runId: run.id, chatId: run.chatId, errorKind: "rateLimited"))
            ])
    }

    /// Starts a run that streams "Hel", then waits at `gate`; returns once the first delta is here.
    func startBlockedRun(_ graph: Graph, gate: Gate) async throws -> (Task<AgentAnswer, any Error>, DeltaRecorder) {
        let deltas = DeltaRecorder()
        let agent = graph.agent
        let alice = graph.alice
        let task = Task { try await agent.act(.init(message: "Tell me"), user: alice, onDelta: deltas.record) }
        await deltas.firstDelta.wait()
        return (task, deltas)
    }

    static func blockingScript(_ gate: Gate) -> [ScriptedLLMProvider.Step] {
        [.event(.text("Hel")), .wait(gate), .event(.text("lo")), .event(.finished(reason: .stop, model: "m"))]
    }

    @Test(
        "agent.cancel: the stream stops at once, the partial answer is stored (finish reason cancelled), the call answers cancelled; idempotent; another user's cancel is not found"
    )
    func cancelFromAnotherCall() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [Self.blockingScript(gate)])
        let graph = try await graph(provider)
        let (task, deltas) = try await startBlockedRun(graph, gate: gate)
        let runID = try #require(deltas.all.first?.runId)

        await #expect(throws: AgentError.notFound(kind: "run", id: runID)) { try await graph.agent.cancel(runID: runID, userID: graph.bob.id) }
        let cancelled = try await graph.agent.cancel(runID: runID, userID: graph.alice.id)
        #expect(cancelled.status == .cancelled && cancelled.finishReason == .cancelled)
        #expect(provider.cancelledStreams == 1)
        let messageID = try #require(cancelled.assistantMessageId)
        await #expect(throws: AgentError.cancelled(runId: runID, messageId: messageID)) { try await task.value }
        #expect(try await graph.chats.message(id: messageID, userID: graph.alice.id).content == "Hel")
        #expect(cancelled.usage?.estimated == true && (cancelled.usage?.completionTokens ?? 0) > 0)
        #expect(try await graph.agent.cancel(runID: runID, userID: graph.alice.id) == cancelled, "a second cancel changes nothing")
        #expect(
            try await graph.dependencies.recorded(AgentEvents.RunCancelled.self) == [
                try RecordedEvent(
                    AgentEvents.RunCancelled(
                        userID: graph.alice.id, runId: runID, chatId: cancelled.chatId, messageId: messageID))
            ])
        #expect(AgentError.cancelled(runId: runID, messageId: messageID).rpcError.code == .requestCancelled)
        #expect(graph.agent.activeRuns == 0)
        gate.open()
    }

    @Test("cancelling the call's task (a closed connection, $/cancelRequest) cancels the run the same way")
    func cancelByTask() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [Self.blockingScript(gate)])
        let graph = try await graph(provider)
        let (task, deltas) = try await startBlockedRun(graph, gate: gate)
        task.cancel()
        await #expect(throws: AgentError.self) { try await task.value }
        await provider.cancelledGate.wait()
        let runID = try #require(deltas.all.first?.runId)
        let run = try await graph.agent.run(id: runID, userID: graph.alice.id)
        #expect(run.status == .cancelled && run.finishReason == .cancelled)
        let partialID = try #require(run.assistantMessageId)
        #expect(try await graph.chats.message(id: partialID, userID: graph.alice.id).content == "Hel")
        gate.open()
    }

    @Test("a call cancelled by its time limit ends the run as failed, kind timeout (not as cancelled by someone)")
    func timedOutRun() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [Self.blockingScript(gate)])
        let graph = try await graph(provider)
        let deltas = DeltaRecorder()
        let agent = graph.agent
        let alice = graph.alice
        let limit = Mutex<Duration?>(nil)
        let task = Task { try await agent.act(.init(message: "Tell me"), user: alice, onDelta: deltas.record, timedOut: { limit.withLock { $0 } }) }
        await deltas.firstDelta.wait()
        limit.withLock { $0 = .seconds(900) }
        task.cancel()
        await #expect(throws: LLMError.self) { try await task.value }
        await provider.cancelledGate.wait()
        let run = try await graph.agent.run(id: try #require(deltas.all.first?.runId), userID: graph.alice.id)
        #expect(run.status == .failed && run.error?.kind == "timeout" && run.assistantMessageId == nil, "\(run)")
        #expect(run.error?.message.contains("900 s") == true, "\(run)")
        gate.open()
    }

    @Test("a run cancelled while a search runs leaves a call without a result; the next request repairs it")
    func interruptedToolCall() async throws {
        let gate = Gate()
        let searching: [ScriptedLLMProvider.Step] = [
            .event(.text("Let me look. ")), .event(.toolCall(index: 0, id: "p1", name: "web_search", arguments: #"{"query":"slow"}"#)),
            .event(.finished(reason: .toolCalls, model: "m")),
        ]
        let provider = ScriptedLLMProvider(scripts: [searching, ScriptedLLMProvider.answer(["fine"])])
        let search = BlockingWebSearch(gate: gate)
        let graph = try await graph(provider, search: search)
        let deltas = DeltaRecorder()
        let agent = graph.agent
        let alice = graph.alice
        let task = Task { try await agent.act(.init(message: "Look it up", webSearch: true), user: alice, onDelta: deltas.record) }
        await search.arrived.wait()
        let runID = try #require(deltas.all.first?.runId)
        let run = try await graph.agent.cancel(runID: runID, userID: graph.alice.id)
        #expect(run.status == .cancelled)
        _ = try? await task.value
        let partialID = try #require(run.assistantMessageId)
        let generation = try #require(try await graph.chats.messageDetail(id: partialID, userID: graph.alice.id).generation)
        #expect(generation.toolCalls.map(\.id) == ["call_1"])

        _ = try await graph.agent.act(.init(chatId: run.chatId, message: "And now?"), user: graph.alice) { _ in }
        let replay = try #require(provider.requests.last).messages
        #expect(replay.map(\.role) == [.user, .assistant, .tool, .assistant, .user])
        #expect(replay[2] == LLMMessage(role: .tool, content: AgentContext.interruptedToolResult, toolCallID: "call_1_1"))
        #expect(replay[3].content == "Let me look. ")
    }

    @Test("regenerate: a sibling answer to the same question, made active; a user message gets a new answer")
    func regenerate() async throws {
        let provider = ScriptedLLMProvider(scripts: [
            ScriptedLLMProvider.answer(["first"]), ScriptedLLMProvider.answer(["second"]), ScriptedLLMProvider.answer(["third"]),
        ])
        let graph = try await graph(provider)
        let first = try await graph.agent.act(.init(message: "Q"), user: graph.alice) { _ in }
        let second = try await graph.agent.regenerate(.init(messageId: first.message.id, temperature: 0.5), user: graph.alice) { _ in }
        #expect(second.message.parentId == first.message.parentId && second.message.id != first.message.id)
        #expect(second.chatId == first.chatId)
        #expect(try await branch(graph, first.chatId).map(\.content) == ["Q", "second"])
        #expect(provider.requests[1].messages == [LLMMessage(role: .user, content: "Q")] && provider.requests[1].temperature == 0.5)
        let questionID = try #require(first.message.parentId)
        let third = try await graph.agent.regenerate(.init(messageId: questionID), user: graph.alice) { _ in }
        #expect(third.message.parentId == first.message.parentId)
        #expect(
            try await graph.agent.runs(.init(chatId: first.chatId), userID: graph.alice.id).items.map(\.status) == [
                .completed, .completed, .completed,
            ])

        // Edit: a sibling of the question, a new branch.
        let edited = try await graph.agent.act(.init(message: "Q edited", siblingOf: questionID), user: graph.alice) { _ in }
        let branch = try await branch(graph, first.chatId)
        #expect(branch.map(\.role) == [.user, .assistant] && branch[0].content == "Q edited" && edited.chatId == first.chatId)
        await #expect(throws: AgentError.self) {
            try await graph.agent.act(.init(message: "x", siblingOf: first.message.id), user: graph.alice) { _ in }
        }
    }

    @Test("isolation: another user's chat, message and run answer like missing ones; runs.list shows only one's own")
    func isolation() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["mine"])])
        let graph = try await graph(provider)
        let answer = try await graph.agent.act(.init(message: "secret"), user: graph.alice) { _ in }
        await #expect(throws: AgentError.notFound(kind: "run", id: answer.runId)) {
            try await graph.agent.run(id: answer.runId, userID: graph.bob.id)
        }
        await #expect(throws: AgentError.notFound(kind: "run", id: "run_missing")) {
            try await graph.agent.run(id: "run_missing", userID: graph.bob.id)
        }
        await #expect(throws: ChatsError.notFound(kind: "chat", id: answer.chatId)) {
            try await graph.agent.act(.init(chatId: answer.chatId, message: "x"), user: graph.bob) { _ in }
        }
        await #expect(throws: ChatsError.notFound(kind: "message", id: answer.message.id)) {
            try await graph.agent.regenerate(.init(messageId: answer.message.id), user: graph.bob) { _ in }
        }
        #expect(try await graph.agent.runs(.init(), userID: graph.bob.id).items.isEmpty)
        #expect(try await graph.agent.runs(.init(chatId: answer.chatId), userID: graph.bob.id).items.isEmpty)
        #expect(try await graph.chats.messageDetail(id: answer.message.id, userID: graph.alice.id).generation != nil)
        await #expect(throws: ChatsError.self) { try await graph.chats.messageDetail(id: answer.message.id, userID: graph.bob.id) }
        #expect(provider.requests.count == 1)
    }

    @Test("runs.list pages newest first; validation of params")
    func listAndValidation() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["a"])])
        let graph = try await graph(provider)
        var runs: [String] = []
        for index in 0..<3 { runs.append(try await graph.agent.act(.init(message: "m\(index)"), user: graph.alice) { _ in }.runId) }
        let page = try await graph.agent.runs(.init(limit: 2), userID: graph.alice.id)
        #expect(page.items.map(\.id) == [runs[2], runs[1]])
        let next = try await graph.agent.runs(.init(cursor: page.nextCursor, limit: 2), userID: graph.alice.id)
        #expect(next.items.map(\.id) == [runs[0]] && next.nextCursor == nil)
        await #expect(throws: AgentError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await graph.agent.runs(.init(limit: 0), userID: graph.alice.id)
        }
        await #expect(throws: AgentError.self) { try await graph.agent.act(.init(message: "  "), user: graph.alice) { _ in } }
        await #expect(throws: AgentError.self) { try await graph.agent.act(.init(message: "x", temperature: 3), user: graph.alice) { _ in } }
        await #expect(throws: AgentError.self) { try await graph.agent.act(.init(message: "x", maxTokens: 0), user: graph.alice) { _ in } }
        #expect(AgentService.title(from: String(repeating: "a ", count: 300)).count == ChatsService.maxTitleLength)
    }

    @Test("runs left running (a crash) are marked failed, interrupted, with an event")
    func interruptedRuns() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [Self.blockingScript(gate)])
        let graph = try await graph(provider)
        let (task, deltas) = try await startBlockedRun(graph, gate: gate)
        #expect(try await graph.agent.failInterruptedRuns() == 1)
        let runID = try #require(deltas.all.first?.runId)
        let run = try await graph.agent.run(id: runID, userID: graph.alice.id)
        #expect(run.status == .failed && run.error?.kind == "interrupted" && run.finishedAt != nil)
        #expect(try await graph.dependencies.recorded(AgentEvents.RunFailed.self).count == 1)
        task.cancel()
        _ = try? await task.value
        gate.open()
    }
}

/// A web search that waits at a gate (cancellable) and tells when a search arrived.
final class BlockingWebSearch: WebSearchClient {
    let gate: Gate
    let arrived = Gate()

    init(gate: Gate) { self.gate = gate }

    func search(_ query: WebSearchQuery) async throws -> WebSearchResponse {
        arrived.open()
        await gate.wait()
        try Task.checkCancellation()
        return WebSearchResponse(query: query.query, results: [], requestId: nil, credits: nil, responseTimeSeconds: nil)
    }
}
