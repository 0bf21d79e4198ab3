import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The agent methods through the daemon's router and middleware, in process (`InProcessDaemon`),
/// with no provider configured (the end-to-end provider tests need the fake HTTP server). A
/// connection from the test's own uid already acts as its linked account, as over the socket.
@Suite("Agent (in process, no provider)", .timeLimit(.minutes(2)))
struct AgentTests {
    @Test("agent.act without a provider answers -32050 naming the missing settings; the question is stored, the run failed; also without a handshake")
    func notConfigured() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let act = await #expect(throws: RPCError.self) { try await client.call("v2.agent.act", #"{"message":"Hello there"}"#) }
            #expect(act?.code.rawValue == -32050, "\(String(describing: act))")
            let missing = act?.dataValue?["missing"]?.arrayValue?.compactMap(\.stringValue) ?? []
            // Everything still to set at once: the key, and a default model (none is configured).
            #expect(missing.contains { $0.hasPrefix("llm.api_key") } && missing.contains { $0.hasPrefix("llm.model") }, "\(String(describing: act))")
            #expect(act?.dataValue?["kind"]?.stringValue == "notConfigured", "\(String(describing: act))")

            let chats = try await client.call("v2.chats.list").decode(JSONValue.self)
            let chat = try #require(chats["items"]?.arrayValue?.first, "reply: \(chats)")
            #expect(chat["title"]?.stringValue == "Hello there", "chat: \(chat)")
            let chatID = try #require(chat["id"]?.stringValue)
            let messages = try await client.call("v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#).decode(JSONValue.self)
            #expect(messages["items"]?.arrayValue?.map { $0["content"]?.stringValue } == ["Hello there"], "reply: \(messages)")

            let runs = try await client.call("v2.agent.runs.list", #"{"chatId":"\#(chatID)"}"#).decode(JSONValue.self)
            let run = try #require(runs["items"]?.arrayValue?.first, "reply: \(runs)")
            #expect(run["status"]?.stringValue == "failed" && run["error"]?["kind"]?.stringValue == "notConfigured", "run: \(run)")
            let runID = try #require(run["id"]?.stringValue)
            let got = try await client.call("v2.agent.runs.get", #"{"runId":"\#(runID)"}"#).decode(JSONValue.self)
            #expect(got == run, "reply: \(got)")
            // The typed view agrees.
            let typed = try await client.send(Agent.Runs.Get.self, .init(runId: runID))
            #expect(typed.status == .failed && typed.chatId == chatID, "\(typed)")

            // Without a handshake (version 1) too: an added method is in every version.
            let v1 = await #expect(throws: RPCError.self) { try await client.send(Agent.Act.self, .init(message: "x")) }
            #expect(v1?.code.rawValue == -32050, "\(String(describing: v1))")
            let webSearch = await #expect(throws: RPCError.self) {
                try await client.call("v2.agent.act", #"{"chatId":"\#(chatID)","message":"Search","webSearch":true}"#)
            }
            #expect(webSearch?.code.rawValue == -32050, "\(String(describing: webSearch))")
        }
    }

    @Test("another user's run answers agent.runs.get and agent.cancel exactly like a missing one")
    func isolation() async throws {
        try await withInProcessDaemon { daemon in
            let owner = try await daemon.connect()
            _ = try? await owner.call("v2.agent.act", #"{"message":"Mine"}"#)
            let runs = try await owner.call("v2.agent.runs.list").decode(JSONValue.self)
            let runID = try #require(runs["items"]?.arrayValue?.first?["id"]?.stringValue, "reply: \(runs)")

            let intruder = try await daemon.connect()
            _ = try await intruder.call("auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let login = try await intruder.call("auth.login", #"{"username":"mallory","password":"correct horse"}"#).decode(JSONValue.self)
            #expect(login["token"] != nil, "reply: \(login)")
            for method in ["v2.agent.runs.get", "v2.agent.cancel"] {
                let theirs = await #expect(throws: RPCError.self) { try await intruder.call(method, #"{"runId":"\#(runID)"}"#) }
                let missing = await #expect(throws: RPCError.self) { try await intruder.call(method, #"{"runId":"run_missing"}"#) }
                #expect(theirs?.code.rawValue == -32030, "\(String(describing: theirs))")
                #expect(theirs?.dataValue?["kind"] == missing?.dataValue?["kind"], "\(String(describing: theirs)) vs \(String(describing: missing))")
            }
            let list = try await intruder.send(Agent.Runs.List.self, .init())
            #expect(list.items.isEmpty, "\(list)")
        }
    }
}
