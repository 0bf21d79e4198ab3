import AgentdTesting
import Foundation
import Testing

/// API versions side by side, through the daemon's router in process (`InProcessDaemon`): the
/// handshake, `vN.` prefixes, a method that version 2 changed while version 1 keeps its contract,
/// and deprecation notices. Replies are looked at as the server wrote them (raw, parsed): whether
/// a member is there at all (`moduleId`, `deprecation`) is the point.
@Suite("API versions", .timeLimit(.minutes(1)))
struct VersioningTests {
    /// Calls `method` and returns the whole reply, parsed, error or not.
    static func call(_ client: InProcessClient, _ method: String, _ params: String = "{}") async throws -> JSON {
        try JSON(parsing: await client.callRaw(method, params))
    }

    static func firstItem(_ reply: JSON, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        try #require(reply["result"]?["items"]?.arrayValue?.first, "reply: \(reply)", sourceLocation: sourceLocation)
    }

    @Test("without a handshake calls get version 1; vN. prefixes reach a version; session.hello switches the connection")
    func selection() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let module = try #require(try await Self.call(client, "modules.create", #"{"title":"Notes"}"#)["result"]?["id"]?.stringValue)
            _ = try await Self.call(client, "chats.create", #"{"moduleId":"\#(module)","title":"Plans"}"#)

            // Version 1: the item has moduleId, no module.
            let v1 = try Self.firstItem(try await Self.call(client, "chats.list"))
            #expect(v1["moduleId"]?.stringValue == module && v1["module"] == nil)
            // Version 2 by prefix: the module with its title, and no moduleId.
            let v2 = try Self.firstItem(try await Self.call(client, "v2.chats.list"))
            #expect(v2["module"] == (try JSON(parsing: #"{"id":"\#(module)","title":"Notes"}"#)) && v2["moduleId"] == nil)

            let hello = try await Self.call(client, "session.hello", #"{"client":{"name":"test","version":"1.0"},"apiVersions":["1","2","7"]}"#)
            let result = try #require(hello["result"], "reply: \(hello)")
            #expect(result["apiVersion"]?.stringValue == "2")
            #expect(result["server"]?["name"]?.stringValue == "agentd")
            #expect(result["apiVersions"]?.arrayValue?.compactMap { $0["version"]?.stringValue } == ["1", "2"])
            #expect(result["capabilities"]?.arrayValue?.isEmpty == false)

            // Now plain calls are version 2, and v1. still reaches version 1.
            #expect(try Self.firstItem(try await Self.call(client, "chats.list"))["module"]?["title"]?.stringValue == "Notes")
            #expect(try Self.firstItem(try await Self.call(client, "v1.chats.list"))["moduleId"]?.stringValue == module)

            // The handshake is per connection: a new one starts at version 1.
            let other = try await daemon.connect()
            #expect(try Self.firstItem(try await Self.call(other, "chats.list"))["moduleId"]?.stringValue == module)
        }
    }

    @Test("without a handshake (version 1) the methods added after it was published answer: agent.*, system.metrics")
    func addedMethodsInVersion1() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            // No provider is configured: agent.act runs, fails, and says which settings are missing.
            let act = try await Self.call(client, "agent.act", #"{"message":"Hello"}"#)
            #expect(act["error"]?["code"] == .integer(-32050), "reply: \(act)")
            let runs = try await Self.call(client, "agent.runs.list")
            #expect(runs["result"]?["items"]?.arrayValue?.count == 1, "reply: \(runs)")
            let metrics = try await Self.call(client, "system.metrics")
            #expect(
                metrics["result"]?["text"]?.stringValue?.contains("rpc_requests_total{method=\"agent.act\"} 1") == true,
                "error: \(metrics["error"] ?? .null)")
            // The same method by prefix in both versions: one contract.
            let v1 = try await Self.call(client, "v1.agent.runs.get", #"{"runId":"run_missing"}"#)
            let v2 = try await Self.call(client, "v2.agent.runs.get", #"{"runId":"run_missing"}"#)
            #expect(v1["error"]?["code"] == .integer(-32030) && v1["error"] == v2["error"], "\(v1) vs \(v2)")
        }
    }

    @Test("session.hello with no version in common, and unknown versions and methods, answer clear errors")
    func errors() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let hello = try await Self.call(client, "session.hello", #"{"apiVersions":["9"]}"#)
            #expect(hello["error"]?["code"] == .integer(-32016), "reply: \(hello)")
            #expect(hello["error"]?["data"]?["supported"] == (try JSON(parsing: #"["1","2"]"#)))
            // Still version 1 after a failed handshake.
            #expect(try Self.firstItemOrEmpty(try await Self.call(client, "chats.list")) == nil)

            let discover = try await Self.call(client, "rpc.discover", #"{"version":"9"}"#)
            #expect(discover["error"]?["code"] == .integer(-32016), "reply: \(discover)")
            // v9. is no version: the whole name is looked up, and does not exist.
            let unknown = try await Self.call(client, "v9.chats.list")
            #expect(unknown["error"]?["code"] == .integer(-32601))
            #expect(unknown["error"]?["data"]?["method"]?.stringValue == "v9.chats.list")
        }
    }

    static func firstItemOrEmpty(_ reply: JSON) throws -> JSON? {
        try #require(reply["result"]?["items"]?.arrayValue, "reply: \(reply)").first
    }

    @Test("a deprecated method still works; its reply carries a deprecation member, and rpc.discover says deprecated: true")
    func deprecation() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":1,"method":"v2.system.version"}"# + "\n")
            let raw = try await client.nextMessage()
            let reply = try JSON(parsing: raw)
            #expect(reply["result"]?["name"]?.stringValue == "agentd", "reply: \(raw)")
            #expect(reply["deprecation"]?["method"]?.stringValue == "system.version")
            #expect(reply["deprecation"]?["apiVersion"]?.stringValue == "2")
            #expect(reply["deprecation"]?["message"]?.stringValue?.contains("session.hello") == true)

            // Version 1's contract is untouched: no notice there.
            let v1 = try await Self.call(client, "system.version")
            #expect(v1["result"] != nil && v1["deprecation"] == nil, "reply: \(v1)")

            // In a batch too, on the member concerned only.
            try await client.write(#"[{"jsonrpc":"2.0","id":3,"method":"v2.system.version"},{"jsonrpc":"2.0","id":4,"method":"system.ping"}]"# + "\n")
            let batch = try #require(try JSON(parsing: await client.nextMessage()).arrayValue)
            #expect(batch.first { $0["id"] == .integer(3) }?["deprecation"] != nil)
            #expect(batch.first { $0["id"] == .integer(4) }?["deprecation"] == nil)

            let document = try #require(try await Self.call(client, "rpc.discover", #"{"version":"2"}"#)["result"])
            let method = document["methods"]?.arrayValue?.first { $0["name"]?.stringValue == "system.version" }
            #expect(method?["deprecated"] == .bool(true))
            let v1Document = try #require(try await Self.call(client, "rpc.discover", #"{"version":"1"}"#)["result"])
            #expect(v1Document["methods"]?.arrayValue?.first { $0["name"]?.stringValue == "system.version" }?["deprecated"] == nil)
        }
    }
}
