import AgentdTesting
import RPC
import Testing

/// Every example of the JSON-RPC 2.0 specification (§7, verbatim), sent as the bytes a socket would
/// carry to the daemon's connection handler in process (`InProcessDaemon`): the protocol engine is
/// the same handler as over the socket. The examples in Content-Length framing stay on the real
/// daemon (`SpecExampleTests.Framing`): framing is what only the socket shows.
///
/// The spec's fixture methods map onto `system.echo`, which returns its params as given: `subtract`
/// and `sum` echo their params, `get_data` echoes `["hello", 5]`. Notification targets (`update`,
/// `foobar`, `notify_hello`, `notify_sum`) and `foo.get` stay unknown methods. Replies are compared
/// as parsed JSON, ignoring the optional `error.data`.
@Suite("JSON-RPC 2.0 specification examples", .timeLimit(.minutes(1)))
struct SpecExampleTests {
    /// `system.ping` with `id`, written as one NDJSON line; its reply (the next message: messages
    /// come in order, so anything an earlier request caused comes before it), parsed.
    static func ping(_ client: InProcessClient, id: Int) async throws -> JSON {
        try await client.write(#"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"# + "\n")
        return try JSON(parsing: await client.nextMessage())
    }

    /// No message within `within`, as the live tests' `expectNoData`: a reply that should not exist
    /// could only come late, so the wait bounds the check rather than sequencing the test.
    static func expectNoMessage(
        _ client: InProcessClient, within: Duration, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        do {
            let message = try await client.nextMessage(timeout: within)
            Issue.record("expected no message, received \(message)\(comment.map { " (\($0))" } ?? "")", sourceLocation: sourceLocation)
        } catch InProcessClientError.timedOut {
            // Nothing came: as expected.
        }
    }

    @Test("rpc call with positional parameters")
    func positionalParameters() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc": "2.0", "method": "system.echo", "params": [42, 23], "id": 1}"# + "\n")
            try expectReply(JSON(parsing: await client.nextMessage()), equals: #"{"jsonrpc": "2.0", "result": [42, 23], "id": 1}"#)
            try await client.write(#"{"jsonrpc": "2.0", "method": "system.echo", "params": [23, 42], "id": 2}"# + "\n")
            try expectReply(JSON(parsing: await client.nextMessage()), equals: #"{"jsonrpc": "2.0", "result": [23, 42], "id": 2}"#)
        }
    }

    @Test("rpc call with named parameters")
    func namedParameters() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc": "2.0", "method": "system.echo", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"# + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()), equals: #"{"jsonrpc": "2.0", "result": {"subtrahend": 23, "minuend": 42}, "id": 3}"#)
            try await client.write(#"{"jsonrpc": "2.0", "method": "system.echo", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"# + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()), equals: #"{"jsonrpc": "2.0", "result": {"minuend": 42, "subtrahend": 23}, "id": 4}"#)
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
    func notification(_ notification: String) async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(notification + "\n")
            // Messages are read in order: the ping's reply comes after anything the notification caused.
            let reply = try await Self.ping(client, id: 99)
            try expectReply(reply, equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 99}"#)
            try await Self.expectNoMessage(client, within: .milliseconds(150))
        }
    }

    @Test("rpc call of non-existent method")
    func nonExistentMethod() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"# + "\n")
            let reply = try JSON(parsing: await client.nextMessage())
            try expectReply(reply, equals: #"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#)
            #expect(reply["error"]?["data"]?["method"] == .string("foobar"))
        }
    }

    @Test("rpc call with invalid JSON")
    func invalidJSON() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"# + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
            // The connection survives a parse error.
            try expectReply(await Self.ping(client, id: 2), equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 2}"#)
        }
    }

    @Test("rpc call with invalid Request object")
    func invalidRequestObject() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"# + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        }
    }

    static let invalidJSONBatch = """
        [
          {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method"
        ]
        """

    @Test("rpc call Batch, invalid JSON (on one line)")
    func batchInvalidJSONOneLine() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(Self.invalidJSONBatch.replacingOccurrences(of: "\n", with: "") + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
            try await Self.expectNoMessage(client, within: .milliseconds(100))
        }
    }

    @Test("rpc call with an empty Array")
    func emptyBatch() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write("[]" + "\n")
            // One single response object, not an array (§6).
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#)
        }
    }

    @Test("rpc call with an invalid Batch (but not empty)")
    func invalidBatchOfOne() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write("[1]" + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: """
                    [
                      {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
                    ]
                    """)
        }
    }

    @Test("rpc call with invalid Batch")
    func invalidBatch() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write("[1,2,3]" + "\n")
            try expectReply(
                JSON(parsing: await client.nextMessage()),
                equals: """
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
    func mixedBatch() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(Self.mixedBatch.replacingOccurrences(of: "\n", with: "") + "\n")
            // A batch reply is one JSON array on one line.
            try expectBatch(JSON(parsing: await client.nextMessage()), equals: Self.mixedBatchReply)
            try await Self.expectNoMessage(client, within: .milliseconds(100))
        }
    }

    @Test("rpc call Batch (all notifications) returns nothing at all")
    func allNotificationBatch() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(
                #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#
                    + "\n")
            // The only reply must be the ping's: no empty array, no error for the batch.
            try expectReply(await Self.ping(client, id: 7), equals: #"{"jsonrpc": "2.0", "result": "pong", "id": 7}"#)
            try await Self.expectNoMessage(client, within: .milliseconds(150))
        }
    }
}

extension SpecExampleTests {
    /// The specification's examples in Content-Length framing, over the real daemon's socket: which
    /// framing a reply uses is what only the socket shows (`InProcessClient` reads either framing).
    @Suite("JSON-RPC 2.0 specification examples: Content-Length framing on the socket", .blockingIO, .timeLimit(.minutes(1)))
    struct Framing {
        @Test("rpc call Batch, invalid JSON (verbatim, with line breaks, in Content-Length framing)")
        func batchInvalidJSONMultiline() throws {
            try withDaemon { daemon in
                let client = try daemon.connect()
                try client.sendLSP(body: SpecExampleTests.invalidJSONBatch)
                try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#)
            }
        }

        @Test("rpc call Batch (verbatim, with line breaks, in Content-Length framing)")
        func mixedBatchLSP() throws {
            try withDaemon { daemon in
                let client = try daemon.connect()
                try client.sendLSP(body: SpecExampleTests.mixedBatch)
                try expectBatch(client.readLSPJSON(), equals: SpecExampleTests.mixedBatchReply)
            }
        }

        @Test("rpc call Batch (all notifications, verbatim, Content-Length framing) returns nothing at all")
        func allNotificationBatchLSP() throws {
            try withDaemon { daemon in
                let client = try daemon.connect()
                try client.sendLSP(
                    body: """
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
}
