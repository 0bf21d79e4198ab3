import Foundation
import Testing

/// The agent methods over the socket, with the real binary and no provider configured (the
/// end-to-end provider tests need the fake HTTP server). The test process's uid is the daemon's own,
/// so a fresh connection already acts as its linked account.
@Suite("Agent over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct AgentTests {
    @Test("agent.act without a provider answers -32050 naming the missing settings; the question is stored, the run failed; also without a handshake")
    func notConfigured() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let act = try AuthTests.call(client, id: 1, "v2.agent.act", #"{"message":"Hello there"}"#)
            #expect(act.errorCode == -32050, "reply: \(act)")
            let missing = act["error"]?["data"]?["missing"]?.arrayValue?.compactMap(\.stringValue) ?? []
            // Everything still to set at once: the key, and a default model (none is configured).
            #expect(missing.contains { $0.hasPrefix("llm.api_key") } && missing.contains { $0.hasPrefix("llm.model") }, "reply: \(act)")
            #expect(act["error"]?["data"]?["kind"]?.stringValue == "notConfigured", "reply: \(act)")

            let chats = try AuthTests.call(client, id: 2, "v2.chats.list")
            let chat = try #require(chats["result"]?["items"]?.arrayValue?.first, "reply: \(chats)")
            #expect(chat["title"]?.stringValue == "Hello there", "chat: \(chat)")
            let chatID = try #require(chat["id"]?.stringValue)
            let messages = try AuthTests.call(client, id: 3, "v2.chats.messages.list", #"{"chatId":"\#(chatID)"}"#)
            #expect(messages["result"]?["items"]?.arrayValue?.map { $0["content"]?.stringValue } == ["Hello there"], "reply: \(messages)")

            let runs = try AuthTests.call(client, id: 4, "v2.agent.runs.list", #"{"chatId":"\#(chatID)"}"#)
            let run = try #require(runs["result"]?["items"]?.arrayValue?.first, "reply: \(runs)")
            #expect(run["status"]?.stringValue == "failed" && run["error"]?["kind"]?.stringValue == "notConfigured", "run: \(run)")
            let runID = try #require(run["id"]?.stringValue)
            let got = try AuthTests.call(client, id: 5, "v2.agent.runs.get", #"{"runId":"\#(runID)"}"#)
            #expect(got["result"] == run, "reply: \(got)")

            // Without a handshake (version 1) too: an added method is in every version.
            let v1 = try AuthTests.call(client, id: 6, "agent.act", #"{"message":"x"}"#)
            #expect(v1.errorCode == -32050, "reply: \(v1)")
            let webSearch = try AuthTests.call(client, id: 7, "v2.agent.act", #"{"chatId":"\#(chatID)","message":"Search","webSearch":true}"#)
            #expect(webSearch.errorCode == -32050, "reply: \(webSearch)")
        }
    }

    @Test("another user's run answers agent.runs.get and agent.cancel exactly like a missing one")
    func isolation() throws {
        try withDaemon { daemon in
            let owner = try daemon.connect()
            _ = try AuthTests.call(owner, id: 1, "v2.agent.act", #"{"message":"Mine"}"#)
            let runs = try AuthTests.call(owner, id: 2, "v2.agent.runs.list")
            let runID = try #require(runs["result"]?["items"]?.arrayValue?.first?["id"]?.stringValue, "reply: \(runs)")

            let intruder = try daemon.connect()
            _ = try AuthTests.call(intruder, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let login = try AuthTests.call(intruder, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            for method in ["v2.agent.runs.get", "v2.agent.cancel"] {
                let theirs = try AuthTests.call(intruder, id: 3, method, #"{"runId":"\#(runID)"}"#)
                let missing = try AuthTests.call(intruder, id: 3, method, #"{"runId":"run_missing"}"#)
                #expect(theirs.errorCode == -32030, "reply: \(theirs)")
                #expect(theirs["error"]?["data"]?["kind"] == missing["error"]?["data"]?["kind"], "\(theirs) vs \(missing)")
            }
            let list = try AuthTests.call(intruder, id: 4, "v2.agent.runs.list")
            #expect(list["result"]?["items"]?.arrayValue?.isEmpty == true, "reply: \(list)")
        }
    }
}
