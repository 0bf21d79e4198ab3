import FakeLLMServer
import Foundation
import Testing

/// The agent end to end: the web-search tool loop against the fake Tavily, regenerate and the run
/// listings, and `agentctl chat` against the real daemon.
extension AgentEndToEndTests {
    // MARK: 8. The tool loop
    @Test(
        "webSearch: the model's web_search call runs on Tavily (Bearer key), its results go back as a tool message, the answer has sources; a Tavily 432 is a failed tool result"
    )
    func toolLoop() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let act = try await agent.act(#"{"message":"swift concurrency","model":"fake-tool-loop","webSearch":true}"#)
                let result = try #require(act.reply["result"], "\(act.reply)")
                let chats = fake.chatRequests
                #expect(chats.count == 2, "a tool round, then the answer")
                let tools = chats.first?.json["tools"]?.arrayValue ?? []
                #expect(tools.map { $0["function"]?["name"]?.stringValue } == ["web_search"], "\(chats.first?.bodyText ?? "")")

                let search = try #require(fake.searchRequests.first)
                #expect(fake.searchRequests.count == 1)
                #expect(search.header("authorization") == "Bearer \(FakeProvider.tavilyKey)")
                #expect(search.json["query"]?.stringValue == "swift concurrency", "\(search.bodyText)")

                let followUp = try #require(chats.last).json["messages"]?.arrayValue ?? []
                let call = try #require(followUp.first { $0["role"]?.stringValue == "assistant" }, "\(followUp)")
                let callID = try #require(call["tool_calls"]?[0]?["id"]?.stringValue, "\(call)")
                #expect(call["tool_calls"]?[0]?["function"]?["name"]?.stringValue == "web_search", "\(call)")
                let tool = try #require(followUp.first { $0["role"]?.stringValue == "tool" }, "\(followUp)")
                #expect(tool["tool_call_id"]?.stringValue == callID, "\(tool)")
                #expect(tool["content"]?.stringValue?.contains("Result 1 for swift concurrency") == true, "\(tool)")

                let answer = result["message"]?["content"]?.stringValue ?? ""
                #expect(answer.hasPrefix("Echo: {") && answer.contains("https://example.com/swift-concurrency/1"), "\(answer)")
                #expect(act.deltas.compactMap { $0["text"]?.stringValue }.joined() == answer)
                let sources = result["sources"]?.arrayValue ?? []
                #expect(sources.first?["url"]?.stringValue == "https://example.com/swift-concurrency/1", "\(result)")
                #expect(sources.first?["title"]?.stringValue == "Result 1 for swift concurrency", "\(result)")
                #expect(sources.count == 5, "search results per query: \(sources)")

                let messageID = try #require(result["message"]?["id"]?.stringValue)
                let stored = try await agent.result("v2.chats.messages.get", #"{"id":"\#(messageID)"}"#)
                let searches = stored["generation"]?["searches"]?.arrayValue ?? []
                #expect(searches.count == 1, "\(stored)")
                #expect(searches.first?["query"]?.stringValue == "swift concurrency", "\(searches)")
                #expect(searches.first?["results"]?.arrayValue?.count == 5, "\(searches)")
                #expect(searches.first?["credits"]?.intValue == 1, "\(searches)")
                #expect(searches.first?["requestId"]?.stringValue == "fake-tavily-\(search.index)", "\(searches)")
                #expect(searches.first?["toolCallId"]?.stringValue == "call_1", "\(searches)")
                #expect(stored["generation"]?["toolCalls"]?[0]?["name"]?.stringValue == "web_search", "\(stored)")
                let run = try await agent.result("v2.agent.runs.get", #"{"runId":"\#(result["runId"]?.stringValue ?? "")"}"#)
                #expect(run["searchCount"]?.intValue == 1 && run["status"]?.stringValue == "completed", "\(run)")

                // Tavily refuses (432, the plan's credit limit): the model is told, the search stored with its error.
                let limited = try await agent.act(#"{"message":"fake-432","model":"fake-tool-loop","webSearch":true}"#)
                let limitedResult = try #require(limited.reply["result"], "\(limited.reply)")
                let toolMessage = fake.chatRequests.last?.json["messages"]?.arrayValue?.last { $0["role"]?.stringValue == "tool" }
                #expect(
                    toolMessage?["content"]?.stringValue?.contains("search failed (quotaExhausted)") == true, "\(String(describing: toolMessage))")
                #expect(limitedResult["sources"] == .array([]), "\(limitedResult)")
                let limitedStored = try await agent.result(
                    "v2.chats.messages.get", #"{"id":"\#(limitedResult["message"]?["id"]?.stringValue ?? "")"}"#)
                let failedSearch = limitedStored["generation"]?["searches"]?[0]
                #expect(
                    failedSearch?["query"]?.stringValue == "fake-432" && failedSearch?["error"]?["kind"]?.stringValue == "quotaExhausted",
                    "\(limitedStored)")
                // That the daemon's log never shows Tavily's key is checked on the live daemon
                // (AgentEndToEndLiveTests.errorMapping makes a search at debug level).
            }
        }
    }

    @Test("parallel tool calls streamed by index: web_search runs, an unknown tool is answered with an error, both results go back")
    func parallelToolCalls() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                fake.enqueue(.chatStreamParallelToolCalls())
                let act = try await agent.act(#"{"message":"Weather and swift","webSearch":true}"#)
                let result = try #require(act.reply["result"], "\(act.reply)")
                #expect(result["message"]?["content"]?.stringValue == "Echo: Weather and swift", "\(result)")
                #expect(fake.searchRequests.map { $0.json["query"]?.stringValue } == ["swift"])
                let followUp = fake.chatRequests.last?.json["messages"]?.arrayValue ?? []
                let calls = followUp.first { $0["role"]?.stringValue == "assistant" }?["tool_calls"]?.arrayValue ?? []
                #expect(calls.map { $0["function"]?["name"]?.stringValue } == ["web_search", "get_weather"], "\(followUp)")
                #expect(calls.map { $0["function"]?["arguments"]?.stringValue } == [#"{"query":"swift"}"#, #"{"city":"Paris"}"#], "\(followUp)")
                let results = followUp.filter { $0["role"]?.stringValue == "tool" }
                #expect(results.map { $0["tool_call_id"] } == calls.map { $0["id"] }, "one result per call, in order: \(followUp)")
                #expect(results.last?["content"]?.stringValue?.contains("unknown tool get_weather") == true, "\(results)")
                #expect(result["sources"]?.arrayValue?.count == 5, "\(result)")
            }
        }
    }

    // MARK: 9. Regenerate, runs

    @Test("agent.regenerate answers again as a sibling; agent.runs.list/get show statuses and usage")
    func regenerateAndRuns() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment(maxRetries: 0)) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let first = try #require(try await agent.act(#"{"message":"Tell me"}"#).reply["result"])
                let chatID = try #require(first["chatId"]?.stringValue)
                let answerID = try #require(first["message"]?["id"]?.stringValue)
                fake.enqueue(.chatStream(["Another ", "answer"], promptTokens: 7))
                let regenerated = try await agent.act(#"{"messageId":"\#(answerID)"}"#, method: "v2.agent.regenerate")
                let second = try #require(regenerated.reply["result"], "\(regenerated.reply)")
                #expect(second["message"]?["content"]?.stringValue == "Another answer", "\(second)")
                #expect(regenerated.deltas.map { $0["seq"]?.intValue } == [1, 2], "\(regenerated.deltas)")
                #expect(second["message"]?["parentId"] == first["message"]?["parentId"], "a sibling: \(second) vs \(first)")
                #expect(second["runId"] != first["runId"])
                // The regeneration asked the same question, without the first answer.
                #expect(fake.chatRequests.last?.chatMessages.map(\.content) == ["Tell me"], "\(fake.chatRequests.last?.bodyText ?? "")")
                let branch = try await agent.result("v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#)["items"]?.arrayValue ?? []
                #expect(branch.last?["id"] == second["message"]?["id"], "the new answer's branch is active: \(branch)")

                // A failed run, then regenerate on its question.
                fake.enqueue(.serverError500)
                let failed = try await agent.act(#"{"chatId":"\#(chatID)","message":"Fail first"}"#)
                #expect(failed.reply.errorCode == -32058, "\(failed.reply)")
                let runs = try await agent.result("v2.agent.runs.list", #"{"chatId":"\#(chatID)"}"#)["items"]?.arrayValue ?? []
                #expect(runs.map { $0["status"]?.stringValue } == ["failed", "completed", "completed"], "\(runs)")
                #expect(runs[1]["usage"]?["promptTokens"]?.intValue == 7 && runs[1]["usage"]?["completionTokens"]?.intValue == 2, "\(runs)")
                #expect(
                    runs.dropFirst().allSatisfy { ($0["latencyMs"]?.intValue ?? -1) >= 0 && $0["finishReason"]?.stringValue == "stop" }, "\(runs)")
                #expect(runs[0]["error"]?["kind"]?.stringValue == "upstreamUnavailable" && runs[0]["assistantMessageId"] == nil, "\(runs)")
                let question = try #require(runs[0]["userMessageId"]?.stringValue)
                let retried = try await agent.act(#"{"messageId":"\#(question)"}"#, method: "v2.agent.regenerate")
                #expect(retried.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Fail first", "\(retried.reply)")
                #expect(retried.reply["result"]?["message"]?["parentId"]?.stringValue == question, "\(retried.reply)")
                let got = try await agent.result("v2.agent.runs.get", #"{"runId":"\#(retried.reply["result"]?["runId"]?.stringValue ?? "")"}"#)
                #expect(got["status"]?.stringValue == "completed" && got["userMessageId"]?.stringValue == question, "\(got)")
                #expect(got["usage"]?["estimated"] == .bool(false) && got["model"]?.stringValue == "gpt-4o-mini", "\(got)")
            }
        }
    }
}

/// Live: agentctl is a process talking to the daemon's socket, and Ctrl-C is a signal.
extension AgentEndToEndLiveTests {
    // MARK: 10. agentctl chat against the real daemon

    @Test("agentctl chat with the real daemon: an answer streams; Ctrl-C during a held answer cancels it and returns to the prompt")
    func agentctlChat() async throws {
        try await withFakeProvider { fake in
            try AgentctlTests.withAgentctl(environment: fake.openAIEnvironment()) { daemon, ctl, folder in
                let chat = try ctl.startOnTerminal(["chat", "--no-color"], in: folder)
                try chat.waitForOutput(containing: "> ")
                var mark = chat.stdout.count
                try chat.type("first question\n")
                try chat.waitForOutput(containing: "Echo: first question\r\n> ", after: mark)

                fake.enqueue(FakeResponse.chatStream(["thinking ", "never"]).gating(chunk: 2, on: "never"))
                mark = chat.stdout.count
                try chat.type("slow\n")
                try chat.waitForOutput(containing: "thinking", after: mark)
                try chat.type("\u{03}")  // Ctrl-C during the answer
                try chat.waitForOutput(containing: "(cancelled)\r\n> ", after: mark)
                #expect(fake.waitForClientClose(requestIndex: 1), "the provider saw the transfer closed")

                mark = chat.stdout.count
                try chat.type("again\n")
                try chat.waitForOutput(containing: "Echo: again\r\n> ", after: mark)
                try chat.type("\u{04}")  // Ctrl-D
                let exit = try chat.waitForExit()
                #expect(exit == .exited(0), "\(exit)\n--- terminal ---\n\(chat.stdout)\n--- stderr ---\n\(chat.stderr)")

                let requests = fake.chatRequests
                #expect(requests.count == 3)
                // One chat: the second and third questions continued the first's.
                #expect(requests.last?.chatMessages.map(\.content).first == "first question", "\(requests.last?.bodyText ?? "")")
                let client = try ClientConnection(daemon.connect())
                let runs = try client.result("v2.agent.runs.list")["items"]?.arrayValue ?? []
                #expect(runs.map { $0["status"]?.stringValue } == ["completed", "cancelled", "completed"], "\(runs)")
            }
        }
    }
}
