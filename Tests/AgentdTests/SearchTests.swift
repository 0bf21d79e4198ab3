import Foundation
import Testing

/// `search.query` over the socket, with the real binary. The test process's uid is the daemon's own,
/// so a fresh connection acts as its linked account.
@Suite("Search over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct SearchTests {
    static func ids(_ reply: JSON) -> [String] {
        (reply["result"]?["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
    }

    @Test("modules made over RPC are found best first with highlighted snippets; another user finds none of them")
    func modules() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            var created: [String: String] = [:]
            for (index, (title, content)) in [
                ("Groceries", "milk eggs bread"), ("Travel", "train tickets"),
                ("Weekly notes", "We talked about concurrency, then lunch."), ("Concurrency", "Actors and tasks."),
            ].enumerated() {
                let reply = try AuthTests.call(client, id: index + 1, "modules.create", #"{"title":"\#(title)","content":"\#(content)"}"#)
                created[title] = try #require(reply["result"]?["id"]?.stringValue, "reply: \(reply)")
            }

            let found = try AuthTests.call(client, id: 10, "search.query", #"{"query":"concurrency"}"#)
            #expect(Self.ids(found) == [created["Concurrency"], created["Weekly notes"]].compactMap { $0 }, "reply: \(found)")
            #expect(found["result"]?["items"]?[0] == JSON.object([
                "kind": .string("module"), "id": .string(created["Concurrency"] ?? ""), "title": .string("Concurrency"),
                "snippet": .string("⟦Concurrency⟧"),
            ]), "reply: \(found)")
            #expect(found["result"]?["items"]?[1]?["snippet"]?.stringValue == "We talked about ⟦concurrency⟧, then lunch.", "reply: \(found)")

            // Type-ahead, query syntax as plain text, a limit, only messages (there are none).
            let typed = try AuthTests.call(client, id: 11, "search.query", #"{"query":"\"concur","kinds":["modules"],"limit":1}"#)
            #expect(Self.ids(typed) == [created["Concurrency"]].compactMap { $0 }, "reply: \(typed)")
            let messages = try AuthTests.call(client, id: 12, "search.query", #"{"query":"concurrency","kinds":["messages"]}"#)
            #expect(messages["result"]?["items"] == .array([]), "reply: \(messages)")

            for (index, (params, field)) in [
                (#"{"query":"  "}"#, "query"), (#"{"query":"x","kinds":["modules","files"]}"#, "kinds[1]"),
                (#"{"query":"x","kinds":[]}"#, "kinds"), (#"{"query":"x","limit":101}"#, "limit"), (#"{}"#, "query"),
                (#"{"query":"x","sort":"date"}"#, "sort"),
            ].enumerated() {
                let reply = try AuthTests.call(client, id: 20 + index, "search.query", params)
                #expect(reply.errorCode == -32602, "\(params): \(reply)")
                #expect(reply["error"]?["data"]?["field"]?.stringValue == field, "\(params): \(reply)")
            }

            // Another user, on a second connection, with a module of their own.
            let other = try daemon.connect()
            let registered = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(registered["result"] != nil, "reply: \(registered)")
            let login = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            let theirs = try AuthTests.call(other, id: 3, "modules.create", #"{"title":"Concurrency too","content":"concurrency"}"#)
            let theirID = try #require(theirs["result"]?["id"]?.stringValue, "reply: \(theirs)")
            let theirSearch = try AuthTests.call(other, id: 4, "search.query", #"{"query":"concurrency","limit":100}"#)
            #expect(Self.ids(theirSearch) == [theirID], "reply: \(theirSearch)")
            let mine = try AuthTests.call(client, id: 30, "search.query", #"{"query":"concurrency","limit":100}"#)
            #expect(!Self.ids(mine).contains(theirID), "reply: \(mine)")
            #expect(Self.ids(mine).count == 2, "reply: \(mine)")

            // A deleted module is gone from the results.
            let deleted = try AuthTests.call(client, id: 31, "modules.delete", #"{"id":"\#(created["Concurrency"] ?? "")"}"#)
            #expect(deleted["result"]?["deleted"] == .bool(true), "reply: \(deleted)")
            let after = try AuthTests.call(client, id: 32, "search.query", #"{"query":"concurrency"}"#)
            #expect(Self.ids(after) == [created["Weekly notes"]].compactMap { $0 }, "reply: \(after)")
        }
    }

    /// Messages have no RPC method to create them in this branch: this test writes a chat and its
    /// messages into the daemon's database file with SQL from the test process (WAL: the daemon
    /// sees the commit on its next read), the same rows the chats service will write.
    @Test("messages appended over RPC are found with their chat; another user's are not")
    func messages() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let other = try daemon.connect()
            _ = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let login = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            let module = try AuthTests.call(client, id: 2, "modules.create", #"{"title":"Lighthouse","content":"keeper's log"}"#)
            let moduleID = try #require(module["result"]?["id"]?.stringValue, "reply: \(module)")

            var messageIDs: [String] = []
            for (connection, moduleParam) in [(client, #","moduleId":"\#(moduleID)""#), (other, "")] {
                let chat = try AuthTests.call(connection, id: 3, "chats.create", #"{"title":"Night shift"\#(moduleParam)}"#)
                let chatID = try #require(chat["result"]?["id"]?.stringValue, "reply: \(chat)")
                let message = try AuthTests.call(
                    connection, id: 4, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"assistant","content":"the lighthouse lamp is lit"}"#)
                messageIDs.append(try #require(message["result"]?["id"]?.stringValue, "reply: \(message)"))
            }
            let mine = messageIDs[0]
            let found = try AuthTests.call(client, id: 5, "search.query", #"{"query":"lighthouse"}"#)
            #expect(Set(Self.ids(found)) == [moduleID, mine], "reply: \(found)")
            let hit = try #require(found["result"]?["items"]?.arrayValue?.first { $0["id"]?.stringValue == mine }, "reply: \(found)")
            #expect(hit["kind"]?.stringValue == "message" && hit["moduleId"]?.stringValue == moduleID, "reply: \(found)")
            #expect(hit["role"]?.stringValue == "assistant" && hit["title"]?.stringValue == "Night shift", "reply: \(found)")
            #expect(hit["snippet"]?.stringValue == "the ⟦lighthouse⟧ lamp is lit", "reply: \(found)")
            let onlyMessages = try AuthTests.call(client, id: 6, "search.query", #"{"query":"lamp","kinds":["messages"]}"#)
            #expect(Self.ids(onlyMessages) == [mine], "reply: \(onlyMessages)")
            let theirs = try AuthTests.call(other, id: 7, "search.query", #"{"query":"lighthouse"}"#)
            #expect(Self.ids(theirs) == [messageIDs[1]], "reply: \(theirs)")
        }
    }
}

extension SearchTests {
    @Test("the README's Search example: search.query with socat answers the best hit with its snippet")
    func readmeExample() throws {
        try DiscoveryTests.requireSocat()
        try withDaemon { daemon in
            let client = try daemon.connect()
            let created = try AuthTests.call(client, id: 1, "modules.create", #"{"title":"Deploy checklist","content":"Roll out on Monday, after the backup."}"#)
            #expect(created["result"] != nil, "reply: \(created)")
            let stdout = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":1,"method":"search.query","params":{"query":"backup monday"}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##,
                daemon: daemon)
            let items = try #require(try JSON(parsing: stdout)["result"]?["items"]?.arrayValue, "stdout: \(stdout)")
            #expect(items.count == 1, "stdout: \(stdout)")
            #expect(items.first?["title"]?.stringValue == "Deploy checklist", "stdout: \(stdout)")
            #expect(items.first?["snippet"]?.stringValue == "Roll out on ⟦Monday⟧, after the ⟦backup⟧.", "stdout: \(stdout)")
        }
    }
}
