import Foundation
import GRDB
import Testing

/// `search.query` over the socket, with the real binary. The test process's uid is the daemon's own,
/// so a fresh connection acts as its linked account.
@Suite("Search over the socket", .timeLimit(.minutes(2)))
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
    @Test("messages written to the daemon's database are found with their chat; another user's are not")
    func messagesWrittenToTheDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let databasePath = "\(directory.path)/agentd.sqlite"
        try withDaemon(["--database", databasePath]) { daemon in
            let client = try daemon.connect()
            let whoami = try AuthTests.call(client, id: 1, "auth.whoami")
            let userID = try #require(whoami["result"]?["id"]?.stringValue, "reply: \(whoami)")
            let other = try daemon.connect()
            let registered = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            let otherID = try #require(registered["result"]?["id"]?.stringValue, "reply: \(registered)")
            let module = try AuthTests.call(client, id: 2, "modules.create", #"{"title":"Lighthouse","content":"keeper's log"}"#)
            let moduleID = try #require(module["result"]?["id"]?.stringValue, "reply: \(module)")

            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            let database = try DatabaseQueue(path: databasePath, configuration: configuration)
            try database.write { db in
                let now = "2027-01-15T08:00:00.000Z"
                for (chat, owner, module) in [("cht_mine", userID, moduleID as String?), ("cht_theirs", otherID, nil)] {
                    try db.execute(
                        sql: "INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at) VALUES (?, ?, ?, 'Night shift', ?, ?)",
                        arguments: [chat, owner, module, now, now])
                    try db.execute(
                        sql: "INSERT INTO messages (id, chat_id, user_id, role, content, depth, created_at) VALUES (?, ?, ?, 'assistant', 'the lighthouse lamp is lit', 1, ?)",
                        arguments: ["msg_" + chat, chat, owner, now])
                }
            }
            try database.close()

            let found = try AuthTests.call(client, id: 3, "search.query", #"{"query":"lighthouse"}"#)
            #expect(Set(Self.ids(found)) == [moduleID, "msg_cht_mine"], "reply: \(found)")
            let hit = try #require(found["result"]?["items"]?.arrayValue?.first { $0["id"]?.stringValue == "msg_cht_mine" }, "reply: \(found)")
            #expect(hit == JSON.object([
                "kind": .string("message"), "id": .string("msg_cht_mine"), "chatId": .string("cht_mine"), "moduleId": .string(moduleID),
                "role": .string("assistant"), "title": .string("Night shift"), "snippet": .string("the ⟦lighthouse⟧ lamp is lit"),
            ]), "reply: \(found)")
            let onlyMessages = try AuthTests.call(client, id: 4, "search.query", #"{"query":"lamp","kinds":["messages"]}"#)
            #expect(Self.ids(onlyMessages) == ["msg_cht_mine"], "reply: \(onlyMessages)")
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
