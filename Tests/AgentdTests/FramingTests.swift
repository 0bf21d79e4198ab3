import Testing

/// Framing, detected per connection from the first non-whitespace byte: NDJSON or LSP
/// `Content-Length`; replies use the connection's framing. Also how bytes may be split or joined.
@Suite("Framing", .blockingIO, .timeLimit(.minutes(1)))
struct FramingTests {
    static let ping1 = #"{"jsonrpc":"2.0","id":1,"method":"system.ping"}"#
    static let ping2 = #"{"jsonrpc":"2.0","id":2,"method":"system.ping"}"#

    @Test("Content-Length framing with an extra Content-Type header; the reply is framed the same way")
    func contentLengthWithContentType() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.sendLSP(body: Self.ping1, extraHeaders: ["Content-Type: application/vscode-jsonrpc; charset=utf-8"])
            // readLSPMessage checks the header block and that the body has Content-Length bytes.
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            try client.send(
                raw: "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: \(Self.ping2.utf8.count)\r\n\r\n\(Self.ping2)")
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("Content-Length framing: lowercase header, multi-byte UTF-8 body, several messages in one write")
    func contentLengthDetails() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let echo = #"{"jsonrpc":"2.0","id":3,"method":"system.echo","params":["héllo ✓ 🚀"]}"#
            try client.send(
                raw:
                    "content-length: \(Self.ping1.utf8.count)\r\n\r\n\(Self.ping1)"
                    + RPCTestClient.lspFrame(body: echo)
                    + RPCTestClient.lspFrame(body: Self.ping2))
            var replies: [JSON] = []
            for _ in 0..<3 { replies.append(try client.readLSPJSON()) }
            try expectBatch(
                .array(replies),
                equals: """
                    [{"jsonrpc":"2.0","id":1,"result":"pong"},
                     {"jsonrpc":"2.0","id":3,"result":["héllo ✓ 🚀"]},
                     {"jsonrpc":"2.0","id":2,"result":"pong"}]
                    """)
        }
    }

    @Test("NDJSON: CRLF line ends, blank lines and leading whitespace are fine")
    func crlfAndBlankLines() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(raw: "\r\n\n  \r\n" + Self.ping1 + "\r\n\r\n\n\n" + Self.ping2 + "\r\n\r\n")
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            // Blank lines are not messages: no parse errors for them.
            try client.expectNoData(within: .milliseconds(150))
        }
    }

    @Test("a request sent one byte at a time is answered once, when complete")
    func oneByteAtATime() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let request = Array(#"{"jsonrpc":"2.0","id":"bytes","method":"system.echo","params":{"k":"v"}}"#.utf8) + [0x0A]
            for (offset, byte) in request.enumerated() {
                try client.send(bytes: [byte])
                // No reply to a partial message (this poll also lets the server read each byte alone).
                if offset < request.count - 1 { try client.expectNoData(within: .milliseconds(2)) }
            }
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":"bytes","result":{"k":"v"}}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("a Content-Length message split inside its header and body is reassembled")
    func lspSplitInHeader() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let frame = RPCTestClient.lspFrame(body: Self.ping1, extraHeaders: ["Content-Type: application/json"])
            let bytes = Array(frame.utf8)
            // "Content-Len" | "gth: 47\r\nContent-Type: application/json\r" | "\n\r" | "\n{...half" | "...}"
            let cuts = [11, frame.utf8.count - Self.ping1.utf8.count - 3, frame.utf8.count - Self.ping1.utf8.count - 1, bytes.count - 20]
            var start = 0
            for cut in cuts {
                try client.send(bytes: Array(bytes[start..<cut]))
                try client.expectNoData(within: .milliseconds(30), "partial frame must not be answered")
                start = cut
            }
            try client.send(bytes: Array(bytes[start...]))
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        }
    }

    @Test("many requests coalesced into one write are each answered")
    func coalescedWrites() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let count = 200
            var payload = ""
            for id in 1...count {
                payload +=
                    id.isMultiple(of: 2)
                    ? #"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"# + "\n"
                    : #"{"jsonrpc":"2.0","id":\#(id),"method":"system.echo","params":[\#(id)]}"# + "\n"
            }
            try client.send(raw: payload)
            var seen = Set<Int>()
            for _ in 1...count {
                let reply = try client.readJSON()
                guard let id = reply["id"]?.intValue else {
                    Issue.record("reply without an integer id: \(reply)")
                    continue
                }
                #expect(seen.insert(id).inserted, "id \(id) answered twice")
                let expected: JSON = id.isMultiple(of: 2) ? .string("pong") : .array([.integer(Int64(id))])
                #expect(reply["result"] == expected, "reply: \(reply)")
            }
            #expect(seen == Set(1...count))
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("a final line without newline is answered after the client half-closes, then the server closes")
    func finalLineWithoutNewline() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(raw: Self.ping1 + "\n" + Self.ping2)
            client.shutdownWrite()
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            #expect(try client.readUntilEOF() == "")
        }
    }

    @Test("after a half-close the server still answers calls in flight, then closes")
    func halfCloseWithCallInFlight() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":300}}"#)
            client.shutdownWrite()
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":{"sleptMs":300}}"#)
            #expect(try client.readUntilEOF() == "")
        }
    }

    @Test(
        "a broken Content-Length header is answered with -32015, then the connection closes",
        arguments: [
            BrokenHeader("Content-Length: abc\r\n\r\n{}"),
            BrokenHeader("Content-Type: application/json\r\n\r\n{}"),
            BrokenHeader("Content-Length: 2\r\nno colon here\r\n\r\n{}"),
            BrokenHeader("Content-Length: 99999999999999999999999\r\n\r\n{}"),
        ])
    func framingError(input: BrokenHeader) throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(raw: input.bytes)
            let reply = try client.readLSPJSON()
            #expect(reply["error"]?["code"] == .integer(-32015), "reply: \(reply)")
            #expect(reply["id"] == .null, "reply: \(reply)")
            #expect(try client.readUntilEOF() == "")
            // The daemon itself is fine.
            try expectReply(daemon.connect().ping(id: 5), equals: #"{"jsonrpc":"2.0","id":5,"result":"pong"}"#)
        }
    }
}

/// Raw input shown escaped in test names.
struct BrokenHeader: CustomTestStringConvertible, Sendable {
    let bytes: String
    init(_ bytes: String) { self.bytes = bytes }
    var testDescription: String { bytes.debugDescription }
}
