import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The chats methods through the daemon's router and middleware in process (`InProcessDaemon`). The
/// test's uid is the daemon's own, so a fresh connection already acts as its linked account.
/// Crash consistency (kill -9, restart) is the real binary's: `ChatsTests.Crash`.
@Suite("Chats", .timeLimit(.minutes(2)))
struct ChatsTests {
    /// A live reply's result (also used by other live suites).
    static func result(_ reply: JSON, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        try #require(reply["result"], "reply: \(reply)", sourceLocation: sourceLocation)
    }

    @Test("create, append, get, list, messages.list/get, regenerate + branches.select, fork, export, rename, delete")
    func lifecycle() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let module = try await client.send(Modules.Create.self, .init(title: "Project"))
            let chat = try await client.send(Chats.Create.self, .init(moduleId: module.id, title: "Design"))
            let chatID = chat.id
            #expect(chat.messageCount == 0, "chat: \(chat)")

            // Raw, so that messages.get's reply is compared with append's member for member.
            let question = try await client.call("chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"Why WAL?"}"#).decode(
                JSONValue.self)
            let questionID = try #require(question["id"]?.stringValue)
            let answer = try await client.send(Chats.Messages.Append.self, .init(chatId: chatID, role: .assistant, content: "Readers never block."))
            #expect(answer.parentId == questionID, "answer: \(answer)")
            let answerID = answer.id

            let got = try await client.send(Chats.Get.self, .init(id: chatID))
            #expect(got.messageCount == 2, "chat: \(got)")
            #expect(got.lastMessage?.text == "Readers never block.", "chat: \(got)")
            #expect(got.lastMessage?.role == .assistant, "chat: \(got)")

            let listed = try await client.send(Chats.List.self, .init(moduleId: module.id))
            #expect(listed.items.map(\.id) == [chatID], "list: \(listed)")

            let branch = try await client.send(Chats.Messages.List.self, .init(chatId: chatID))
            #expect(branch.items.map(\.content) == ["Why WAL?", "Readers never block."], "branch: \(branch)")
            let message = try await client.call("chats.messages.get", #"{"id":"\#(questionID)"}"#).decode(JSONValue.self)
            #expect(message == question, "message: \(message)")

            // Regenerate the answer: a sibling, active; then select the first answer again.
            let again = try await client.send(
                Chats.Messages.Append.self, .init(chatId: chatID, role: .assistant, content: "Crash safety.", siblingOf: answerID))
            #expect(again.parentId == questionID)
            let selected = try await client.send(Chats.Branches.Select.self, .init(messageId: answerID))
            #expect(selected.activeMessageId == answerID, "chat: \(selected)")

            let fork = try await client.send(Chats.Fork.self, .init(messageId: questionID))
            #expect(fork.title == "Design (fork)", "fork: \(fork)")
            #expect(fork.messageCount == 1, "fork: \(fork)")

            let markdown = try await client.send(Chats.Export.self, .init(chatId: chatID, format: .markdown))
            let text = markdown.content
            #expect(text.contains("Readers never block.") && !text.contains("Crash safety."), "markdown: \(text)")
            let json = try await client.send(Chats.Export.self, .init(chatId: chatID, format: .json))
            let document = try JSONDecoder().decode(JSONValue.self, from: Data(json.content.utf8))
            #expect(document["messages"]?.arrayValue?.count == 3, "json: \(document)")
            // Values the typed params cannot hold: raw.
            let badFormat = await #expect(throws: RPCError.self) {
                try await client.call("chats.export", #"{"chatId":"\#(chatID)","format":"pdf"}"#)
            }
            #expect(badFormat?.code == .invalidParams, "\(String(describing: badFormat))")
            let badRole = await #expect(throws: RPCError.self) {
                try await client.call("chats.messages.append", #"{"chatId":"\#(chatID)","role":"tool","content":"x"}"#)
            }
            #expect(badRole?.code == .invalidParams, "\(String(describing: badRole))")

            let renamed = try await client.send(Chats.Rename.self, .init(id: chatID, title: "Storage design"))
            #expect(renamed.title == "Storage design")
            let deleted = try await client.send(Chats.Delete.self, .init(id: chatID))
            #expect(deleted.deleted)
            let gone = await #expect(throws: RPCError.self) { try await client.send(Chats.Messages.Get.self, .init(id: questionID)) }
            #expect(gone?.code.rawValue == -32030, "\(String(describing: gone))")
            #expect(gone?.dataValue?["kind"]?.stringValue == "message", "\(String(describing: gone))")
        }
    }
}

extension ChatsTests {
    /// Crash consistency needs a process to kill: the real binary, its database file and a restart.
    @Suite("Chats: crash consistency on the real binary", .blockingIO, .timeLimit(.minutes(2)))
    struct Crash {
        @Test("appends acknowledged before a kill -9 are all there after a restart, as one unbroken chain")
        func acknowledgedAppendsSurviveKill() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let database = "\(directory.path)/agentd.sqlite"
            let socket = "\(directory.path)/agentd.sock"
            var acknowledged: Set<String> = []
            let chatID: String
            do {
                let daemon = try DaemonProcess(socketPath: socket, arguments: ["--database", database])
                defer { daemon.kill() }
                let setup = try daemon.connect()
                chatID = try #require(try ChatsTests.result(try AuthTests.call(setup, id: 1, "chats.create", "{}"))["id"]?.stringValue)
                // Four connections pipeline 400 appends each; kill -9 once 300 are acknowledged, with
                // the rest in flight.
                let clients = try (0..<4).map { _ in try daemon.connect() }
                for (index, client) in clients.enumerated() {
                    var burst = ""
                    for n in 0..<400 {
                        burst +=
                            #"{"jsonrpc":"2.0","id":\#(n),"method":"chats.messages.append","params":{"chatId":"\#(chatID)","role":"user","content":"c\#(index)-\#(n)"}}"#
                            + "\n"
                    }
                    try client.send(raw: burst)
                }
                var next = 0
                while acknowledged.count < 300 {
                    let reply = try clients[next % 4].readJSON()
                    next += 1
                    let id = try #require(reply["result"]?["id"]?.stringValue, "reply: \(reply)")
                    acknowledged.insert(id)
                }
                daemon.kill()
            }

            let restarted = try DaemonProcess(socketPath: socket, arguments: ["--database", database])
            defer { restarted.kill() }
            let client = try restarted.connect()
            let chat = try ChatsTests.result(try AuthTests.call(client, id: 1, "chats.get", #"{"id":"\#(chatID)"}"#))
            var items: [JSON] = []
            var cursor = ""
            for page in 2... {
                let params = cursor.isEmpty ? #"{"chatId":"\#(chatID)","limit":500}"# : #"{"chatId":"\#(chatID)","limit":500,"cursor":"\#(cursor)"}"#
                let branch = try ChatsTests.result(try AuthTests.call(client, id: page, "chats.messages.list", params))
                items += try #require(branch["items"]?.arrayValue)
                guard let next = branch["nextCursor"]?.stringValue else { break }
                cursor = next
            }
            let stored = Set(items.compactMap { $0["id"]?.stringValue })
            #expect(acknowledged.subtracting(stored).count == 0, "acknowledged appends lost")
            #expect(items.count >= 300 && items.count <= 1600)
            #expect(chat["messageCount"] == .integer(Int64(items.count)), "chat: \(chat)")
            // One chain, no hole: depths 1…n, each message's parent the one before it.
            #expect(items.map { $0["depth"]?.intValue } == Array(1...items.count))
            for (parent, child) in zip(items, items.dropFirst()) {
                #expect(child["parentId"] == parent["id"])
            }
        }
    }
}
