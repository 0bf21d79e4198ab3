import Foundation
import Testing

/// Data written through the socket is there after the daemon is stopped (SIGTERM) and started again
/// on the same database file: accounts and passwords, modules, chats and their message trees, prompts and their versions.
@Suite("Restart", .blockingIO, .timeLimit(.minutes(2)))
struct RestartTests {
    @Test("written, stopped, started: every domain's data is there and sessions still sign in")
    func dataSurvivesRestart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let arguments = ["--database", "\(directory.path)/agentd.sqlite"]
        let socket = "\(directory.path)/agentd.sock"

        var before: [JSON] = []
        let token: String
        let promptID: String
        do {
            let daemon = try DaemonProcess(socketPath: socket, arguments: arguments)
            defer { daemon.kill() }
            let client = try daemon.connect()
            _ = try AuthTests.call(client, id: 1, "auth.register", #"{"username":"carol","password":"correct horse"}"#)
            let login = try AuthTests.call(client, id: 2, "auth.login", #"{"username":"carol","password":"correct horse"}"#)
            token = try #require(login["result"]?["token"]?.stringValue, "\(login)")
            let module = try #require(
                try AuthTests.call(client, id: 3, "modules.create", #"{"title":"Kept","content":"body","tags":["t"]}"#)["result"])
            let chat = try #require(try AuthTests.call(client, id: 4, "chats.create", #"{"title":"Kept chat"}"#)["result"])
            let chatID = try #require(chat["id"]?.stringValue)
            let first = try #require(
                try AuthTests.call(client, id: 5, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"one"}"#)["result"])
            _ = try AuthTests.call(client, id: 6, "chats.messages.append", #"{"chatId":"\#(chatID)","role":"assistant","content":"two"}"#)
            _ = try AuthTests.call(
                client, id: 7, "chats.messages.append",
                #"{"chatId":"\#(chatID)","role":"user","content":"one, edited","siblingOf":"\#(first["id"]!.stringValue!)"}"#)
            let prompt = try #require(try AuthTests.call(client, id: 8, "prompts.create", #"{"name":"greet","body":"Hello {{name}}"}"#)["result"])
            promptID = try #require(prompt["id"]?.stringValue)
            _ = try AuthTests.call(client, id: 9, "prompts.update", #"{"id":"\#(promptID)","body":"Hi {{name}}!"}"#)
            before = try Self.read(client, moduleID: module["id"]!.stringValue!, chatID: chatID, promptID: promptID)
            daemon.terminate()
            #expect(try daemon.waitForExit(timeout: .seconds(20)) == .exited(0))
        }

        let restarted = try DaemonProcess(socketPath: socket, arguments: arguments)
        defer { restarted.kill() }
        let client = try restarted.connect()
        let authenticated = try AuthTests.call(client, id: 1, "auth.authenticate", #"{"token":"\#(token)"}"#)
        #expect(authenticated["result"]?["username"]?.stringValue == "carol", "\(authenticated)")
        let moduleID = before[0]["result"]?["id"]?.stringValue ?? ""
        let chatID = before[1]["result"]?["id"]?.stringValue ?? ""
        #expect(try Self.read(client, moduleID: moduleID, chatID: chatID, promptID: promptID) == before)
        let login = try AuthTests.call(client, id: 2, "auth.login", #"{"username":"carol","password":"correct horse"}"#)
        #expect(login["result"]?["token"] != nil, "\(login)")
    }

    /// The same reads before and after (same request ids, so the replies compare whole).
    static func read(_ client: RPCTestClient, moduleID: String, chatID: String, promptID: String) throws -> [JSON] {
        [
            try AuthTests.call(client, id: 20, "modules.get", #"{"id":"\#(moduleID)"}"#),
            try AuthTests.call(client, id: 21, "chats.get", #"{"id":"\#(chatID)"}"#),
            try AuthTests.call(client, id: 22, "chats.messages.list", #"{"chatId":"\#(chatID)"}"#),
            try AuthTests.call(client, id: 23, "chats.export", #"{"chatId":"\#(chatID)","format":"json"}"#),
            try AuthTests.call(client, id: 24, "modules.list", "{}"),
            try AuthTests.call(client, id: 25, "prompts.get", #"{"id":"\#(promptID)","version":1}"#),
            try AuthTests.call(client, id: 26, "prompts.render", #"{"id":"\#(promptID)","variables":{"name":"Ada"}}"#),
        ]
    }
}
