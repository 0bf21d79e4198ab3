import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The prompts methods through the daemon's router and middleware, in process (`InProcessDaemon`).
/// A connection from the test's own uid acts as its linked account, as over the socket.
@Suite("Prompts (in process, and the README example on the binary)", .blockingIO, .timeLimit(.minutes(2)))
struct PromptsTests {
    @Test("create, get, update, versions, render (and its missing-variable error), list, delete; another user gets -32030")
    func lifecycle() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let prompt = try await client.send(
                Prompts.Create.self, .init(name: "greeting", description: "says hello", body: "Hello {{ user }}, about {{topic}}."))
            let id = prompt.id
            #expect(id.hasPrefix("prm_"))
            #expect(prompt.variables == ["user", "topic"])
            #expect(prompt.version == 1 && !prompt.builtIn)

            #expect(try await client.send(Prompts.Get.self, .init(id: id)) == prompt)

            let updated = try await client.send(Prompts.Update.self, .init(id: id, body: "Hi {{user}}!"))
            #expect(updated.version == 2)
            #expect(updated.variables == ["user"])

            let old = try await client.send(Prompts.Get.self, .init(id: id, version: 1))
            #expect(old.body == "Hello {{ user }}, about {{topic}}.")
            #expect(old.latestVersion == 2)

            let versions = try await client.send(Prompts.Versions.self, .init(id: id))
            #expect(versions.versions.map(\.version) == [1, 2])

            // Values are inserted as is: a value holding a placeholder is not expanded.
            let rendered = try await client.send(
                Prompts.Render.self, .init(id: id, version: 1, variables: ["user": "{{topic}}", "topic": "prompts", "mood": "x"]))
            #expect(rendered.text == "Hello {{topic}}, about prompts.")
            #expect(rendered.version == 1)
            #expect(rendered.unused == ["mood"])

            let missing = await #expect(throws: RPCError.self) {
                try await client.send(Prompts.Render.self, .init(id: id, variables: ["topic": "x"]))
            }
            #expect(missing?.code == .invalidParams)
            #expect(missing?.dataValue?["field"]?.stringValue == "variables.user", "\(String(describing: missing))")
            #expect(missing?.dataValue?["reason"]?.stringValue == "missing", "\(String(describing: missing))")

            // Not expressible with the typed params (variables are strings): raw JSON.
            let notString = await #expect(throws: RPCError.self) {
                try await client.call("prompts.render", #"{"id":"\#(id)","variables":{"user":1}}"#)
            }
            #expect(notString?.dataValue?["field"]?.stringValue == "variables.user", "\(String(describing: notString))")

            let badBody = await #expect(throws: RPCError.self) {
                try await client.send(Prompts.Create.self, .init(name: "bad", body: "Hello {{user"))
            }
            #expect(badBody?.code == .invalidParams)
            #expect(badBody?.dataValue?["field"]?.stringValue == "body", "\(String(describing: badBody))")

            let listed = try await client.send(Prompts.List.self, .init(limit: 10))
            #expect(listed.items.map(\.id) == [id, "prm_default_system"])
            #expect(listed.items.last?.builtIn == true)

            let readOnly = await #expect(throws: RPCError.self) {
                try await client.send(Prompts.Update.self, .init(id: "prm_default_system", body: "mine"))
            }
            #expect(readOnly?.code == .invalidParams)
            #expect(readOnly?.dataValue?["field"]?.stringValue == "id", "\(String(describing: readOnly))")

            // Another user, on a second connection: the prompt does not exist for them.
            let other = try await daemon.connect()
            let credentials = Auth.Credentials(username: "mallory", password: "correct horse")
            let registered = try await other.send(Auth.Register.self, credentials)
            #expect(registered.username == "mallory")
            let login = try await other.send(Auth.Login.self, credentials)
            #expect(!login.token.isEmpty)
            let calls: [(String, @Sendable (InProcessClient) async throws -> Void)] = [
                ("prompts.get", { _ = try await $0.send(Prompts.Get.self, .init(id: id)) }),
                ("prompts.get version 1", { _ = try await $0.send(Prompts.Get.self, .init(id: id, version: 1)) }),
                ("prompts.update", { _ = try await $0.send(Prompts.Update.self, .init(id: id, name: "mine")) }),
                ("prompts.delete", { _ = try await $0.send(Prompts.Delete.self, .init(id: id)) }),
                ("prompts.versions", { _ = try await $0.send(Prompts.Versions.self, .init(id: id)) }),
                ("prompts.render", { _ = try await $0.send(Prompts.Render.self, .init(id: id, variables: ["user": "x"])) }),
            ]
            for (method, call) in calls {
                let error = await #expect(throws: RPCError.self, "\(method)") { try await call(other) }
                #expect(error?.code.rawValue == -32030, "\(method): \(String(describing: error))")
                #expect(error?.dataValue?["kind"]?.stringValue == "prompt", "\(method): \(String(describing: error))")
                #expect(error?.dataValue?["id"]?.stringValue == id, "\(method): \(String(describing: error))")
            }
            let theirs = try await other.send(Prompts.List.self, .init())
            #expect(theirs.items.map(\.id) == ["prm_default_system"])
            let builtIn = try await other.send(
                Prompts.Render.self,
                .init(id: "prm_default_system", variables: ["user": "mallory", "module.title": "T", "date": "today", "module.content": "C"]))
            #expect(builtIn.text.contains("working with mallory"), "\(builtIn.text)")

            let deleted = try await client.send(Prompts.Delete.self, .init(id: id))
            #expect(deleted.deleted)
            let gone = await #expect(throws: RPCError.self) { try await client.send(Prompts.Get.self, .init(id: id)) }
            #expect(gone?.code.rawValue == -32030)
        }
    }

    @Test("rpc.discover lists every prompts method; render's variables are an object of strings")
    func discovery() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let document = try await client.call("rpc.discover").decode(JSONValue.self)
            let methods = document["methods"]?.arrayValue ?? []
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

/// The README's example runs `socat` against the real binary: it checks the command as written.
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
                rendered == #"{"jsonrpc":"2.0","id":2,"result":{"id":"\#(id)","text":"Hello Ann, welcome to agentd.","unused":[],"version":1}}"#
                    + "\n",
                "stdout: \(rendered)")

            let missing = try DiscoveryTests.runReadmeExample(
                ##"echo '{"jsonrpc":"2.0","id":3,"method":"prompts.render","params":{"id":"PROMPT_ID","variables":{"user":"Ann"}}}' | socat - UNIX-CONNECT:/tmp/agentd.sock"##
                    .replacingOccurrences(of: "PROMPT_ID", with: id),
                daemon: daemon)
            #expect(
                missing
                    == #"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Invalid params","data":{"field":"variables.place","reason":"missing"}}}"#
                    + "\n",
                "stdout: \(missing)")
        }
    }
}
