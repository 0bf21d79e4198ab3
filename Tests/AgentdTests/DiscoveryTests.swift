import Foundation
import Testing

/// The published contract (`rpc.discover`, `agentd openrpc`, schema/openrpc-vN.json) and the README's
/// socat one-liner.
@Suite("Discovery and documentation", .blockingIO, .timeLimit(.minutes(1)))
struct DiscoveryTests {
    @Test("rpc.discover lists the system methods and the server.shuttingDown notification")
    func discover() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#)
            let reply = try client.readJSON()
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
    func discoverMatchesOpenRPCCommand(version: String?) throws {
        let printed = try runCommand(TestPaths.agentdBinary, ["openrpc", "--api-version", version ?? "1"])
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        let expected = try JSON(parsing: printed.stdout)
        try withDaemon(testMethods: false) { daemon in
            let client = try daemon.connect()
            let params = version.map { #","params":{"version":"\#($0)"}"# } ?? ""
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"\#(params)}"#)
            let reply = try client.readJSON()
            let served = try #require(reply["result"], "reply: \(reply)")
            let difference = served.firstDifference(from: expected)
            #expect(difference == nil, "rpc.discover (left) and `agentd openrpc` (right) differ")
        }
    }

    @Test("schema/openrpc-vN.json is up to date with `agentd openrpc --api-version N`", arguments: ["1", "2"])
    func schemaFileIsCurrent(version: String) throws {
        let name = "schema/openrpc-v\(version).json"
        let committed = try #require(
            FileManager.default.contents(atPath: TestPaths.repositoryRoot.appendingPathComponent(name).path), "\(name) is missing: run `make schema`")
        let printed = try runCommand(TestPaths.agentdBinary, ["openrpc", "--api-version", version])
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        let difference = try JSON(parsing: committed).firstDifference(from: JSON(parsing: printed.stdout))
        #expect(difference == nil, "\(name) (left) is stale, it differs from `agentd openrpc` (right): run `make schema` and commit the result")
    }

    /// A published version's contract never changes: schema/published.sha256 pins its document.
    /// New methods and changes go into the newest, unpublished version.
    @Test("published API versions' documents are unchanged (schema/published.sha256)")
    func publishedVersionsAreFrozen() throws {
        let check = try runCommand("/bin/sh", ["-c", "cd '\(TestPaths.repositoryRoot.appendingPathComponent("schema").path)' && sha256sum --check --strict published.sha256"])
        #expect(
            check.termination == .exited(0),
            "a published API version's document changed (\(check.stdout)\(check.stderr)): its clients rely on it; make the change in the newest version instead")
    }

    static func requireSocat() throws {
        let socat = ["/usr/bin/socat", "/bin/socat", "/usr/local/bin/socat"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(socat != nil, "socat is not installed (make deps installs it)")
    }

    /// Runs a README shell example with `/tmp/agentd.sock` replaced by the test's socket.
    static func runReadmeExample(_ command: String, daemon: DaemonProcess) throws -> String {
        try daemon.waitUntilConnectable()
        let run = try runCommand("/bin/sh", ["-c", command.replacingOccurrences(of: "/tmp/agentd.sock", with: daemon.socketPath)], timeout: .seconds(10))
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
