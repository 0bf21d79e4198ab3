import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// `search.query` through the daemon's router and middleware, in process (`InProcessDaemon`). A
/// connection from the test's own uid acts as its linked account, as over the socket.
@Suite("Search (in process, and the README example on the binary)", .blockingIO, .timeLimit(.minutes(2)))
struct SearchTests {
    static func ids(_ results: SearchService.Results) -> [String] { results.items.map(\.id) }

    /// Logs `connection` in as a new account, checking each step.
    static func registerAndLogin(_ connection: InProcessClient, username: String) async throws {
        let credentials = Auth.Credentials(username: username, password: "correct horse")
        let registered = try await connection.send(Auth.Register.self, credentials)
        #expect(registered.username == username)
        let login = try await connection.send(Auth.Login.self, credentials)
        #expect(!login.token.isEmpty)
    }

    @Test("modules made over RPC are found best first with highlighted snippets; another user finds none of them")
    func modules() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            var created: [String: String] = [:]
            for (title, content) in [
                ("Groceries", "milk eggs bread"), ("Travel", "train tickets"),
                ("Weekly notes", "We talked about concurrency, then lunch."), ("Concurrency", "Actors and tasks."),
            ] {
                created[title] = try await client.send(Modules.Create.self, .init(title: title, content: content)).id
            }

            // Raw here: the first hit is compared member for member (a module's hit has no chatId,
            // moduleId or role at all, not even null).
            let found = try await client.call("search.query", #"{"query":"concurrency"}"#).decode(JSONValue.self)
            let foundIDs = found["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
            #expect(foundIDs == [created["Concurrency"], created["Weekly notes"]].compactMap { $0 }, "\(found)")
            #expect(
                found["items"]?.arrayValue?.first
                    == JSONValue.object([
                        "kind": .string("module"), "id": .string(created["Concurrency"] ?? ""), "title": .string("Concurrency"),
                        "snippet": .string("⟦Concurrency⟧"),
                    ]), "\(found)")
            #expect(
                found["items"]?.arrayValue?.dropFirst().first?["snippet"]?.stringValue
                    == "We talked about ⟦concurrency⟧, then lunch.", "\(found)")

            // Type-ahead, query syntax as plain text, a limit, only messages (there are none).
            let typed = try await client.send(Search.Query.self, .init(query: "\"concur", kinds: [.modules], limit: 1))
            #expect(Self.ids(typed) == [created["Concurrency"]].compactMap { $0 })
            let messages = try await client.send(Search.Query.self, .init(query: "concurrency", kinds: [.messages]))
            #expect(messages.items.isEmpty)

            // Raw params: most of these cannot be written with the typed params.
            for (params, field) in [
                (#"{"query":"  "}"#, "query"), (#"{"query":"x","kinds":["modules","chats"]}"#, "kinds[1]"),
                (#"{"query":"x","kinds":[]}"#, "kinds"), (#"{"query":"x","limit":101}"#, "limit"), (#"{}"#, "query"),
                (#"{"query":"x","sort":"date"}"#, "sort"),
            ] {
                let error = await #expect(throws: RPCError.self, "\(params)") { try await client.call("search.query", params) }
                #expect(error?.code == .invalidParams, "\(params): \(String(describing: error))")
                #expect(error?.dataValue?["field"]?.stringValue == field, "\(params): \(String(describing: error))")
            }

            // Another user, on a second connection, with a module of their own.
            let other = try await daemon.connect()
            try await Self.registerAndLogin(other, username: "mallory")
            let theirID = try await other.send(Modules.Create.self, .init(title: "Concurrency too", content: "concurrency")).id
            let theirSearch = try await other.send(Search.Query.self, .init(query: "concurrency", limit: 100))
            #expect(Self.ids(theirSearch) == [theirID])
            let mine = try await client.send(Search.Query.self, .init(query: "concurrency", limit: 100))
            #expect(!Self.ids(mine).contains(theirID))
            #expect(Self.ids(mine).count == 2)

            // A deleted module is gone from the results.
            let deleted = try await client.send(Modules.Delete.self, .init(id: created["Concurrency"] ?? ""))
            #expect(deleted.deleted)
            let after = try await client.send(Search.Query.self, .init(query: "concurrency"))
            #expect(Self.ids(after) == [created["Weekly notes"]].compactMap { $0 })
        }
    }

    @Test("messages appended over RPC are found with their chat; another user's are not")
    func messages() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let other = try await daemon.connect()
            try await Self.registerAndLogin(other, username: "mallory")
            let moduleID = try await client.send(Modules.Create.self, .init(title: "Lighthouse", content: "keeper's log")).id

            var messageIDs: [String] = []
            for (connection, module) in [(client, moduleID), (other, nil)] {
                let chat = try await connection.send(Chats.Create.self, .init(moduleId: module, title: "Night shift"))
                let message = try await connection.send(
                    Chats.Messages.Append.self, .init(chatId: chat.id, role: .assistant, content: "the lighthouse lamp is lit"))
                messageIDs.append(message.id)
            }
            let mine = messageIDs[0]
            let found = try await client.send(Search.Query.self, .init(query: "lighthouse"))
            #expect(Set(Self.ids(found)) == [moduleID, mine])
            let hit = try #require(found.items.first { $0.id == mine }, "\(found)")
            #expect(hit.kind == .message && hit.moduleId == moduleID)
            #expect(hit.role == "assistant" && hit.title == "Night shift")
            #expect(hit.snippet == "the ⟦lighthouse⟧ lamp is lit")
            let onlyMessages = try await client.send(Search.Query.self, .init(query: "lamp", kinds: [.messages]))
            #expect(Self.ids(onlyMessages) == [mine])
            let theirs = try await other.send(Search.Query.self, .init(query: "lighthouse"))
            #expect(Self.ids(theirs) == [messageIDs[1]])
        }
    }
}

/// The README's example runs `socat` against the real binary: it checks the command as written.
extension SearchTests {
    @Test("the README's Search example: search.query with socat answers the best hit with its snippet")
    func readmeExample() throws {
        try DiscoveryTests.requireSocat()
        try withDaemon { daemon in
            let client = try daemon.connect()
            let created = try AuthTests.call(
                client, id: 1, "modules.create", #"{"title":"Deploy checklist","content":"Roll out on Monday, after the backup."}"#)
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
