import FakeLLMServer
import Foundation
import Testing

/// The agent end to end: the daemon's graph in process (`withAgentDaemon`) with the real provider
/// stack — `LLMProviderFactory` over libcurl, configured by the same environment the live daemon
/// reads — calling the fake provider (and the fake Tavily) that this process runs on loopback, over
/// the real wire format; driven through in-process connections. What the provider received is read
/// from the fake server's record. Failures, cancellation and the tool loop are in the other
/// `AgentEndToEnd…` files. No process, no blocking: the tests run in parallel.
@Suite("Agent end to end (in process, real provider stack, fake provider)", .timeLimit(.minutes(2)))
struct AgentEndToEndTests {
    // MARK: 1. Streaming order, stored messages, events

    @Test(
        "deltas stream before the reply, seq 1…n, and concatenate to the stored answer; the question is stored before the provider answers; run events"
    )
    func streamingOrder() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let other = InProcessConnection(try await daemon.connect())
                fake.enqueue(FakeResponse.chatStream(["Echo: ", "Hello ", "there"], promptTokens: 12).gating(chunk: 1, on: "first-delta"))
                let id = try await agent.send("v2.agent.act", #"{"message":"Hello there"}"#)
                #expect(await fake.requestsArrived(count: 1))

                // The provider holds its answer: the question is already stored, the run running.
                let request = try #require(fake.chatRequests.first)
                #expect(request.chatMessages.last?.content == "Hello there", "\(request.bodyText)")
                let chat = try #require(await other.result("v2.chats.list")["items"]?[0], "no chat")
                #expect(chat["title"]?.stringValue == "Hello there")
                let chatID = try #require(chat["id"]?.stringValue)
                let before = try await other.result("v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#)
                #expect(before["items"]?.arrayValue?.map { $0["role"]?.stringValue } == ["user"], "\(before)")
                let running = try await other.result("v2.agent.runs.list", #"{"chatId":"\#(chatID)"}"#)
                #expect(running["items"]?[0]?["status"]?.stringValue == "running", "\(running)")

                fake.openGate("first-delta")
                let (reply, notifications) = try await agent.reply(to: id)
                let result = try #require(reply["result"], "\(reply)")
                #expect(notifications.allSatisfy { $0["method"]?.stringValue == "agent.delta" }, "\(notifications)")
                let deltas = notifications.compactMap { $0["params"] }
                let runID = try #require(result["runId"]?.stringValue)
                #expect(deltas.map { $0["seq"]?.intValue } == [1, 2, 3], "\(deltas)")
                #expect(deltas.allSatisfy { $0["runId"]?.stringValue == runID && $0["chatId"]?.stringValue == chatID }, "\(deltas)")
                let streamed = deltas.compactMap { $0["text"]?.stringValue }.joined()
                #expect(streamed == "Echo: Hello there")
                #expect(result["message"]?["content"]?.stringValue == streamed, "\(result)")
                #expect(result["finishReason"]?.stringValue == "stop" && result["chatId"]?.stringValue == chatID, "\(result)")
                #expect(result["usage"]?["promptTokens"]?.intValue == 12 && result["usage"]?["completionTokens"]?.intValue == 3, "\(result)")
                #expect(result["context"]?["keptMessages"]?.intValue == 1 && result["context"]?["droppedMessages"]?.intValue == 0, "\(result)")

                // Stored: the question, then the answer as its child, with how it was generated.
                let listed = try await other.result("v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#)["items"]?.arrayValue ?? []
                #expect(listed.map { $0["content"]?.stringValue } == ["Hello there", streamed], "\(listed)")
                let answerID = try #require(result["message"]?["id"]?.stringValue)
                #expect(listed.last?["parentId"] == listed.first?["id"], "\(listed)")
                let stored = try await other.result("v2.chats.messages.get", #"{"id":"\#(answerID)"}"#)
                let generation = try #require(stored["generation"], "\(stored)")
                #expect(generation["runId"]?.stringValue == runID && generation["provider"]?.stringValue == "openai", "\(generation)")
                #expect(generation["model"]?.stringValue == "gpt-4o-mini" && generation["finishReason"]?.stringValue == "stop", "\(generation)")
                #expect(
                    generation["usage"]?["promptTokens"]?.intValue == 12 && generation["usage"]?["completionTokens"]?.intValue == 3, "\(generation)")
                #expect(generation["usage"]?["estimated"] == .bool(false), "\(generation)")
                #expect((generation["latencyMs"]?.intValue ?? -1) >= 0 && (generation["timeToFirstTokenMs"]?.intValue ?? -1) >= 0, "\(generation)")
                #expect(generation["searches"]?.arrayValue?.isEmpty == true, "\(generation)")

                let run = try await other.result("v2.agent.runs.get", #"{"runId":"\#(runID)"}"#)
                #expect(run["status"]?.stringValue == "completed" && run["assistantMessageId"]?.stringValue == answerID, "\(run)")

                // The run's events, in order, filed under the chat.
                let replay = try await other.result("v2.events.replay", #"{"since":0,"topics":["agent.*"]}"#)
                let events = replay["events"]?.arrayValue ?? []
                #expect(events.map { $0["topic"]?.stringValue } == ["agent.run.started", "agent.run.completed"], "\(replay)")
                #expect(events.allSatisfy { $0["data"]?["runId"]?.stringValue == runID }, "\(events)")
                #expect(fake.chatRequests.count == 1)
            }
        }
    }

    // MARK: 2. The request each provider form receives

    @Test("OpenAI: Bearer key, model, stream with usage, system prompt from a template + the module, then the history and the question")
    func openAIRequest() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let user = try #require(await agent.result("auth.whoami")["username"]?.stringValue)
                let module = try await agent.result("modules.create", #"{"title":"Garden","content":"Tomatoes need sun."}"#)
                let moduleID = try #require(module["id"]?.stringValue)
                let prompt = try await agent.result(
                    "prompts.create", #"{"name":"e2e.helper","body":"You help {{user}} with {{module.title}} ({{tone}})."}"#)
                let promptID = try #require(prompt["id"]?.stringValue)

                let first = try await agent.act(
                    #"{"moduleId":"\#(moduleID)","message":"What grows?","promptId":"\#(promptID)","variables":{"tone":"brief"},"temperature":0.5,"maxTokens":100}"#
                )
                let chatID = try #require(first.reply["result"]?["chatId"]?.stringValue, "\(first.reply)")
                let second = try await agent.act(
                    #"{"chatId":"\#(chatID)","message":"And in shade?","promptId":"\#(promptID)","variables":{"tone":"brief"}}"#)
                #expect(second.reply["result"]?["message"]?["content"]?.stringValue == "Echo: And in shade?", "\(second.reply)")

                let requests = fake.chatRequests
                #expect(requests.count == 2)
                let request = try #require(requests.last)
                #expect(request.method == "POST" && request.path == "/v1/chat/completions" && request.query == nil, "\(request.uri)")
                #expect(request.header("authorization") == "Bearer \(FakeProvider.apiKey)")
                #expect(request.header("api-key") == nil)
                #expect(request.header("content-type")?.hasPrefix("application/json") == true)
                let body = request.json
                #expect(body["model"]?.stringValue == "gpt-4o-mini" && body["stream"] == .bool(true), "\(body)")
                #expect(body["stream_options"]?["include_usage"] == .bool(true), "\(body)")
                #expect(body["tools"] == nil, "no tools without webSearch: \(body)")
                let messages = request.chatMessages
                #expect(messages.map(\.role) == ["system", "user", "assistant", "user"], "\(messages)")
                let system = messages.first?.content ?? ""
                #expect(system.hasPrefix("You help \(user) with Garden (brief)."), "\(system)")
                #expect(system.contains("<module>\nTomatoes need sun.\n</module>"), "\(system)")
                #expect(messages.dropFirst().map(\.content) == ["What grows?", "Echo: What grows?", "And in shade?"], "\(messages)")
                // The first request carried the call's sampling parameters.
                let firstBody = requests[0].json
                #expect(firstBody["temperature"] == .double(0.5), "\(firstBody)")
                #expect(firstBody["max_tokens"]?.intValue == 100 || firstBody["max_completion_tokens"]?.intValue == 100, "\(firstBody)")
            }
        }
    }

    @Test("Azure deployments form (api-key, api-version), Azure /openai/v1/ form, and an OpenAI-compatible server without a key")
    func providerForms() async throws {
        try await withFakeProviderInProcess(configuration: .init()) { fake in
            let deployments = fake.environment([
                "AGENTD_LLM_PROVIDER": "azure", "AGENTD_LLM_BASE_URL": fake.baseURL, "AGENTD_LLM_API_KEY": "azure-test-key-not-secret",
                "AGENTD_LLM_AZURE_DEPLOYMENT": "chat-deploy", "AGENTD_LLM_AZURE_API_VERSION": "2024-10-21",
            ])
            let v1 = fake.environment([
                "AGENTD_LLM_PROVIDER": "azure", "AGENTD_LLM_BASE_URL": fake.baseURL, "AGENTD_LLM_API_KEY": "azure-test-key-not-secret",
                "AGENTD_LLM_MODEL": "gpt-4o-deploy",
            ])
            let compatible = fake.environment([
                "AGENTD_LLM_PROVIDER": "openai-compatible", "AGENTD_LLM_BASE_URL": fake.baseURL + "/v1", "AGENTD_LLM_MODEL": "llama3.1",
                "AGENTD_LLM_API_KEY": "", "OPENAI_API_KEY": "", "AZURE_OPENAI_API_KEY": "",
            ])
            for (name, environment) in [("deployments", deployments), ("v1", v1), ("compatible", compatible)] {
                try await withAgentDaemon(environment: environment) { daemon in
                    let agent = InProcessConnection(try await daemon.connect())
                    let before = fake.chatRequests.count
                    let act = try await agent.act(#"{"message":"Hi \#(name)"}"#)
                    #expect(act.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Hi \(name)", "\(name): \(act.reply)")
                    #expect(act.deltas.count >= 2, "\(name): \(act.deltas)")
                    let request = try #require(fake.chatRequests.dropFirst(before).first, "\(name)")
                    #expect(request.json["stream"] == .bool(true), "\(name): \(request.bodyText)")
                    #expect(request.chatMessages.last?.content == "Hi \(name)", "\(name): \(request.bodyText)")
                    switch name {
                    case "deployments":
                        #expect(request.path == "/openai/deployments/chat-deploy/chat/completions", "\(request.uri)")
                        #expect(request.queryItem("api-version") == "2024-10-21", "\(request.uri)")
                        #expect(request.header("api-key") == "azure-test-key-not-secret" && request.header("authorization") == nil)
                    case "v1":
                        #expect(request.path == "/openai/v1/chat/completions" && request.query == nil, "\(request.uri)")
                        #expect(request.header("api-key") == "azure-test-key-not-secret" && request.header("authorization") == nil)
                        #expect(request.json["model"]?.stringValue == "gpt-4o-deploy", "\(request.bodyText)")
                    default:
                        #expect(request.path == "/v1/chat/completions", "\(request.uri)")
                        #expect(request.header("authorization") == nil && request.header("api-key") == nil)
                        #expect(request.json["model"]?.stringValue == "llama3.1", "\(request.bodyText)")
                    }
                }
            }
        }
    }

    // MARK: 3. Every stream quirk through the daemon

    @Test("every quirk stream of the fake server gives the right stored answer")
    func quirkStreams() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let cases: [(model: String, answer: String, estimated: Bool)] = [
                    ("fake-byte-split", "Echo: split me", false), ("fake-crlf", "Echo: split me", false),
                    ("fake-comments", "Hello world", false), ("fake-fields", "Hello world", true),
                    ("fake-multiline", "Hello world", true), ("fake-obfuscation", "Hello world", false),
                    ("fake-usage-empty", "Hello world", false), ("fake-usage-null", "Hello world", false),
                    ("fake-usage-missing", "Hello world", false), ("fake-azure", "Hello world", true),
                ]
                for item in cases {
                    let act = try await agent.act(#"{"message":"split me","model":"\#(item.model)"}"#)
                    let result = try #require(act.reply["result"], "\(item.model): \(act.reply)")
                    let content = result["message"]?["content"]?.stringValue
                    #expect(content == item.answer, "\(item.model): \(result)")
                    #expect(act.deltas.compactMap { $0["text"]?.stringValue }.joined() == item.answer, "\(item.model): \(act.deltas)")
                    #expect(act.deltas.map { $0["seq"]?.intValue } == Array(1...max(1, act.deltas.count)), "\(item.model): \(act.deltas)")
                    #expect(result["finishReason"]?.stringValue == "stop", "\(item.model): \(result)")
                    #expect(result["usage"]?["estimated"] == .bool(item.estimated), "\(item.model): \(result)")
                    let messageID = try #require(result["message"]?["id"]?.stringValue)
                    let stored = try await agent.result("v2.chats.messages.get", #"{"id":"\#(messageID)"}"#)
                    #expect(stored["content"]?.stringValue == item.answer, "\(item.model): \(stored)")
                }
                #expect(fake.chatRequests.count == cases.count, "no quirk was retried")
            }
        }
    }
}

/// What only the process shows, on the real daemon (`withDaemon`) pointed at the fake provider:
/// SIGHUP reloading `[llm]`, SIGTERM and SIGKILL mid-stream and the restart after them, the
/// daemon's own log at debug level, and `agentctl chat`.
// Serialized: each test runs a daemon (some several) beside the fake provider; one at a time keeps
// that load off the rest of the parallel run.
@Suite("Agent end to end (real daemon, fake provider)", .blockingIO, .serialized, .timeLimit(.minutes(2)))
struct AgentEndToEndLiveTests {}
