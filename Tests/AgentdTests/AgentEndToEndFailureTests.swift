import FakeLLMServer
import Foundation
import Testing

/// The agent end to end when things go wrong: cancellation mid-stream, retries, the error
/// taxonomy through the socket, the idle timeout and the context budget.
extension AgentEndToEndTests {
    // MARK: 5. Cancellation mid-stream
    @Test(
        "$/cancelRequest, agent.cancel from a second connection, a closed connection: the transfer is closed, the partial answer stored as cancelled")
    func cancellation() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let other = InProcessConnection(try await daemon.connect())

                // $/cancelRequest after two deltas (the third waits for a gate never opened).
                fake.enqueue(FakeResponse.chatStream(["Part one ", "part two ", "never"]).gating(chunk: 3, on: "never"))
                let id = try await agent.send("v2.agent.act", #"{"message":"Cancel me"}"#)
                let deltas = try await agent.deltas(2)
                #expect(deltas.compactMap { $0["text"]?.stringValue } == ["Part one ", "part two "], "\(deltas)")
                try await agent.notify("$/cancelRequest", #"{"id":\#(id)}"#)
                let (reply, _) = try await agent.reply(to: id)
                #expect(reply.errorCode == -32800, "\(reply)")
                #expect(await fake.clientClosed(requestIndex: 0), "the provider saw the transfer closed")
                let runID = try #require(reply["error"]?["data"]?["runId"]?.stringValue, "\(reply)")
                let messageID = try #require(reply["error"]?["data"]?["messageId"]?.stringValue, "\(reply)")
                let partial = try await other.result("v2.chats.messages.get", #"{"id":"\#(messageID)"}"#)
                #expect(partial["content"]?.stringValue == "Part one part two ", "\(partial)")
                #expect(partial["generation"]?["finishReason"]?.stringValue == "cancelled", "\(partial)")
                #expect(partial["generation"]?["usage"] != nil, "\(partial)")
                let run = try await other.result("v2.agent.runs.get", #"{"runId":"\#(runID)"}"#)
                #expect(run["status"]?.stringValue == "cancelled" && run["finishReason"]?.stringValue == "cancelled", "\(run)")
                #expect(run["assistantMessageId"]?.stringValue == messageID, "\(run)")

                // agent.cancel from another connection of the same user.
                fake.enqueue(FakeResponse.chatStream(["Only this ", "never"]).gating(chunk: 2, on: "never"))
                let second = try await agent.send("v2.agent.act", #"{"message":"Cancel me elsewhere"}"#)
                let first = try #require(try await agent.deltas(1).first)
                let secondRun = try #require(first["runId"]?.stringValue)
                let cancelled = try await other.result("v2.agent.cancel", #"{"runId":"\#(secondRun)"}"#)
                #expect(cancelled["status"]?.stringValue == "cancelled" && cancelled["finishReason"]?.stringValue == "cancelled", "\(cancelled)")
                let (secondReply, _) = try await agent.reply(to: second)
                #expect(secondReply.errorCode == -32800 && secondReply["error"]?["data"]?["runId"]?.stringValue == secondRun, "\(secondReply)")
                #expect(await fake.clientClosed(requestIndex: 1))
                let again = try await other.result("v2.agent.cancel", #"{"runId":"\#(secondRun)"}"#)
                #expect(again == cancelled, "a second cancel answers the run as it is")
                let stored = try await other.result("v2.chats.messages.get", #"{"id":"\#(cancelled["assistantMessageId"]?.stringValue ?? "none")"}"#)
                #expect(stored["content"]?.stringValue == "Only this ", "\(stored)")

                // Closing the connection mid-stream cancels the run.
                let watcher = InProcessConnection(try await daemon.connect())
                _ = try await watcher.subscribe(#"{"topics":["agent.run.cancelled"]}"#)
                let closing = InProcessConnection(try await daemon.connect())
                fake.enqueue(FakeResponse.chatStream(["Going ", "never"]).gating(chunk: 2, on: "never"))
                try await closing.send("v2.agent.act", #"{"message":"Hang up"}"#)
                let third = try #require(try await closing.deltas(1).first)
                await closing.client.close()
                #expect(await fake.clientClosed(requestIndex: 2))
                let events = try await watcher.events { _ in true }
                #expect(events.first?["data"]?["runId"] == third["runId"], "\(events)")
                let thirdRun = try await other.result("v2.agent.runs.get", #"{"runId":"\#(third["runId"]?.stringValue ?? "")"}"#)
                #expect(thirdRun["status"]?.stringValue == "cancelled", "\(thirdRun)")
                #expect(fake.chatRequests.count == 3, "no retry after a cancel")
            }
        }
    }

    // MARK: 6. Retries

    @Test("503 then 429 (retry-after-ms) then success: one answer, 3 requests; quota 429 and a break after the first delta are not retried")
    func retries() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment(maxRetries: 2)) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                fake.enqueue(.overloaded503)
                fake.enqueue(.rateLimited(retryAfterMs: 10))
                let act = try await agent.act(#"{"message":"Try again"}"#)
                #expect(act.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Try again", "\(act.reply)")
                #expect(
                    act.deltas.compactMap { $0["text"]?.stringValue }.joined() == "Echo: Try again",
                    "deltas of the one successful attempt: \(act.deltas)")
                #expect(fake.chatRequests.count == 3)
                let chatID = try #require(act.reply["result"]?["chatId"]?.stringValue)
                let messages = try await agent.result("v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#)["items"]?.arrayValue ?? []
                #expect(messages.count == 2, "one question, one answer: \(messages)")

                fake.enqueue(.insufficientQuota)
                let quota = try await agent.act(#"{"message":"No money"}"#)
                #expect(quota.reply.errorCode == -32055 && quota.reply["error"]?["data"]?["kind"]?.stringValue == "quotaExhausted", "\(quota.reply)")
                #expect(fake.chatRequests.count == 4, "quota is not retried")

                fake.enqueue(.chatStreamErrorEvent())
                let broken = try await agent.act(#"{"message":"Break"}"#)
                #expect(broken.reply.errorCode == -32060, "\(broken.reply)")
                #expect(broken.reply["error"]?["data"]?["partialText"]?.stringValue == "Hel", "\(broken.reply)")
                #expect(broken.deltas.compactMap { $0["text"]?.stringValue } == ["Hel"], "\(broken.deltas)")
                #expect(fake.chatRequests.count == 5, "nothing is retried after the first delta")

                let disconnected = try await agent.act(#"{"message":"Cut","model":"fake-disconnect"}"#)
                #expect(disconnected.reply.errorCode == -32060, "\(disconnected.reply)")
                #expect(disconnected.reply["error"]?["data"]?["partialText"]?.stringValue == "Echo: ", "\(disconnected.reply)")
                #expect(fake.chatRequests.count == 6)

                let runs = try await agent.result("v2.agent.runs.list")["items"]?.arrayValue ?? []
                #expect(runs.map { $0["status"]?.stringValue } == ["failed", "failed", "failed", "completed"], "\(runs)")
                #expect(runs.first?["error"]?["kind"]?.stringValue == "streamBroken", "\(runs)")
            }
        }
    }

    // MARK: 4 and 7: the context budget and the idle timeout (a small window, a short timeout)

    // The 1 s idle timeout (libcurl's, real time) is set only on the daemon that makes the stalled
    // request: an ordinary turn on a loaded machine never meets it, so the test need not run alone.
    @Test("a small context window drops the oldest turns from the request; too large alone is -32053 before any request; a stall is -32059")
    func contextBudgetAndTimeout() async throws {
        try await withFakeProviderInProcess { fake in
            let environment = fake.openAIEnvironment(maxRetries: 0, ["AGENTD_LLM_CONTEXT_WINDOW": "256"])
            try await withAgentDaemon(environment: environment) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                // 256 tokens, 32 kept for the answer: each turn here is about 2 × (4 + 35) tokens.
                let filler = String(repeating: "word ", count: 26)
                var chatID: String?
                var last: JSON = .null
                for turn in 1...4 {
                    let chat = chatID.map { #""chatId":"\#($0)","# } ?? ""
                    let act = try await agent.act(#"{\#(chat)"message":"turn\#(turn) \#(filler)"}"#)
                    last = try #require(act.reply["result"], "turn \(turn): \(act.reply)")
                    chatID = last["chatId"]?.stringValue
                }
                let context = try #require(last["context"], "\(last)")
                #expect((context["droppedMessages"]?.intValue ?? 0) > 0, "\(context)")
                #expect((context["estimatedTokens"]?.intValue ?? 999) <= 224, "\(context)")
                let request = try #require(fake.chatRequests.last)
                let sent = request.chatMessages.compactMap(\.content)
                #expect(!sent.contains { $0.contains("turn1 ") }, "the oldest turn is not sent: \(sent)")
                #expect(sent.last?.hasPrefix("turn4 ") == true, "\(sent)")
                #expect(sent.count == context["keptMessages"]?.intValue, "\(sent.count) messages vs \(context)")
                #expect(sent.count + (context["droppedMessages"]?.intValue ?? 0) == 7, "the branch has 7 messages")

                let before = fake.requests.count
                let huge = try await agent.act(#"{"chatId":"\#(chatID ?? "")","message":"\#(String(repeating: "big ", count: 300))"}"#)
                #expect(huge.reply.errorCode == -32053, "\(huge.reply)")
                #expect(huge.reply["error"]?["data"]?["contextWindow"]?.intValue == 256, "\(huge.reply)")
                #expect((huge.reply["error"]?["data"]?["estimatedTokens"]?.intValue ?? 0) > 256, "\(huge.reply)")
                #expect(fake.requests.count == before, "no provider request")
            }
            try await withAgentDaemon(environment: environment.merging(["AGENTD_LLM_TIMEOUT_SECONDS": "1"]) { $1 }) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                // Headers, then silence past the 1 s idle timeout (no retries configured here).
                fake.enqueue(FakeResponse.stall())
                let stalled = try await agent.act(#"{"message":"Stall"}"#)
                #expect(stalled.reply.errorCode == -32059 && stalled.reply["error"]?["data"]?["kind"]?.stringValue == "timeout", "\(stalled.reply)")
                #expect(await fake.clientClosed(requestIndex: fake.requests.count - 1), "the stalled transfer was closed")
            }
        }
    }
}

/// Live: the whole daemon's log at debug level (startup, configuration, the provider's and Tavily's
/// transfers) must not show a key; only the process writes it. (The codes are checked here too.)
extension AgentEndToEndLiveTests {
    // MARK: 7. Error mapping

    @Test("provider errors reach the client as their -3205x codes with data; no key in the debug log")
    func errorMapping() async throws {
        try await withFakeProvider { fake in
            try withDaemon(["--log-level", "debug"], environment: fake.openAIEnvironment(maxRetries: 1)) { daemon in
                let agent = try ClientConnection(daemon.connect())
                let cases: [(model: String, code: Int, kind: String, requests: Int)] = [
                    ("fake-401", -32051, "authentication", 1), ("fake-404", -32052, "modelNotFound", 1),
                    ("fake-context-overflow", -32053, "contextOverflow", 1), ("fake-413", -32056, "requestTooLarge", 1),
                    ("fake-429-too-large", -32056, "requestTooLarge", 1), ("fake-quota", -32055, "quotaExhausted", 1),
                    ("fake-content-filter-400", -32057, "contentFiltered", 1), ("fake-content-filter", -32057, "contentFiltered", 1),
                    ("fake-500", -32058, "upstreamUnavailable", 2), ("fake-502", -32058, "upstreamUnavailable", 2),
                    ("fake-llamacpp-error", -32053, "contextOverflow", 1),
                ]
                for item in cases {
                    let before = fake.chatRequests.count
                    let act = try agent.act(#"{"message":"Fail please","model":"\#(item.model)"}"#)
                    #expect(act.reply.errorCode == item.code, "\(item.model): \(act.reply)")
                    let data = act.reply["error"]?["data"]
                    #expect(data?["kind"]?.stringValue == item.kind, "\(item.model): \(act.reply)")
                    #expect(data?["provider"]?.stringValue == "openai", "\(item.model): \(act.reply)")
                    #expect(fake.chatRequests.count - before == item.requests, "\(item.model): \(fake.chatRequests.count - before) requests")
                    #expect(!act.reply.description.contains("sk-tes"), "\(item.model): the key's fragment reached the client: \(act.reply)")
                }
                let filtered = try agent.act(#"{"message":"Fail please","model":"fake-content-filter-400"}"#)
                #expect(filtered.reply["error"]?["data"]?["categories"] == .array([.string("jailbreak")]), "\(filtered.reply)")
                let output = try agent.act(#"{"message":"Fail please","model":"fake-content-filter"}"#)
                #expect(output.reply["error"]?["data"]?["categories"] == .array([.string("violence")]), "\(output.reply)")
                let limited = try agent.act(#"{"message":"Fail please","model":"fake-429"}"#)
                #expect(limited.reply.errorCode == -32054 && limited.reply["error"]?["data"]?["retryAfterMs"]?.intValue == 20, "\(limited.reply)")

                // An error event in a 200 stream before any text: mapped, not a broken stream.
                fake.enqueue(
                    .sse([
                        SSE.event(
                            #"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
                        )
                    ]))
                let inStream = try agent.act(#"{"message":"Fail please"}"#)
                #expect(inStream.reply.errorCode == -32053, "\(inStream.reply)")

                // A web search (Tavily's key on the wire), so that the log check below covers it too:
                // moved here from the tool loop, which runs in process and has no daemon log.
                let searched = try agent.act(#"{"message":"swift concurrency","model":"fake-tool-loop","webSearch":true}"#)
                #expect(searched.reply["result"] != nil && fake.searchRequests.count == 1, "\(searched.reply)")

                // The runs failed with their kinds; the debug log never shows a key.
                let runs = try agent.result("v2.agent.runs.list", #"{"limit":200}"#)["items"]?.arrayValue ?? []
                #expect(runs.dropFirst().allSatisfy { $0["status"]?.stringValue == "failed" && $0["error"]?["kind"] != nil }, "\(runs)")
                #expect(runs.first?["status"]?.stringValue == "completed", "the search's run: \(runs)")
                let log = daemon.stderr
                #expect(log.contains("debug"), "the log is at debug level")
                for secret in [FakeProvider.apiKey, FakeProvider.tavilyKey, "sk-tes***"] {
                    #expect(!log.contains(secret), "\(secret) in the daemon's log")
                }
            }
        }
    }
}
