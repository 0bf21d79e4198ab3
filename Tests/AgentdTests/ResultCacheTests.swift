import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The result cache through the daemon's middleware in process (`InProcessDaemon`): reads served
/// from it never show a value older than a change another connection made, because the change's
/// commit invalidates them (the event bus).
@Suite("Result cache over connections", .timeLimit(.minutes(1)))
struct ResultCacheTests {
    @Test("modules.get and prompts.render see an update or delete made on another connection at once")
    func invalidatedByOtherConnections() async throws {
        try await withInProcessDaemon { daemon in
            let reader = try await daemon.connect()
            let writer = try await daemon.connect()
            let module = try await writer.send(Modules.Create.self, .init(title: "v1")).id
            // The connection's first call binds its peer-credential principal (not cached: no caller
            // yet), the second fills the cache, the third and fourth are served from it.
            for _ in 1...4 {
                #expect(try await reader.send(Modules.Get.self, .init(id: module)).title == "v1")
            }
            // (That the third and fourth were hits is counted in the metrics: `ResultCacheTests.Process`.)
            _ = try await writer.send(Modules.Update.self, .init(id: module, title: "v2"))
            #expect(try await reader.send(Modules.Get.self, .init(id: module)).title == "v2")
            _ = try await writer.send(Modules.Delete.self, .init(id: module))
            let gone = await #expect(throws: RPCError.self) { try await reader.send(Modules.Get.self, .init(id: module)) }
            #expect(gone?.code.rawValue == -32030)

            let prompt = try await writer.send(Prompts.Create.self, .init(name: "greet", body: "Hi {{name}}")).id
            let render = Prompts.Render.Params(id: prompt, variables: ["name": "Ann"])
            for _ in 6...7 { #expect(try await reader.send(Prompts.Render.self, render).text == "Hi Ann") }
            _ = try await writer.send(Prompts.Update.self, .init(id: prompt, body: "Hello {{name}}"))
            #expect(try await reader.send(Prompts.Render.self, render).text == "Hello Ann")
        }
    }

    @Test("a user's cached result is never served to another user")
    func perUser() async throws {
        try await withInProcessDaemon { daemon in
            let owner = try await daemon.connect()
            let module = try await owner.send(Modules.Create.self, .init(title: "mine")).id
            _ = try await owner.send(Modules.Get.self, .init(id: module))
            let other = try await daemon.connect()
            let credentials = Auth.Credentials(username: "eve", password: "correct horse")
            _ = try await other.send(Auth.Register.self, credentials)
            _ = try await other.send(Auth.Login.self, credentials)
            let refused = await #expect(throws: RPCError.self) { try await other.send(Modules.Get.self, .init(id: module)) }
            #expect(refused?.code.rawValue == -32030)
        }
    }
}

extension ResultCacheTests {
    /// The cache's hit counters are swift-metrics counters, which reach the metrics text through the
    /// `MetricsSystem` the daemon process bootstraps once at start (Agentd.swift); an in-process
    /// daemon does not own that process-wide system, so this count is read from the real binary.
    @Suite("Result cache: hits in the process's metrics", .blockingIO, .timeLimit(.minutes(1)))
    struct Process {
        @Test("reads served from the cache are counted per method in system.metrics")
        func hitsCounted() throws {
            try withDaemon { daemon in
                let reader = try daemon.connect()
                let writer = try daemon.connect()
                let module = try #require(try AuthTests.call(writer, id: 1, "modules.create", #"{"title":"v1"}"#)["result"]?["id"]?.stringValue)
                // The connection's first call binds its peer-credential principal (not cached: no caller
                // yet), the second fills the cache, the third and fourth are served from it.
                for id in 1...4 {
                    #expect(try AuthTests.call(reader, id: id, "modules.get", #"{"id":"\#(module)"}"#)["result"]?["title"]?.stringValue == "v1")
                }
                // Two hits, counted per method in the metrics.
                let metrics = try #require(try AuthTests.call(writer, id: 10, "v2.system.metrics")["result"]?["text"]?.stringValue)
                let hits = metrics.split(separator: "\n").first { $0.hasPrefix(#"rpc_cache_hits_total{method="modules.get"}"#) }
                #expect(hits.flatMap { Double($0.split(separator: " ").last ?? "") } == 2, "\(hits ?? "no rpc_cache_hits_total for modules.get")")
            }
        }
    }
}
