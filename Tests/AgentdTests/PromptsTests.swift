import Foundation
import Testing

/// The prompts methods over the socket, with the real binary. The test process's uid is the
/// daemon's own, so a fresh connection already acts as its linked account.
@Suite("Prompts over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct PromptsTests {
    @Test("create, get, update, versions, render (and its missing-variable error), list, delete; another user gets -32030")
    func lifecycle() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let created = try AuthTests.call(
                client, id: 1, "prompts.create", #"{"name":"greeting","description":"says hello","body":"Hello {{ user }}, about {{topic}}."}"#)
            let prompt = try #require(created["result"], "reply: \(created)")
            let id = try #require(prompt["id"]?.stringValue)
            #expect(id.hasPrefix("prm_"))
            #expect(prompt["variables"] == .array([.string("user"), .string("topic")]), "reply: \(created)")
            #expect(prompt["version"] == .integer(1) && prompt["builtIn"] == .bool(false), "reply: \(created)")

            let got = try AuthTests.call(client, id: 2, "prompts.get", #"{"id":"\#(id)"}"#)
            #expect(got["result"] == prompt, "reply: \(got)")

            let updated = try AuthTests.call(client, id: 3, "prompts.update", #"{"id":"\#(id)","body":"Hi {{user}}!"}"#)
            #expect(updated["result"]?["version"] == .integer(2), "reply: \(updated)")
            #expect(updated["result"]?["variables"] == .array([.string("user")]), "reply: \(updated)")

            let old = try AuthTests.call(client, id: 4, "prompts.get", #"{"id":"\#(id)","version":1}"#)
            #expect(old["result"]?["body"]?.stringValue == "Hello {{ user }}, about {{topic}}.", "reply: \(old)")
            #expect(old["result"]?["latestVersion"] == .integer(2), "reply: \(old)")

            let versions = try AuthTests.call(client, id: 5, "prompts.versions", #"{"id":"\#(id)"}"#)
            let numbers = versions["result"]?["versions"]?.arrayValue?.compactMap { $0["version"] }
            #expect(numbers == [.integer(1), .integer(2)], "reply: \(versions)")

            // Values are inserted as is: a value holding a placeholder is not expanded.
            let rendered = try AuthTests.call(
                client, id: 6, "prompts.render", #"{"id":"\#(id)","version":1,"variables":{"user":"{{topic}}","topic":"prompts","mood":"x"}}"#)
            #expect(rendered["result"]?["text"]?.stringValue == "Hello {{topic}}, about prompts.", "reply: \(rendered)")
            #expect(rendered["result"]?["version"] == .integer(1), "reply: \(rendered)")
            #expect(rendered["result"]?["unused"] == .array([.string("mood")]), "reply: \(rendered)")

            let missing = try AuthTests.call(client, id: 7, "prompts.render", #"{"id":"\#(id)","variables":{"topic":"x"}}"#)
            #expect(missing.errorCode == -32602, "reply: \(missing)")
            #expect(missing["error"]?["data"]?["field"]?.stringValue == "variables.user", "reply: \(missing)")
            #expect(missing["error"]?["data"]?["reason"]?.stringValue == "missing", "reply: \(missing)")

            let notString = try AuthTests.call(client, id: 8, "prompts.render", #"{"id":"\#(id)","variables":{"user":1}}"#)
            #expect(notString["error"]?["data"]?["field"]?.stringValue == "variables.user", "reply: \(notString)")

            let badBody = try AuthTests.call(client, id: 9, "prompts.create", #"{"name":"bad","body":"Hello {{user"}"#)
            #expect(badBody.errorCode == -32602, "reply: \(badBody)")
            #expect(badBody["error"]?["data"]?["field"]?.stringValue == "body", "reply: \(badBody)")

            let listed = try AuthTests.call(client, id: 10, "prompts.list", #"{"limit":10}"#)
            let items = listed["result"]?["items"]?.arrayValue ?? []
            #expect(items.compactMap { $0["id"]?.stringValue } == [id, "prm_default_system"], "reply: \(listed)")
            #expect(items.last?["builtIn"] == .bool(true), "reply: \(listed)")

            let readOnly = try AuthTests.call(client, id: 11, "prompts.update", #"{"id":"prm_default_system","body":"mine"}"#)
            #expect(readOnly.errorCode == -32602, "reply: \(readOnly)")
            #expect(readOnly["error"]?["data"]?["field"]?.stringValue == "id", "reply: \(readOnly)")

            // Another user, on a second connection: the prompt does not exist for them.
            let other = try daemon.connect()
            let registered = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(registered["result"] != nil, "reply: \(registered)")
            let login = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"mallory","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            for (index, (method, params)) in [
                ("prompts.get", #"{"id":"\#(id)"}"#), ("prompts.get", #"{"id":"\#(id)","version":1}"#),
                ("prompts.update", #"{"id":"\#(id)","name":"mine"}"#), ("prompts.delete", #"{"id":"\#(id)"}"#),
                ("prompts.versions", #"{"id":"\#(id)"}"#), ("prompts.render", #"{"id":"\#(id)","variables":{"user":"x"}}"#),
            ].enumerated() {
                let reply = try AuthTests.call(other, id: 10 + index, method, params)
                #expect(reply.errorCode == -32030, "\(method): \(reply)")
                #expect(reply["error"]?["data"]?["kind"]?.stringValue == "prompt", "\(method): \(reply)")
                #expect(reply["error"]?["data"]?["id"]?.stringValue == id, "\(method): \(reply)")
            }
            let theirs = try AuthTests.call(other, id: 20, "prompts.list")
            #expect(theirs["result"]?["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["prm_default_system"], "reply: \(theirs)")
            let builtIn = try AuthTests.call(
                other, id: 21, "prompts.render",
                #"{"id":"prm_default_system","variables":{"user":"mallory","module.title":"T","date":"today","module.content":"C"}}"#)
            #expect(builtIn["result"]?["text"]?.stringValue?.contains("working with mallory") == true, "reply: \(builtIn)")

            let deleted = try AuthTests.call(client, id: 12, "prompts.delete", #"{"id":"\#(id)"}"#)
            #expect(deleted["result"]?["deleted"] == .bool(true), "reply: \(deleted)")
            let gone = try AuthTests.call(client, id: 13, "prompts.get", #"{"id":"\#(id)"}"#)
            #expect(gone.errorCode == -32030, "reply: \(gone)")
        }
    }

    @Test("rpc.discover lists every prompts method; render's variables are an object of strings")
    func discovery() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let reply = try AuthTests.call(client, id: 1, "rpc.discover")
            let methods = reply["result"]?["methods"]?.arrayValue ?? []
            let names = methods.compactMap { $0["name"]?.stringValue }.filter { $0.hasPrefix("prompts.") }
            #expect(
                names == ["prompts.create", "prompts.delete", "prompts.get", "prompts.list", "prompts.render", "prompts.update", "prompts.versions"],
                "\(names)")
            let render = try #require(methods.first { $0["name"]?.stringValue == "prompts.render" })
            let variables = render["params"]?.arrayValue?.first { $0["name"]?.stringValue == "variables" }
            #expect(variables?["schema"]?["type"]?.stringValue == "object", "\(render)")
            #expect(variables?["schema"]?["additionalProperties"]?["type"]?.stringValue == "string", "\(render)")
        }
    }
}

extension PromptsTests {
    @Test("the README's Prompts example: prompts.create, then prompts.render with and without a value, with socat")
    func readmeExample() throws {
        try DiscoveryTests.requireSocat()
        try withDaemon { daemon in
            let stdout = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":1,"method":"prompts.create","params":{"name":"greeting","body":"Hello {{user}}, welcome to {{place}}."}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##,
                daemon: daemon)
            let result = try #require(try JSON(parsing: stdout)["result"], "stdout: \(stdout)")
            #expect(result["variables"] == .array([.string("user"), .string("place")]), "stdout: \(stdout)")
            let id = try #require(result["id"]?.stringValue, "stdout: \(stdout)")
            #expect(id.hasPrefix("prm_"), "stdout: \(stdout)")

            let rendered = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":2,"method":"prompts.render","params":{"id":"PROMPT_ID","variables":{"user":"Ann","place":"agentd"}}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##
                    .replacingOccurrences(of: "PROMPT_ID", with: id),
                daemon: daemon)
            #expect(
                rendered == #"{"jsonrpc":"2.0","id":2,"result":{"id":"\#(id)","text":"Hello Ann, welcome to agentd.","unused":[],"version":1}}"# + "\n",
                "stdout: \(rendered)")

            let missing = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":3,"method":"prompts.render","params":{"id":"PROMPT_ID","variables":{"user":"Ann"}}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##
                    .replacingOccurrences(of: "PROMPT_ID", with: id),
                daemon: daemon)
            #expect(
                missing == #"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid params","data":{"field":"variables.place","reason":"missing"}}}"# + "\n",
                "stdout: \(missing)")
        }
    }
}
