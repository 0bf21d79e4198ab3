import Testing

/// Ids, params and the `system.*` methods, over NDJSON.
@Suite("Requests, ids and params", .blockingIO, .timeLimit(.minutes(1)))
struct MessageTests {
    @Test(
        "ids come back exactly as sent",
        arguments: ["9007199254740993", "1.50", #""abc""#, "null", #""x""#, "-7", "0", #""""#, #""\u00e9\"""#])
    func idsEchoedExactly(id: String) throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"#)
            let line = try client.readLine()
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
    func echoIsExact(params: String) throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"system.echo","params":\#(params)}"#)
            let line = try client.readLine()
            #expect(rawMember("result", in: line) == params, "reply: \(line)")
            #expect(try JSON(parsing: line)["id"] == .integer(1))
        }
    }

    @Test("system.echo without params returns null")
    func echoWithoutParams() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"system.echo"}"#)
            let line = try client.readLine()
            #expect(rawMember("result", in: line) == "null", "reply: \(line)")
        }
    }

    @Test("system.ping and system.version")
    func pingAndVersion() throws {
        let version = try runCommand(TestPaths.agentdBinary, ["--version"])
        #expect(version.termination == .exited(0))
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        try withDaemon { daemon in
            let client = try daemon.connect()
            try expectReply(client.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            try client.send(line: #"{"jsonrpc":"2.0","id":2,"method":"system.version"}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":2,"result":{"name":"agentd","version":"0.1.0","apiVersions":["1","2"]}}"#)
        }
    }

    @Test("params by position and by name")
    func paramsByPositionAndByName() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":[20]}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":{"sleptMs":20}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","id":2,"method":"test.sleep","params":{"ms":20}}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":2,"result":{"sleptMs":20}}"#)
        }
    }

    @Test("an unknown parameter name is refused with -32602 naming it")
    func unknownParameter() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"msx":20}}"#)
            let reply = try client.readJSON()
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}"#)
            #expect(reply["error"]?["data"]?["field"] == .string("msx"), "reply: \(reply)")
            let reason = reply["error"]?["data"]?["reason"]?.stringValue ?? ""
            #expect(reason.contains("unknown parameter"), "reply: \(reply)")
        }
    }

    @Test("a parameter of the wrong type is refused with -32602 naming it")
    func wrongParameterType() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":"a"}}"#)
            let reply = try client.readJSON()
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}"#)
            #expect(reply["error"]?["data"]?["field"] == .string("ms"), "reply: \(reply)")
            #expect(reply["error"]?["data"]?["reason"]?.stringValue != nil, "reply: \(reply)")
        }
    }

    @Test("test methods exist only with --enable-test-methods")
    func testMethodsAreOptIn() throws {
        try withDaemon(testMethods: false) { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":1}}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#)
        }
    }
}
