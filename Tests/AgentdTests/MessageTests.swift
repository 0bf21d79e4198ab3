import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// Ids, params and the `system.*` methods, over NDJSON, through the daemon's connection handler in
/// process (`InProcessDaemon`): the bytes a socket would carry go in and come out as written.
@Suite("Requests, ids and params", .timeLimit(.minutes(1)))
struct MessageTests {
    /// Writes one NDJSON line and returns the next message's text as the server wrote it.
    static func exchange(_ client: InProcessClient, _ line: String) async throws -> String {
        try await client.write(line + "\n")
        return try await client.nextMessage()
    }

    @Test(
        "ids come back exactly as sent",
        arguments: ["9007199254740993", "1.50", #""abc""#, "null", #""x""#, "-7", "0", #""""#, #""\u00e9\"""#])
    func idsEchoedExactly(id: String) async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let line = try await Self.exchange(client, #"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"#)
            #expect(rawMember("id", in: line) == id, "reply: \(line)")
            let reply = try JSON(parsing: line)
            #expect(reply["result"] == .string("pong"), "reply: \(line)")
        }
    }

    @Test(
        "system.echo returns its params byte for byte",
        arguments: [
            #"{"b": [1, 2.50, -0, 1E+2, true, null, 9007199254740993], "a": "\u00e9 é \n\"", "z": {}, "y": []}"#,
            #"[ 1 , "two" , { } ]"#,
            #"{"nested":{"deeper":{"deepest":[[["x"]]]}}}"#,
            "{}",
            "[]",
        ])
    func echoIsExact(params: String) async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let line = try await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"system.echo","params":\#(params)}"#)
            #expect(rawMember("result", in: line) == params, "reply: \(line)")
            #expect(try JSON(parsing: line)["id"] == .integer(1))
        }
    }

    @Test("system.echo without params returns null")
    func echoWithoutParams() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let line = try await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"system.echo"}"#)
            #expect(rawMember("result", in: line) == "null", "reply: \(line)")
        }
    }

    @Test("system.ping and system.version")
    func pingAndVersion() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try expectReply(
                JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"system.ping"}"#)),
                equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            try expectReply(
                JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":2,"method":"system.version"}"#)),
                equals: #"{"jsonrpc":"2.0","id":2,"result":{"name":"agentd","version":"0.1.0","apiVersions":["1","2"]}}"#)
            let version = try await client.send(System.Version.self)
            #expect(version.name == "agentd" && version.version == "0.1.0" && version.apiVersions == ["1", "2"])
        }
    }

    @Test("params by position and by name")
    func paramsByPositionAndByName() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try expectReply(
                JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":[20]}"#)),
                equals: #"{"jsonrpc":"2.0","id":1,"result":{"sleptMs":20}}"#)
            try expectReply(
                JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":2,"method":"test.sleep","params":{"ms":20}}"#)),
                equals: #"{"jsonrpc":"2.0","id":2,"result":{"sleptMs":20}}"#)
        }
    }

    @Test("an unknown parameter name is refused with -32602 naming it")
    func unknownParameter() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let reply = try JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"msx":20}}"#))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}"#)
            #expect(reply["error"]?["data"]?["field"] == .string("msx"), "reply: \(reply)")
            let reason = reply["error"]?["data"]?["reason"]?.stringValue ?? ""
            #expect(reason.contains("unknown parameter"), "reply: \(reply)")
        }
    }

    @Test("a parameter of the wrong type is refused with -32602 naming it")
    func wrongParameterType() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let reply = try JSON(parsing: await Self.exchange(client, #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":"a"}}"#))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}"#)
            #expect(reply["error"]?["data"]?["field"] == .string("ms"), "reply: \(reply)")
            #expect(reply["error"]?["data"]?["reason"]?.stringValue != nil, "reply: \(reply)")
        }
    }
}

extension MessageTests {
    /// What only the binary shows: its command line and flags.
    @Suite("Requests, ids and params: the binary", .blockingIO, .timeLimit(.minutes(1)))
    struct Binary {
        @Test("agentd --version prints the version system.version answers")
        func versionFlag() throws {
            let version = try runCommand(TestPaths.agentdBinary, ["--version"])
            #expect(version.termination == .exited(0))
            #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        }

        /// A command-line flag: the binary decides (the in-process daemon has its configuration set
        /// directly).
        @Test("test methods exist only with --enable-test-methods")
        func testMethodsAreOptIn() throws {
            try withDaemon(testMethods: false) { daemon in
                let client = try daemon.connect()
                try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":1}}"#)
                try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#)
            }
        }
    }
}
