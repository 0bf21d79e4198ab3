import Foundation
import Testing

/// The chats methods over the socket, with the real binary. The test process's uid is the daemon's
/// own, so a fresh connection already acts as its linked account.
@Suite("Chats over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct ChatsTests {
    static func result(_ reply: JSON, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        try #require(reply["result"], "reply: \(reply)", sourceLocation: sourceLocation)
    }

    @Test("create, append, get, list, messages.list/get, regenerate + branches.select, fork, export, rename, delete")
    func lifecycle() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let call = { (id: Int, method: String, params: String) in try AuthTests.call(client, id: id, method, params) }
            let module = try Self.result(try call(1, "modules.create", #"{"title":"Project"}"#))
            let moduleID = try #require(module["id"]?.stringValue)
            let chat = try Self.result(try call(2, "chats.create", #"{"moduleId":"\#(moduleID)","title":"Design"}"#))
            let chatID = try #require(chat["id"]?.stringValue)
            #expect(chat["messageCount"] == .integer(0), "chat: \(chat)")

            let question = try Self.result(try call(3, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"Why WAL?"}"#))
            let questionID = try #require(question["id"]?.stringValue)
            let answer = try Self.result(try call(4, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"assistant","content":"Readers never block."}"#))
            #expect(answer["parentId"]?.stringValue == questionID, "answer: \(answer)")
            let answerID = try #require(answer["id"]?.stringValue)

            let got = try Self.result(try call(5, "chats.get", #"{"id":"\#(chatID)"}"#))
            #expect(got["messageCount"] == .integer(2), "chat: \(got)")
            #expect(got["lastMessage"]?["text"]?.stringValue == "Readers never block.", "chat: \(got)")
            #expect(got["lastMessage"]?["role"]?.stringValue == "assistant", "chat: \(got)")

            let listed = try Self.result(try call(6, "chats.list", #"{"moduleId":"\#(moduleID)"}"#))
            #expect(listed["items"]?.arrayValue?.map { $0["id"]?.stringValue } == [chatID], "list: \(listed)")

            let branch = try Self.result(try call(7, "chats.messages.list", #"{"chatId":"\#(chatID)"}"#))
            #expect(branch["items"]?.arrayValue?.map { $0["content"]?.stringValue } == ["Why WAL?", "Readers never block."], "branch: \(branch)")
            let message = try Self.result(try call(8, "chats.messages.get", #"{"id":"\#(questionID)"}"#))
            #expect(message == question, "message: \(message)")

            // Regenerate the answer: a sibling, active; then select the first answer again.
            let again = try Self.result(try call(9, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"assistant","content":"Crash safety.","siblingOf":"\#(answerID)"}"#))
            #expect(again["parentId"]?.stringValue == questionID)
            let selected = try Self.result(try call(10, "chats.branches.select", #"{"messageId":"\#(answerID)"}"#))
            #expect(selected["activeMessageId"]?.stringValue == answerID, "chat: \(selected)")

            let fork = try Self.result(try call(11, "chats.fork", #"{"messageId":"\#(questionID)"}"#))
            #expect(fork["title"]?.stringValue == "Design (fork)", "fork: \(fork)")
            #expect(fork["messageCount"] == .integer(1), "fork: \(fork)")

            let markdown = try Self.result(try call(12, "chats.export", #"{"chatId":"\#(chatID)","format":"markdown"}"#))
            let text = try #require(markdown["content"]?.stringValue)
            #expect(text.contains("Readers never block.") && !text.contains("Crash safety."), "markdown: \(text)")
            let json = try Self.result(try call(13, "chats.export", #"{"chatId":"\#(chatID)","format":"json"}"#))
            let document = try JSON(parsing: try #require(json["content"]?.stringValue))
            #expect(document["messages"]?.arrayValue?.count == 3, "json: \(document)")
            let badFormat = try call(14, "chats.export", #"{"chatId":"\#(chatID)","format":"pdf"}"#)
            #expect(badFormat.errorCode == -32602, "reply: \(badFormat)")
            let badRole = try call(15, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"tool","content":"x"}"#)
            #expect(badRole.errorCode == -32602, "reply: \(badRole)")

            let renamed = try Self.result(try call(16, "chats.rename", #"{"id":"\#(chatID)","title":"Storage design"}"#))
            #expect(renamed["title"]?.stringValue == "Storage design")
            let deleted = try Self.result(try call(17, "chats.delete", #"{"id":"\#(chatID)"}"#))
            #expect(deleted["deleted"] == .bool(true))
            let gone = try call(18, "chats.messages.get", #"{"id":"\#(questionID)"}"#)
            #expect(gone.errorCode == -32030, "reply: \(gone)")
            #expect(gone["error"]?["data"]?["kind"]?.stringValue == "message", "reply: \(gone)")
        }
    }

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
            chatID = try #require(try Self.result(try AuthTests.call(setup, id: 1, "chats.create", "{}"))["id"]?.stringValue)
            // Four connections pipeline 400 appends each; kill -9 once 300 are acknowledged, with
            // the rest in flight.
            let clients = try (0..<4).map { _ in try daemon.connect() }
            for (index, client) in clients.enumerated() {
                var burst = ""
                for n in 0..<400 {
                    burst += #"{"jsonrpc":"2.0","id":\#(n),"method":"chats.messages.append","params":{"chatId":"\#(chatID)","role":"user","content":"c\#(index)-\#(n)"}}"# + "\n"
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
        let chat = try Self.result(try AuthTests.call(client, id: 1, "chats.get", #"{"id":"\#(chatID)"}"#))
        var items: [JSON] = []
        var cursor = ""
        for page in 2... {
            let params = cursor.isEmpty ? #"{"chatId":"\#(chatID)","limit":500}"# : #"{"chatId":"\#(chatID)","limit":500,"cursor":"\#(cursor)"}"#
            let branch = try Self.result(try AuthTests.call(client, id: page, "chats.messages.list", params))
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
