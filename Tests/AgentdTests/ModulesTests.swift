import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The modules methods through the daemon's router and middleware, in process (`InProcessDaemon`).
/// A connection from the test's own uid acts as its linked account, as over the socket.
@Suite("Modules (in process, and the README example on the binary)", .blockingIO, .timeLimit(.minutes(2)))
struct ModulesTests {
    @Test("create, get, list, update, delete; another user (register + login) gets -32030 for the module")
    func lifecycle() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let module = try await client.send(Modules.Create.self, .init(title: "Intro", description: "first", content: "Hello", tags: ["b", "a"]))
            #expect(module.id.hasPrefix("mod_"))
            #expect(module.tags == ["a", "b"])

            let got = try await client.send(Modules.Get.self, .init(id: module.id))
            #expect(got == module)

            let listed = try await client.send(Modules.List.self, .init(limit: 10))
            #expect(listed.items == [module])
            #expect(listed.nextCursor == nil)

            let badCursor = await #expect(throws: RPCError.self) { try await client.send(Modules.List.self, .init(cursor: "!!")) }
            #expect(badCursor?.code == .invalidParams)
            #expect(badCursor?.dataValue?["field"]?.stringValue == "cursor", "\(String(describing: badCursor))")

            let updated = try await client.send(Modules.Update.self, .init(id: module.id, title: "Renamed"))
            #expect(updated.title == "Renamed")
            #expect(updated.content == "Hello")

            let badTitle = await #expect(throws: RPCError.self) { try await client.send(Modules.Update.self, .init(id: module.id, title: "  ")) }
            #expect(badTitle?.dataValue?["field"]?.stringValue == "title", "\(String(describing: badTitle))")

            // Another user, on a second connection: the module does not exist for them.
            let other = try await daemon.connect()
            let credentials = Auth.Credentials(username: "mallory", password: "correct horse")
            let registered = try await other.send(Auth.Register.self, credentials)
            #expect(registered.username == "mallory")
            let login = try await other.send(Auth.Login.self, credentials)
            #expect(!login.token.isEmpty)
            let id = module.id
            let calls: [(String, @Sendable (InProcessClient) async throws -> Void)] = [
                ("modules.get", { _ = try await $0.send(Modules.Get.self, .init(id: id)) }),
                ("modules.update", { _ = try await $0.send(Modules.Update.self, .init(id: id, title: "mine")) }),
                ("modules.delete", { _ = try await $0.send(Modules.Delete.self, .init(id: id)) }),
            ]
            for (method, call) in calls {
                let error = await #expect(throws: RPCError.self, "\(method)") { try await call(other) }
                #expect(error?.code.rawValue == -32030, "\(method): \(String(describing: error))")
                #expect(error?.dataValue?["kind"]?.stringValue == "module", "\(method): \(String(describing: error))")
                #expect(error?.dataValue?["id"]?.stringValue == id, "\(method): \(String(describing: error))")
            }
            let theirs = try await other.send(Modules.List.self, .init())
            #expect(theirs.items.isEmpty)

            let deleted = try await client.send(Modules.Delete.self, .init(id: id))
            #expect(deleted.deleted)
            let gone = await #expect(throws: RPCError.self) { try await client.send(Modules.Get.self, .init(id: id)) }
            #expect(gone?.code.rawValue == -32030)
        }
    }
}

/// The README's example runs `socat` against the real binary: it checks the command as written.
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
