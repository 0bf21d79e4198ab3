import FakeLLMServer
import Foundation
import Testing

/// The agent end to end at the edges: cancellation before any text and during a web search (and
/// the repaired history after it), UTF-8 split across chunks, interim 1xx heads, a stream that ends
/// before any text, fallbacks, parameter drift, and settings reloaded with SIGHUP.
extension AgentEndToEndTests {
    @Test("cancelled before any text: no answer stored, run cancelled; a closed connection likewise; the transfer closes either way")
    func cancelBeforeText() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let other = InProcessConnection(try await daemon.connect())
                fake.enqueue(.stall())
                let id = try await agent.send("v2.agent.act", #"{"message":"Wait for it"}"#)
                #expect(await fake.requestsArrived(count: 1))
                try await agent.notify("$/cancelRequest", #"{"id":\#(id)}"#)
                let (reply, notifications) = try await agent.reply(to: id)
                #expect(reply.errorCode == -32800 && reply["error"]?["data"]?["messageId"] == nil, "\(reply)")
                #expect(notifications.isEmpty, "\(notifications)")
                #expect(await fake.clientClosed(requestIndex: 0))
                let runID = try #require(reply["error"]?["data"]?["runId"]?.stringValue, "\(reply)")
                let run = try await other.result("v2.agent.runs.get", #"{"runId":"\#(runID)"}"#)
                #expect(run["status"]?.stringValue == "cancelled" && run["assistantMessageId"] == nil, "\(run)")
                let messages = try await other.result("v2.chats.messages.list", #"{"chatId":"\#(run["chatId"]?.stringValue ?? "")"}"#)
                #expect(messages["items"]?.arrayValue?.map { $0["role"]?.stringValue } == ["user"], "\(messages)")

                let watcher = InProcessConnection(try await daemon.connect())
                _ = try await watcher.subscribe(#"{"topics":["agent.run.cancelled"]}"#)
                let closing = InProcessConnection(try await daemon.connect())
                fake.enqueue(.stall())
                try await closing.send("v2.agent.act", #"{"message":"Hang up early"}"#)
                #expect(await fake.requestsArrived(count: 2))
                await closing.client.close()
                #expect(await fake.clientClosed(requestIndex: 1))
                let events = try await watcher.events { _ in true }
                let closedRun = try #require(events.first?["data"]?["runId"]?.stringValue, "\(events)")
                #expect(try await other.result("v2.agent.runs.get", #"{"runId":"\#(closedRun)"}"#)["status"]?.stringValue == "cancelled")
            }
        }
    }

    @Test("cancelled during a web search: the call is stored without its result, and the next request answers it as interrupted")
    func cancelDuringSearch() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let other = InProcessConnection(try await daemon.connect())
                // Tavily's answer waits for a gate never opened.
                let held = FakeResponse.chunks(headers: [("Content-Type", "application/json")], [FakeResponse.Chunk("{}", gate: "never")])
                fake.enqueue(held, path: "/search")
                let id = try await agent.send("v2.agent.act", #"{"message":"look it up","model":"fake-tool-loop","webSearch":true}"#)
                #expect(await fake.requestsArrived(count: 2), "the model's request, then the search")
                #expect(fake.searchRequests.count == 1)
                try await agent.notify("$/cancelRequest", #"{"id":\#(id)}"#)
                let (reply, _) = try await agent.reply(to: id)
                #expect(reply.errorCode == -32800, "\(reply)")
                #expect(await fake.clientClosed(requestIndex: 1), "the search's transfer was closed")
                let runID = try #require(reply["error"]?["data"]?["runId"]?.stringValue, "\(reply)")
                let run = try await other.result("v2.agent.runs.get", #"{"runId":"\#(runID)"}"#)
                #expect(run["status"]?.stringValue == "cancelled", "\(run)")
                let chatID = try #require(run["chatId"]?.stringValue)

                // The next question in the chat: the stored call goes back with an "interrupted" result.
                let next = try await agent.act(#"{"chatId":"\#(chatID)","message":"Plain question"}"#)
                #expect(next.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Plain question", "\(next.reply)")
                let messages = fake.chatRequests.last?.json["messages"]?.arrayValue ?? []
                #expect(messages.map { $0["role"]?.stringValue } == ["user", "assistant", "tool", "user"], "\(messages)")
                let callID = messages[safe: 1]?["tool_calls"]?[0]?["id"]
                #expect(callID != nil && messages[safe: 2]?["tool_call_id"] == callID, "\(messages)")
                #expect(messages[safe: 2]?["content"]?.stringValue?.contains("interrupted") == true, "\(messages)")
            }
        }
    }

    @Test("UTF-8 split inside characters, 103 heads, a stream ended before any text (retried), a fallback model, max_tokens drift")
    func transportEdges() async throws {
        try await withFakeProviderInProcess { fake in
            let environment = fake.openAIEnvironment(maxRetries: 1, ["AGENTD_LLM_FALLBACKS": "gpt-4o-fallback"])
            try await withAgentDaemon(environment: environment) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                let text = "café 🎉 naïve — 日本語"
                let split = try await agent.act(#"{"message":"\#(text)","model":"fake-byte-split"}"#)
                #expect(split.reply["result"]?["message"]?["content"]?.stringValue == "Echo: \(text)", "\(split.reply)")
                #expect(split.deltas.compactMap { $0["text"]?.stringValue }.joined() == "Echo: \(text)", "\(split.deltas)")

                var early = FakeResponse.chatStream(["Early ", "hints"])
                early.interimStatuses = [103]
                fake.enqueue(early)
                let hinted = try await agent.act(#"{"message":"Hints"}"#)
                #expect(hinted.reply["result"]?["message"]?["content"]?.stringValue == "Early hints", "\(hinted.reply)")

                // The role chunk, then the server closes: nothing reached the client, so it is retried.
                let before = fake.chatRequests.count
                fake.enqueue(FakeResponse.chatStream(["never"]).closingConnection(afterChunks: 1))
                let retried = try await agent.act(#"{"message":"Again"}"#)
                #expect(retried.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Again", "\(retried.reply)")
                #expect(fake.chatRequests.count - before == 2)

                // The model is not found: the fallback answers.
                let fallback = try await agent.act(#"{"message":"Fall back","model":"fake-404"}"#)
                let result = try #require(fallback.reply["result"], "\(fallback.reply)")
                #expect(result["message"]?["content"]?.stringValue == "Echo: Fall back", "\(result)")
                #expect(fake.chatRequests.last?.json["model"]?.stringValue == "gpt-4o-fallback", "\(fake.chatRequests.last?.bodyText ?? "")")
                let stored = try await agent.result("v2.chats.messages.get", #"{"id":"\#(result["message"]?["id"]?.stringValue ?? "")"}"#)
                #expect(stored["generation"]?["model"]?.stringValue == "gpt-4o-fallback", "\(stored)")

                // A model that refuses max_tokens: retried once with max_completion_tokens, then remembered.
                let drift = try await agent.act(#"{"message":"Reason","model":"fake-reasoning","maxTokens":50}"#)
                #expect(drift.reply["result"]?["message"]?["content"]?.stringValue == "Echo: Reason", "\(drift.reply)")
                let last = fake.chatRequests.last?.json
                #expect(last?["max_tokens"] == nil && last?["max_completion_tokens"]?.intValue == 50, "\(String(describing: last))")
                let count = fake.chatRequests.count
                _ = try await agent.act(#"{"message":"Reason again","model":"fake-reasoning","maxTokens":50}"#)
                #expect(fake.chatRequests.count == count + 1, "learnt: one request")
            }
        }
    }

    @Test("two runs streaming at once on one connection: each run's deltas carry its id, in order; one held does not delay the other")
    func concurrentRuns() async throws {
        try await withFakeProviderInProcess { fake in
            try await withAgentDaemon(environment: fake.openAIEnvironment()) { daemon in
                let agent = InProcessConnection(try await daemon.connect())
                fake.enqueue(FakeResponse.chatStream(["Slow ", "one"]).gating(chunk: 2, on: "slow"))
                let slow = try await agent.send("v2.agent.act", #"{"message":"Slow"}"#)
                let slowDelta = try #require(try await agent.deltas(1).first)
                let fast = try await agent.send("v2.agent.act", #"{"message":"Fast one"}"#)
                let (fastReply, fastNotes) = try await agent.reply(to: fast)
                #expect(fastReply["result"]?["message"]?["content"]?.stringValue == "Echo: Fast one", "\(fastReply)")
                let fastRun = fastReply["result"]?["runId"]
                let fastDeltas = fastNotes.compactMap { $0["params"] }.filter { $0["runId"] == fastRun }
                #expect(fastDeltas.map { $0["seq"]?.intValue } == [1, 2, 3], "\(fastNotes)")
                fake.openGate("slow")
                let (slowReply, slowNotes) = try await agent.reply(to: slow)
                #expect(slowReply["result"]?["message"]?["content"]?.stringValue == "Slow one", "\(slowReply)")
                #expect(slowReply["result"]?["runId"] == slowDelta["runId"])
                let rest = slowNotes.compactMap { $0["params"] }
                #expect(rest.map { $0["seq"]?.intValue } == [2] && rest.allSatisfy { $0["runId"] == slowDelta["runId"] }, "\(slowNotes)")
            }
        }
    }
}

/// Live: a reload is a signal to the process, and stopping mid-stream needs SIGTERM, SIGKILL and
/// the restart that finds the interrupted run in the database file.
extension AgentEndToEndLiveTests {
    @Test("SIGHUP reloads [llm]: the next run uses the new model; a run streaming meanwhile finishes on the old provider")
    func reloadSettings() async throws {
        try await withFakeProvider { fake in
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            let file = folder.path + "/agentd.toml"
            func write(model: String) throws {
                let toml = """
                    [llm]
                    provider = "openai"
                    base_url = "\(fake.baseURL)/v1"
                    model = "\(model)"
                    """
                try toml.write(toFile: file, atomically: true, encoding: .utf8)
            }
            try write(model: "model-before")
            try withDaemon(["--config", file], environment: fake.environment(["AGENTD_LLM_API_KEY": FakeProvider.apiKey])) { daemon in
                let agent = try ClientConnection(daemon.connect())
                let other = try ClientConnection(daemon.connect())
                fake.enqueue(FakeResponse.chatStream(["Old ", "provider"]).gating(chunk: 2, on: "after-reload"))
                let id = try agent.send("v2.agent.act", #"{"message":"Before"}"#)
                _ = try agent.deltas(1)
                try write(model: "model-after")
                daemon.signal(SIGHUP)
                try daemon.waitForLog(containing: "configuration reloaded")
                let after = try other.act(#"{"message":"After"}"#)
                #expect(after.reply["result"]?["message"]?["content"]?.stringValue == "Echo: After", "\(after.reply)")
                #expect(fake.chatRequests.last?.json["model"]?.stringValue == "model-after")
                fake.openGate("after-reload")
                let (reply, _) = try agent.reply(to: id)
                #expect(reply["result"]?["message"]?["content"]?.stringValue == "Old provider", "\(reply)")
                #expect(fake.chatRequests.first?.json["model"]?.stringValue == "model-before")
            }
        }
    }

    @Test(
        "stopping mid-stream: SIGTERM past the drain cuts the run (stored cancelled, the transfer closed); after SIGKILL the restart marks it failed (interrupted)"
    )
    func stopMidStream() async throws {
        try await withFakeProvider { fake in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let arguments = ["--database", "\(directory.path)/agentd.sqlite", "--drain-timeout-ms", "200"]
            let socket = "\(directory.path)/agentd.sock"
            let environment = fake.openAIEnvironment()

            var runIDs: [String] = []
            for (index, stop) in [SIGTERM, SIGKILL].enumerated() {
                let daemon = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
                defer { daemon.kill() }
                let agent = try ClientConnection(daemon.connect())
                fake.enqueue(FakeResponse.chatStream(["Half ", "never"]).gating(chunk: 2, on: "never"))
                let id = try agent.send("v2.agent.act", #"{"message":"Stop \#(index)"}"#)
                let delta = try #require(try agent.deltas(1).first)
                runIDs.append(try #require(delta["runId"]?.stringValue))
                daemon.signal(stop)
                if stop == SIGTERM {
                    let (reply, _) = try agent.reply(to: id)
                    #expect(reply.errorCode == -32002, "\(reply)")
                    #expect(try daemon.waitForExit(timeout: .seconds(20)) == .exited(0))
                } else {
                    _ = try daemon.waitForExit(timeout: .seconds(20))
                }
                #expect(fake.waitForClientClose(requestIndex: index), "the transfer closed when the daemon stopped")
            }

            let restarted = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
            defer { restarted.kill() }
            let client = try ClientConnection(restarted.connect())
            let stopped = try client.result("v2.agent.runs.get", #"{"runId":"\#(runIDs[0])"}"#)
            #expect(stopped["status"]?.stringValue == "cancelled" && stopped["finishReason"]?.stringValue == "cancelled", "\(stopped)")
            let partial = try client.result("v2.chats.messages.get", #"{"id":"\#(stopped["assistantMessageId"]?.stringValue ?? "")"}"#)
            #expect(partial["content"]?.stringValue == "Half ", "\(partial)")
            let killed = try client.result("v2.agent.runs.get", #"{"runId":"\#(runIDs[1])"}"#)
            #expect(killed["status"]?.stringValue == "failed" && killed["error"]?["kind"]?.stringValue == "interrupted", "\(killed)")
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
