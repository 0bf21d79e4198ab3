import Testing

/// Every example of the JSON-RPC 2.0 specification (§7, verbatim), sent to the real daemon over its
/// socket.
///
/// The spec's fixture methods map onto `system.echo`, which returns its params as given: `subtract`
/// and `sum` echo their params, `get_data` echoes `["hello", 5]`. Notification targets (`update`,
/// `foobar`, `notify_hello`, `notify_sum`) and `foo.get` stay unknown methods. Replies are compared
/// as parsed JSON, ignoring the optional `error.data`.
@Suite("JSON-RPC 2.0 specification examples", .blockingIO, .timeLimit(.minutes(1)))
struct SpecExampleTests {
    @Test("rpc call with positional parameters")
    func positionalParameters() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc": "2.0", "method": "system.echo", "params": [42, 23], "id": 1}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "result": [42, 23], "id": 1}"#)
            try client.send(line: #"{"jsonrpc": "2.0", "method": "system.echo", "params": [23, 42], "id": 2}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "result": [23, 42], "id": 2}"#)
        }
    }

    @Test("rpc call with named parameters")
    func namedParameters() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc": "2.0", "method": "system.echo", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "result": {"subtrahend": 23, "minuend": 42}, "id": 3}"#)
            try client.send(line: #"{"jsonrpc": "2.0", "method": "system.echo", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "result": {"minuend": 42, "subtrahend": 23}, "id": 4}"#)
        }
    }

    @Test(
        "a Notification gets no reply",
        arguments: [
            #"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#,
            #"{"jsonrpc": "2.0", "method": "foobar"}"#,
            // `update` mapped onto a method that exists: still no reply.
            #"{"jsonrpc": "2.0", "method": "system.echo", "params": [1,2,3,4,5]}"#,
            // A notification that fails (invalid params) is not answered either (§4.1).
            #"{"jsonrpc": "2.0", "method": "test.sleep", "params": {"msx": 1}}"#,
        ])
    func notification(_ notification: String) throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: notification)
            // Messages are read in order: the ping's reply comes after anything the notification caused.
            let reply = try client.ping(id: 99)
            try expectReply(reply, equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 99}"#)
            try client.expectNoData(within: .milliseconds(150))
        }
    }

    @Test("rpc call of non-existent method")
    func nonExistentMethod() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#)
            let reply = try client.readJSON()
            try expectReply(reply, equals: #"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#)
            #expect(reply["error"]?["data"]?["method"] == .string("foobar"))
        }
    }

    @Test("rpc call with invalid JSON")
    func invalidJSON() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
            // The connection survives a parse error.
            try expectReply(client.ping(id: 2), equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 2}"#)
        }
    }

    @Test("rpc call with invalid Request object")
    func invalidRequestObject() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        }
    }

    static let invalidJSONBatch = """
        [
          {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method"
        ]
        """

    @Test("rpc call Batch, invalid JSON (verbatim, with line breaks, in Content-Length framing)")
    func batchInvalidJSONMultiline() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.sendLSP(body: Self.invalidJSONBatch)
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
        }
    }

    @Test("rpc call Batch, invalid JSON (on one line)")
    func batchInvalidJSONOneLine() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: Self.invalidJSONBatch.replacingOccurrences(of: "\n", with: ""))
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("rpc call with an empty Array")
    func emptyBatch() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: "[]")
            // One single response object, not an array (§6).
            try expectReply(client.readJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        }
    }

    @Test("rpc call with an invalid Batch (but not empty)")
    func invalidBatchOfOne() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: "[1]")
            try expectReply(client.readJSON(), equals: """
                [
                  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
                ]
                """)
        }
    }

    @Test("rpc call with invalid Batch")
    func invalidBatch() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: "[1,2,3]")
            try expectReply(client.readJSON(), equals: """
                [
                  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
                  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
                ]
                """)
        }
    }

    static let mixedBatch = """
        [
          {"jsonrpc": "2.0", "method": "system.echo", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
          {"jsonrpc": "2.0", "method": "system.echo", "params": [42,23], "id": "2"},
          {"foo": "boo"},
          {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
          {"jsonrpc": "2.0", "method": "system.echo", "params": ["hello", 5], "id": "9"}
        ]
        """

    static let mixedBatchReply = """
        [
          {"jsonrpc": "2.0", "result": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "result": [42,23], "id": "2"},
          {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
          {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
          {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
        ]
        """

    @Test("rpc call Batch (NDJSON, one line)")
    func mixedBatch() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: Self.mixedBatch.replacingOccurrences(of: "\n", with: ""))
            // A batch reply is one JSON array on one line.
            try expectBatch(client.readJSON(), equals: Self.mixedBatchReply)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("rpc call Batch (verbatim, with line breaks, in Content-Length framing)")
    func mixedBatchLSP() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.sendLSP(body: Self.mixedBatch)
            try expectBatch(client.readLSPJSON(), equals: Self.mixedBatchReply)
        }
    }

    @Test("rpc call Batch (all notifications) returns nothing at all")
    func allNotificationBatch() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#)
            // The only reply must be the ping's: no empty array, no error for the batch.
            try expectReply(client.ping(id: 7), equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 7}"#)
            try client.expectNoData(within: .milliseconds(150))
        }
    }

    @Test("rpc call Batch (all notifications, verbatim, Content-Length framing) returns nothing at all")
    func allNotificationBatchLSP() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.sendLSP(body: """
                [
                  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
                  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
                ]
                """)
            try client.sendLSP(body: #"{"jsonrpc":"2.0","id":7,"method":"system.ping"}"#)
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 7}"#)
            try client.expectNoData(within: .milliseconds(150))
        }
    }
}
