import AgentdTesting
import Foundation
import Testing

/// The published contract (`rpc.discover`, `agentd openrpc`, schema/openrpc-vN.json) and the README's
/// socat one-liner. `rpc.discover` is called in process (`InProcessDaemon`); the suite stays on the
/// blocking-IO executor for what only the binary shows: `agentd openrpc`'s output and the socat
/// examples on the real socket.
@Suite("Discovery and documentation", .blockingIO, .timeLimit(.minutes(1)))
struct DiscoveryTests {
    @Test("rpc.discover lists the system methods and the server.shuttingDown notification")
    func discover() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"# + "\n")
            let reply = try JSON(parsing: await client.nextMessage())
            #expect(reply["id"] == .integer(1))
            let document = try #require(reply["result"], "reply: \(reply)")
            let methods = (document["methods"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            for name in ["system.ping", "system.echo", "system.version", "rpc.discover"] {
                #expect(methods.contains(name), "\(name) missing from \(methods)")
            }
            let notifications = (document["x-notifications"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            #expect(notifications.contains("server.shuttingDown"), "x-notifications: \(document["x-notifications"]?.description ?? "absent")")
            #expect(document["x-errors"]?.arrayValue?.isEmpty == false, "x-errors missing")
        }
    }

    @Test("rpc.discover returns what `agentd openrpc` prints, per API version (v1 without a handshake)", arguments: [nil, "1", "2"])
    func discoverMatchesOpenRPCCommand(version: String?) async throws {
        let printed = try runCommand(TestPaths.agentdBinary, ["openrpc", "--api-version", version ?? "1"])
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        let expected = try JSON(parsing: printed.stdout)
        // The daemon's own graph (the composition root's routes) without test methods, as the
        // binary runs by default.
        try await withInProcessDaemon(configure: { $0.enableTestMethods = false }) { daemon in
            let client = try await daemon.connect()
            let params = version.map { #","params":{"version":"\#($0)"}"# } ?? ""
            try await client.write(#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"\#(params)}"# + "\n")
            let reply = try JSON(parsing: await client.nextMessage())
            let served = try #require(reply["result"], "reply: \(reply)")
            let difference = served.firstDifference(from: expected)
            #expect(difference == nil, "rpc.discover (left) and `agentd openrpc` (right) differ")
        }
    }

    /// The API versions the binary serves, oldest first (`agentd openrpc --list-versions`, what
    /// `make schema` writes a document for).
    static func servedVersions() throws -> [String] {
        let listed = try runCommand(TestPaths.agentdBinary, ["openrpc", "--list-versions"])
        #expect(listed.termination == .exited(0), "stderr: \(listed.stderr)")
        let versions = listed.stdout.split(separator: "\n").map(String.init)
        try #require(!versions.isEmpty, "agentd openrpc --list-versions printed nothing")
        return versions
    }

    /// `agentd openrpc --api-version <version>`, parsed.
    static func generatedDocument(_ version: String) throws -> JSON {
        let printed = try runCommand(TestPaths.agentdBinary, ["openrpc", "--api-version", version])
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        return try JSON(parsing: printed.stdout)
    }

    @Test("schema/openrpc-vN.json is up to date with `agentd openrpc --api-version N`, for every version `--list-versions` names")
    func schemaFilesAreCurrent() throws {
        let versions = try Self.servedVersions()
        // No document of a version no longer served (scripts/api-docs.py would document it).
        let files = try FileManager.default.contentsOfDirectory(atPath: TestPaths.repositoryRoot.appendingPathComponent("schema").path)
        let documented = files.filter { $0.hasPrefix("openrpc-v") && $0.hasSuffix(".json") }.map {
            String($0.dropFirst("openrpc-v".count).dropLast(".json".count))
        }
        #expect(Set(documented) == Set(versions), "schema/openrpc-v*.json are of versions \(documented.sorted()), the binary serves \(versions)")
        for version in versions {
            let name = "schema/openrpc-v\(version).json"
            let committed = try #require(
                FileManager.default.contents(atPath: TestPaths.repositoryRoot.appendingPathComponent(name).path),
                "\(name) is missing: run `make schema`")
            let difference = try JSON(parsing: committed).firstDifference(from: Self.generatedDocument(version))
            #expect(difference == nil, "\(name) (left) is stale, it differs from `agentd openrpc` (right): run `make schema` and commit the result")
        }
    }

    /// A published version's document (frozen in schema/published/openrpc-vN.json) may gain
    /// methods, notifications and error codes, never change or lose one: its clients rely on them.
    @Test("published API versions only grow: every method, notification and error of schema/published/ is served unchanged")
    func publishedVersionsOnlyGrow() throws {
        let folder = TestPaths.repositoryRoot.appendingPathComponent("schema/published")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("openrpc-v") && $0.hasSuffix(".json") }
            .sorted()
        try #require(files.contains("openrpc-v1.json"), "schema/published/openrpc-v1.json is missing: \(files)")
        let served = try Self.servedVersions()
        for file in files {
            let version = String(file.dropFirst("openrpc-v".count).dropLast(".json".count))
            try #require(
                served.contains(version), "published version \(version) is no longer served (\(served)): removing a version breaks its clients")
            let published = try JSON(parsing: try #require(FileManager.default.contents(atPath: folder.appendingPathComponent(file).path)))
            let breaks = APICompatibility.breaks(published: published, current: try Self.generatedDocument(version))
            #expect(
                breaks.isEmpty,
                "version \(version) changed what its clients rely on: \(breaks.joined(separator: "; ")). Change a contract in a new version (RPCRouter's `in: .from`) instead"
            )
        }
    }

    @Test("the compatibility check catches a changed param type, a removed method, a changed result or errors, a lost notification or error code")
    func compatibilityCheckCatchesBreaks() throws {
        let published = try JSON(
            parsing: try #require(
                FileManager.default.contents(atPath: TestPaths.repositoryRoot.appendingPathComponent("schema/published/openrpc-v1.json").path)))
        #expect(APICompatibility.breaks(published: published, current: published).isEmpty)

        // Allowed: prose, a deprecation, a new method, a new notification, a new error code.
        var grown = published
        grown.update(method: "modules.get") { $0.set("summary", .string("Reworded.")) }
        grown.update(method: "system.ping") { $0.set("deprecated", .bool(true)) }
        try grown.update(method: "modules.get") {
            $0.set("errors", try JSON(parsing: #"[{"code":-32030,"message":"Not found","data":"{kind, id}"}]"#))
        }
        grown.append("methods", try JSON(parsing: #"{"name":"modules.new","params":[],"result":{"name":"result","schema":{}}}"#))
        grown.append("x-notifications", try JSON(parsing: #"{"name":"modules.changed","params":{}}"#))
        grown.append("x-errors", try JSON(parsing: #"{"code":-32999,"message":"New"}"#))
        // Also allowed: a new optional param after the others, a new optional result member, one more error.
        grown.update(method: "modules.get") { method in
            method.append("params", .object(["name": .string("verbose"), "required": .bool(false), "schema": .object(["type": .string("boolean")])]))
            method.append("errors", .object(["code": .integer(-32602), "message": .string("Invalid params")]))
            guard var result = method["result"], var schema = result["schema"], var properties = schema["properties"] else { return }
            properties.set("files", .object(["type": .string("array"), "items": .object([:])]))
            schema.set("properties", properties)
            result.set("schema", schema)
            method.set("result", result)
        }
        #expect(
            APICompatibility.breaks(published: published, current: grown).isEmpty, "\(APICompatibility.breaks(published: published, current: grown))")

        var retyped = published
        try retyped.update(method: "modules.get") {
            $0.set("params", try JSON(parsing: #"[{"name":"id","required":true,"schema":{"type":"integer"}}]"#))
        }
        #expect(APICompatibility.breaks(published: published, current: retyped) == ["method modules.get: its params changed"])

        var required = published
        required.update(method: "modules.get") { method in
            method.append("params", .object(["name": .string("verbose"), "required": .bool(true), "schema": .object(["type": .string("boolean")])]))
        }
        #expect(APICompatibility.breaks(published: published, current: required) == ["method modules.get: its params changed"])
        var requiredResult = published
        requiredResult.update(method: "modules.get") { method in
            guard var result = method["result"], var schema = result["schema"], var properties = schema["properties"] else { return }
            properties.set("files", .object(["type": .string("array")]))
            schema.set("properties", properties)
            schema.append("required", .string("files"))
            result.set("schema", schema)
            method.set("result", result)
        }
        #expect(APICompatibility.breaks(published: published, current: requiredResult) == ["method modules.get: its result changed"])

        var removed = published
        removed.set("methods", .array((published["methods"]?.arrayValue ?? []).filter { $0["name"] != .string("modules.get") }))
        #expect(APICompatibility.breaks(published: published, current: removed) == ["method modules.get was removed"])

        var result = published
        try result.update(method: "system.ping") { $0.set("result", try JSON(parsing: #"{"name":"result","schema":{"type":"integer"}}"#)) }
        #expect(APICompatibility.breaks(published: published, current: result) == ["method system.ping: its result changed"])

        var errors = published
        errors.update(method: "modules.get") { $0.set("errors", .array([])) }
        #expect(APICompatibility.breaks(published: published, current: errors) == ["method modules.get: its errors changed"])

        var notification = published
        notification.set("x-notifications", .array([]))
        #expect(APICompatibility.breaks(published: published, current: notification).contains("notification server.shuttingDown was removed"))

        var code = published
        code.set("x-errors", .array((published["x-errors"]?.arrayValue ?? []).filter { $0["code"] != .integer(-32601) }))
        #expect(APICompatibility.breaks(published: published, current: code) == ["error -32601 was removed"])
    }

    /// Adding a method breaks no client: a client that never says session.hello (version 1) reaches
    /// every method. Versions differ only where a contract changed, under the same name.
    @Test("every method and notification of a newer version is in every older one")
    func newerVersionsAddNoName() throws {
        let versions = try Self.servedVersions()
        let documents = try versions.map { try Self.generatedDocument($0) }
        func names(_ document: JSON, _ member: String) -> Set<String> {
            Set((document[member]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        }
        for (older, newer) in zip(documents.indices, documents.indices.dropFirst()) {
            for member in ["methods", "x-notifications"] {
                let missing = names(documents[newer], member).subtracting(names(documents[older], member))
                #expect(missing.isEmpty, "v\(versions[newer]) has \(member) that v\(versions[older]) lacks: \(missing.sorted())")
            }
        }
    }

    static func requireSocat() throws {
        let socat = ["/usr/bin/socat", "/bin/socat", "/usr/local/bin/socat"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(socat != nil, "socat is not installed (make deps installs it)")
    }

    /// Runs a README shell example with `/tmp/agentd.sock` replaced by the test's socket.
    static func runReadmeExample(_ command: String, daemon: DaemonProcess) throws -> String {
        try daemon.waitUntilConnectable()
        let run = try runCommand(
            "/bin/sh", ["-c", command.replacingOccurrences(of: "/tmp/agentd.sock", with: daemon.socketPath)], timeout: .seconds(10))
        #expect(run.termination == .exited(0), "stderr: \(run.stderr)")
        return run.stdout
    }

    @Test("the README's socat one-liner prints the pong line")
    func socatOneLiner() throws {
        try Self.requireSocat()
        try withDaemon { daemon in
            let stdout = try Self.runReadmeExample(
                #"echo '{"jsonrpc":"2.0","id":1,"method":"system.ping"}' | socat - UNIX-CONNECT:/tmp/agentd.sock"#, daemon: daemon)
            #expect(stdout == "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"pong\"}\n", "stdout: \(stdout.debugDescription)")
        }
    }

    @Test("the README's Content-Length example over socat")
    func socatContentLength() throws {
        try Self.requireSocat()
        try withDaemon { daemon in
            let stdout = try Self.runReadmeExample(
                #"printf 'Content-Length: 47\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"system.ping"}' | socat - UNIX-CONNECT:/tmp/agentd.sock"#,
                daemon: daemon)
            #expect(stdout == "Content-Length: 40\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"pong\"}", "stdout: \(stdout.debugDescription)")
        }
    }

    @Test("the README's interactive socat session, piped")
    func socatSession() throws {
        try Self.requireSocat()
        let requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"system.version"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"system.echo","params":{"any":["json",1.50]}}"#,
            #"[{"jsonrpc":"2.0","id":3,"method":"system.ping"},{"jsonrpc":"2.0","method":"system.ping"}]"#,
            #"{"jsonrpc":"2.0","id":4,"method":"nope"}"#,
        ]
        let replies = [
            #"{"jsonrpc":"2.0","id":1,"result":{"apiVersions":["1","2"],"name":"agentd","version":"0.1.0"}}"#,
            #"{"jsonrpc":"2.0","id":2,"result":{"any":["json",1.50]}}"#,
            #"[{"jsonrpc":"2.0","id":3,"result":"pong"}]"#,
            #"{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"Method not found","data":{"apiVersion":"1","method":"nope"}}}"#,
        ]
        try withDaemon { daemon in
            let stdout = try Self.runReadmeExample(
                "printf '%s\\n' " + requests.map { "'\($0)'" }.joined(separator: " ") + " | socat - UNIX-CONNECT:/tmp/agentd.sock",
                daemon: daemon)
            // Replies may come in any order: compare as sets of lines, parsed.
            let lines = stdout.split(separator: "\n").map(String.init)
            try expectBatch(.array(lines.map { try JSON(parsing: $0) }), equals: "[" + replies.joined(separator: ",") + "]")
            #expect(lines.contains(#"{"jsonrpc":"2.0","id":2,"result":{"any":["json",1.50]}}"#), "echo must keep 1.50 as written: \(lines)")
        }
    }
}
