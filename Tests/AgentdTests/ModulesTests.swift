import Foundation
import Testing

/// The modules methods over the socket, with the real binary. The test process's uid is the
/// daemon's own, so a fresh connection already acts as its linked account.
@Suite("Modules over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct ModulesTests {
    @Test("create, get, list, update, delete; another user (register + login) gets -32030 for the module")
    func lifecycle() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let created = try AuthTests.call(client, id: 1, "modules.create", #"{"title":"Intro","description":"first","content":"Hello","tags":["b","a"]}"#)
            let module = try #require(created["result"], "reply: \(created)")
            let id = try #require(module["id"]?.stringValue)
            #expect(id.hasPrefix("mod_"))
            #expect(module["tags"] == .array([.string("a"), .string("b")]), "reply: \(created)")

            let got = try AuthTests.call(client, id: 2, "modules.get", #"{"id":"\#(id)"}"#)
            #expect(got["result"] == module, "reply: \(got)")

            let listed = try AuthTests.call(client, id: 3, "modules.list", #"{"limit":10}"#)
            #expect(listed["result"]?["items"] == .array([module]), "reply: \(listed)")
            #expect(listed["result"]?["nextCursor"] == nil, "reply: \(listed)")

            let badCursor = try AuthTests.call(client, id: 4, "modules.list", #"{"cursor":"!!"}"#)
            #expect(badCursor.errorCode == -32602, "reply: \(badCursor)")
            #expect(badCursor["error"]?["data"]?["field"]?.stringValue == "cursor", "reply: \(badCursor)")

            let updated = try AuthTests.call(client, id: 5, "modules.update", #"{"id":"\#(id)","title":"Renamed"}"#)
            #expect(updated["result"]?["title"]?.stringValue == "Renamed", "reply: \(updated)")
            #expect(updated["result"]?["content"]?.stringValue == "Hello", "reply: \(updated)")

            let badTitle = try AuthTests.call(client, id: 6, "modules.update", #"{"id":"\#(id)","title":"  "}"#)
            #expect(badTitle["error"]?["data"]?["field"]?.stringValue == "title", "reply: \(badTitle)")

            // Another user, on a second connection: the module does not exist for them.
            let other = try daemon.connect()
            let registered = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(registered["result"] != nil, "reply: \(registered)")
            let login = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            for (index, (method, params)) in [
                ("modules.get", #"{"id":"\#(id)"}"#), ("modules.update", #"{"id":"\#(id)","title":"mine"}"#), ("modules.delete", #"{"id":"\#(id)"}"#),
            ].enumerated() {
                let reply = try AuthTests.call(other, id: 10 + index, method, params)
                #expect(reply.errorCode == -32030, "\(method): \(reply)")
                #expect(reply["error"]?["data"]?["kind"]?.stringValue == "module", "\(method): \(reply)")
                #expect(reply["error"]?["data"]?["id"]?.stringValue == id, "\(method): \(reply)")
            }
            let theirs = try AuthTests.call(other, id: 20, "modules.list")
            #expect(theirs["result"]?["items"] == .array([]), "reply: \(theirs)")

            let deleted = try AuthTests.call(client, id: 7, "modules.delete", #"{"id":"\#(id)"}"#)
            #expect(deleted["result"]?["deleted"] == .bool(true), "reply: \(deleted)")
            let gone = try AuthTests.call(client, id: 8, "modules.get", #"{"id":"\#(id)"}"#)
            #expect(gone.errorCode == -32030, "reply: \(gone)")
        }
    }
}

extension ModulesTests {
    @Test("the README's Modules example: modules.create with socat answers the new module")
    func readmeExample() throws {
        try DiscoveryTests.requireSocat()
        try withDaemon { daemon in
            let stdout = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":1,"method":"modules.create","params":{"title":"Intro","content":"# Hello","tags":["notes"]}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##,
                daemon: daemon)
            let result = try #require(try JSON(parsing: stdout)["result"], "stdout: \(stdout)")
            #expect(result["title"]?.stringValue == "Intro", "stdout: \(stdout)")
            #expect(result["tags"] == .array([.string("notes")]), "stdout: \(stdout)")
            #expect(result["id"]?.stringValue?.hasPrefix("mod_") == true, "stdout: \(stdout)")
        }
    }
}
