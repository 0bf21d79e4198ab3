import Foundation
import Testing

/// The result cache over the socket: reads served from it never show a value older than a change
/// another connection made, because the change's commit invalidates them (the event bus).
@Suite("Result cache over the socket", .blockingIO, .timeLimit(.minutes(1)))
struct ResultCacheTests {
    @Test("modules.get and prompts.render see an update or delete made on another connection at once")
    func invalidatedByOtherConnections() throws {
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
            _ = try AuthTests.call(writer, id: 2, "modules.update", #"{"id":"\#(module)","title":"v2"}"#)
            #expect(try AuthTests.call(reader, id: 14, "modules.get", #"{"id":"\#(module)"}"#)["result"]?["title"]?.stringValue == "v2")
            _ = try AuthTests.call(writer, id: 3, "modules.delete", #"{"id":"\#(module)"}"#)
            #expect(try AuthTests.call(reader, id: 15, "modules.get", #"{"id":"\#(module)"}"#)["error"]?["code"] == .integer(-32030))

            let prompt = try #require(
                try AuthTests.call(writer, id: 4, "prompts.create", #"{"name":"greet","body":"Hi {{name}}"}"#)["result"]?["id"]?.stringValue)
            let render = #"{"id":"\#(prompt)","variables":{"name":"Ann"}}"#
            for id in 6...7 { #expect(try AuthTests.call(reader, id: id, "prompts.render", render)["result"]?["text"]?.stringValue == "Hi Ann") }
            _ = try AuthTests.call(writer, id: 5, "prompts.update", #"{"id":"\#(prompt)","body":"Hello {{name}}"}"#)
            #expect(try AuthTests.call(reader, id: 8, "prompts.render", render)["result"]?["text"]?.stringValue == "Hello Ann")
        }
    }

    @Test("a user's cached result is never served to another user")
    func perUser() throws {
        try withDaemon { daemon in
            let owner = try daemon.connect()
            let module = try #require(try AuthTests.call(owner, id: 1, "modules.create", #"{"title":"mine"}"#)["result"]?["id"]?.stringValue)
            _ = try AuthTests.call(owner, id: 2, "modules.get", #"{"id":"\#(module)"}"#)
            let other = try daemon.connect()
            _ = try AuthTests.call(other, id: 1, "auth.register", #"{"username":"eve","password":"correct horse"}"#)
            _ = try AuthTests.call(other, id: 2, "auth.login", #"{"username":"eve","password":"correct horse"}"#)
            #expect(try AuthTests.call(other, id: 3, "modules.get", #"{"id":"\#(module)"}"#)["error"]?["code"] == .integer(-32030))
        }
    }
}
