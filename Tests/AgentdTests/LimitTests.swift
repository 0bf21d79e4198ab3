import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// Limits fail politely: an error with `data: {setting, limit, actual}` and the request's id when
/// it can be read, and the connection stays usable (except the connection limits, which close).
/// Live: what the socket's framing (NDJSON and Content-Length, messages arriving in pieces) and the
/// socket server (connection counts) do; the dispatcher's limits are in `InProcessLimitTests`.
@Suite("Limits over the socket", .blockingIO, .timeLimit(.minutes(1)))
struct LimitTests {
    /// An echo request whose `pad` string makes the whole line exactly `size` bytes (no newline).
    static func echoRequest(id: String, size: Int, idFirst: Bool = true) -> String {
        let head =
            idFirst
            ? #"{"jsonrpc":"2.0","id":\#(id),"method":"system.echo","params":{"pad":""#
            : #"{"jsonrpc":"2.0","method":"system.echo","params":{"pad":""#
        let tail = idFirst ? #""}}"# : #""},"id":\#(id)}"#
        let padding = size - head.utf8.count - tail.utf8.count
        precondition(padding >= 0)
        return head + String(repeating: "x", count: padding) + tail
    }

    static func expectLimitError(
        _ reply: JSON, code: Int, id: JSON, setting: String, limit: Int, actual: Int?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(reply["jsonrpc"] == .string("2.0"), "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["id"] == id, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["result"] == nil, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply.errorCode == code, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["error"]?["message"]?.stringValue != nil, "reply: \(reply)", sourceLocation: sourceLocation)
        let data = reply["error"]?["data"]
        #expect(data?["setting"] == .string(setting), "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(data?["limit"] == .integer(Int64(limit)), "reply: \(reply)", sourceLocation: sourceLocation)
        if let actual {
            #expect(data?["actual"] == .integer(Int64(actual)), "reply: \(reply)", sourceLocation: sourceLocation)
        } else {
            #expect((data?["actual"]?.intValue ?? Int.min) > limit, "reply: \(reply)", sourceLocation: sourceLocation)
        }
    }

    @Test("NDJSON: a message over --max-message-bytes gets -32010 with its id; the next message is served")
    func messageTooLargeNDJSON() throws {
        try withDaemon(["--max-message-bytes", "1024"]) { daemon in
            let client = try daemon.connect()
            // Exactly at the limit: served.
            try client.send(line: Self.echoRequest(id: "1", size: 1024))
            let atLimit = try client.readJSON()
            #expect(atLimit["id"] == .integer(1) && atLimit["result"]?["pad"] != nil, "reply: \(atLimit)")

            // One byte over.
            try client.send(line: Self.echoRequest(id: "2", size: 1025))
            Self.expectLimitError(try client.readJSON(), code: -32010, id: .integer(2), setting: "max_message_bytes", limit: 1024, actual: 1025)
            try expectReply(client.ping(id: 3), equals: #"{"jsonrpc":"2.0","id":3,"result":"pong"}"#)

            // Far over (skipped as it streams in, never buffered), with CRLF.
            try client.send(raw: Self.echoRequest(id: #""big""#, size: 2_000_000) + "\r\n")
            Self.expectLimitError(
                try client.readJSON(), code: -32010, id: .string("big"), setting: "max_message_bytes", limit: 1024, actual: 2_000_000)
            try expectReply(client.ping(id: 4), equals: #"{"jsonrpc":"2.0","id":4,"result":"pong"}"#)

            // The id only appears after the first 4 KiB: answered with a null id.
            try client.send(line: Self.echoRequest(id: "5", size: 10_000, idFirst: false))
            Self.expectLimitError(try client.readJSON(), code: -32010, id: .null, setting: "max_message_bytes", limit: 1024, actual: 10_000)
            try expectReply(client.ping(id: 6), equals: #"{"jsonrpc":"2.0","id":6,"result":"pong"}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("an oversized message arriving in pieces keeps the id found in its first 4 KiB; a nested \"id\" is not the id")
    func messageTooLargeInPieces() throws {
        try withDaemon(["--max-message-bytes", "1024"]) { daemon in
            let ndjson = try daemon.connect()
            let lsp = try RPCTestClient(path: daemon.socketPath)
            // The id sits past the first piece but inside the first 4 KiB.
            let request = Self.echoRequest(id: #""mid""#, size: 3000, idFirst: false)
            for (client, bytes) in [(ndjson, Array((request + "\n").utf8)), (lsp, Array(RPCTestClient.lspFrame(body: request).utf8))] {
                try client.send(bytes: Array(bytes[..<1100]))
                // Not answered before it is complete (this also lets the server read the first piece alone).
                try client.expectNoData(within: .milliseconds(50))
                try client.send(bytes: Array(bytes[1100...]))
            }
            Self.expectLimitError(try ndjson.readJSON(), code: -32010, id: .string("mid"), setting: "max_message_bytes", limit: 1024, actual: 3000)
            Self.expectLimitError(try lsp.readLSPJSON(), code: -32010, id: .string("mid"), setting: "max_message_bytes", limit: 1024, actual: 3000)

            // Only a top-level "id" counts: an "id" inside params is not the request's.
            let nested =
                #"{"jsonrpc":"2.0","method":"system.echo","params":{"id":"inner","pad":""# + String(repeating: "x", count: 5000)
                + #""},"id":"outer"}"#
            try ndjson.send(line: nested)
            Self.expectLimitError(
                try ndjson.readJSON(), code: -32010, id: .null, setting: "max_message_bytes", limit: 1024, actual: nested.utf8.count)
            try expectReply(ndjson.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        }
    }

    @Test("Content-Length: a message over --max-message-bytes gets -32010 with its id; the next message is served")
    func messageTooLargeContentLength() throws {
        try withDaemon(["--max-message-bytes", "1024"]) { daemon in
            let client = try daemon.connect()
            try client.sendLSP(body: Self.echoRequest(id: "1", size: 1024))
            let atLimit = try client.readLSPJSON()
            #expect(atLimit["id"] == .integer(1) && atLimit["result"]?["pad"] != nil, "reply: \(atLimit)")

            try client.sendLSP(body: Self.echoRequest(id: "2", size: 5000), extraHeaders: ["Content-Type: application/json"])
            Self.expectLimitError(try client.readLSPJSON(), code: -32010, id: .integer(2), setting: "max_message_bytes", limit: 1024, actual: 5000)
            try client.sendLSP(body: #"{"jsonrpc":"2.0","id":3,"method":"system.ping"}"#)
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc":"2.0","id":3,"result":"pong"}"#)

            // Oversized message and the next one in the same write.
            try client.send(
                raw: RPCTestClient.lspFrame(body: Self.echoRequest(id: "4", size: 300_000))
                    + RPCTestClient.lspFrame(body: #"{"jsonrpc":"2.0","id":5,"method":"system.ping"}"#))
            Self.expectLimitError(try client.readLSPJSON(), code: -32010, id: .integer(4), setting: "max_message_bytes", limit: 1024, actual: 300_000)
            try expectReply(client.readLSPJSON(), equals: #"{"jsonrpc":"2.0","id":5,"result":"pong"}"#)
        }
    }

    /// Opens `limit` connections, checks the next is refused with `code` and closed while the
    /// first ones still work, and that closing one frees its slot.
    static func checkConnectionLimit(flag: String, setting: String, code: Int) throws {
        let limit = 2
        try withDaemon([flag, String(limit)]) { daemon in
            // The first connection retries until the daemon listens, so no probe uses up a slot.
            var admitted = [try daemon.connect()]
            admitted.append(try RPCTestClient(path: daemon.socketPath))
            for (index, client) in admitted.enumerated() {
                try expectReply(client.ping(id: index), equals: #"{"jsonrpc":"2.0","id":\#(index),"result":"pong"}"#)
            }

            let refused = try RPCTestClient(path: daemon.socketPath)
            let line = try refused.readLine()
            Self.expectLimitError(try JSON(parsing: line), code: code, id: .null, setting: setting, limit: limit, actual: limit + 1)
            #expect(try refused.readUntilEOF() == "", "the refused connection must be closed after the error")

            for (index, client) in admitted.enumerated() {
                try expectReply(client.ping(id: 10 + index), equals: #"{"jsonrpc":"2.0","id":\#(10 + index),"result":"pong"}"#)
            }

            // Closing a connection frees its slot (released asynchronously: retry until admitted).
            admitted.removeFirst().close()
            let deadline = Deadline(.seconds(30))
            while true {
                let client = try RPCTestClient(path: daemon.socketPath)
                // A refused connection may already be closed by the time we send: then the
                // refusal line is still there to read.
                try? client.send(line: #"{"jsonrpc":"2.0","id":"again","method":"system.ping"}"#)
                let reply = try client.readJSON()
                if reply.errorCode == code, !deadline.hasPassed { continue }
                try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":"again","result":"pong"}"#)
                break
            }
        }
    }

    @Test("--max-connections: the connection past the limit gets -32013 and is closed; the others still work")
    func connectionLimit() throws {
        try Self.checkConnectionLimit(flag: "--max-connections", setting: "max_connections", code: -32013)
    }

    @Test("--max-connections-per-uid: the connection past the limit gets -32014 and is closed; the others still work")
    func perUIDConnectionLimit() throws {
        try Self.checkConnectionLimit(flag: "--max-connections-per-uid", setting: "max_connections_per_uid", code: -32014)
    }
}

/// The dispatcher's limits (JSON depth, batch length, request timeout, calls in flight), in process.
@Suite("Limits (in process)", .timeLimit(.minutes(1)))
struct InProcessLimitTests {
    static func json(_ text: String) throws -> JSONValue { try JSONFragment(unchecked: text).decode(JSONValue.self) }

    static func next(_ client: InProcessClient) async throws -> JSONValue { try json(await client.nextMessage()) }

    static func ping(_ client: InProcessClient, id: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await client.write(#"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"# + "\n")
        #expect(try await next(client) == json(#"{"jsonrpc":"2.0","id":\#(id),"result":"pong"}"#), sourceLocation: sourceLocation)
    }

    static func expectNothing(from client: InProcessClient, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) async {
        let message = try? await client.nextMessage(timeout: .milliseconds(100))
        #expect(message == nil, comment, sourceLocation: sourceLocation)
    }

    /// `LimitTests.expectLimitError` on a decoded reply.
    static func expectLimitError(
        _ reply: JSONValue, code: Int, id: JSONValue, setting: String, limit: Int, actual: Int?, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(reply["jsonrpc"] == .string("2.0"), "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["id"] == id, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["result"] == nil, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["error"]?["code"]?.intValue == code, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(reply["error"]?["message"]?.stringValue != nil, "reply: \(reply)", sourceLocation: sourceLocation)
        let data = reply["error"]?["data"]
        #expect(data?["setting"] == .string(setting), "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(data?["limit"]?.intValue == limit, "reply: \(reply)", sourceLocation: sourceLocation)
        if let actual {
            #expect(data?["actual"]?.intValue == actual, "reply: \(reply)", sourceLocation: sourceLocation)
        } else {
            #expect((data?["actual"]?.intValue ?? Int.min) > limit, "reply: \(reply)", sourceLocation: sourceLocation)
        }
    }

    @Test("nesting deeper than max_json_depth gets -32011 with the id; the connection stays usable")
    func nestingTooDeep() async throws {
        try await withInProcessDaemon(configure: { $0.limits.maxJSONDepth = 8 }) { daemon in
            let client = try await daemon.connect()
            let deep = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
            try await client.write(#"{"jsonrpc":"2.0","id":"deep","method":"system.echo","params":\#(deep)}"# + "\n")
            Self.expectLimitError(try await Self.next(client), code: -32011, id: .string("deep"), setting: "max_json_depth", limit: 8, actual: nil)
            // Shallow nesting is fine.
            try await client.write(#"{"jsonrpc":"2.0","id":2,"method":"system.echo","params":[[1]]}"# + "\n")
            #expect(try await Self.next(client) == Self.json(#"{"jsonrpc":"2.0","id":2,"result":[[1]]}"#))
            // The id is kept when it comes after the deep part too.
            try await client.write(#"{"jsonrpc":"2.0","method":"system.echo","params":\#(deep),"id":"late"}"# + "\n")
            Self.expectLimitError(try await Self.next(client), code: -32011, id: .string("late"), setting: "max_json_depth", limit: 8, actual: nil)
            // Inside a batch, the member is answered with its id.
            try await client.write(#"[{"jsonrpc":"2.0","method":"system.echo","params":\#(deep),"id":"member"}]"# + "\n")
            let batch = try await Self.next(client)
            if let member = batch.arrayValue?.first {
                Self.expectLimitError(member, code: -32011, id: .string("member"), setting: "max_json_depth", limit: 8, actual: nil)
            } else {
                Issue.record("expected a batch reply, got \(batch)")
            }
            try await Self.ping(client, id: 3)
        }
    }

    @Test("a million levels of nesting under the default limit: -32011, and the daemon lives on")
    func extremeNesting() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let levels = 1_000_000
            try await client.write(
                #"{"jsonrpc":"2.0","id":1,"method":"system.echo","params":"# + String(repeating: "[", count: levels)
                    + String(repeating: "]", count: levels) + "}\n")
            let reply = try await Self.next(client)
            #expect(reply["id"]?.intValue == 1, "reply: \(reply)")
            #expect(reply["error"]?["code"]?.intValue == -32011, "reply: \(reply)")
            #expect(reply["error"]?["data"]?["setting"] == .string("max_json_depth"), "reply: \(reply)")
            try await Self.ping(client, id: 2)
        }
    }

    @Test("a notification nested deeper than max_json_depth is not answered")
    func nestingTooDeepNotification() async throws {
        try await withInProcessDaemon(configure: { $0.limits.maxJSONDepth = 8 }) { daemon in
            let client = try await daemon.connect()
            let deep = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
            try await client.write(#"{"jsonrpc":"2.0","method":"system.echo","params":\#(deep)}"# + "\n")
            // Notifications are never answered, even with errors: the only reply is the ping's.
            try await Self.ping(client, id: 3)
            await Self.expectNothing(from: client)
        }
    }

    @Test("a batch longer than max_batch_length gets one -32012 error; a batch at the limit is served")
    func batchTooLarge() async throws {
        try await withInProcessDaemon(configure: { $0.limits.maxBatchLength = 3 }) { daemon in
            let client = try await daemon.connect()
            let member = { (id: Int) in #"{"jsonrpc":"2.0","id":\#(id),"method":"system.ping"}"# }
            try await client.write("[" + (1...4).map(member).joined(separator: ",") + "]\n")
            let reply = try await Self.next(client)
            #expect(reply.arrayValue == nil, "an over-long batch is answered with one error object: \(reply)")
            if case .object(let members) = reply { #expect(members.keys.contains("id"), "reply: \(reply)") } else { Issue.record("reply: \(reply)") }
            #expect(reply["error"]?["code"]?.intValue == -32012, "reply: \(reply)")
            #expect(reply["error"]?["data"]?["setting"] == .string("max_batch_length"), "reply: \(reply)")
            #expect(reply["error"]?["data"]?["limit"]?.intValue == 3, "reply: \(reply)")
            #expect(reply["error"]?["data"]?["actual"]?.intValue == 4, "reply: \(reply)")
            await Self.expectNothing(from: client, "none of the over-long batch's calls may run")

            try await client.write("[" + (5...7).map(member).joined(separator: ",") + "]\n")
            let batch = try #require(try await Self.next(client).arrayValue)
            #expect(Set(batch) == Set(try (5...7).map { try Self.json(#"{"jsonrpc":"2.0","id":\#($0),"result":"pong"}"#) }))
            #expect(batch.count == 3)
        }
    }

    /// The timeout runs on the connection's event loop: it fires when the test moves that clock.
    @Test("request_timeout: a call running too long gets -32001")
    func requestTimeout() async throws {
        try await withInProcessDaemon(configure: { $0.limits.requestTimeout = .milliseconds(200) }) { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":1,"method":"test.sleep","params":{"ms":120000}}"# + "\n")
            // Answered after the sleep was dispatched: its timer is set by then.
            try await Self.ping(client, id: 0)
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(200))
            let reply = try await Self.next(client)
            #expect(reply["id"]?.intValue == 1, "reply: \(reply)")
            #expect(reply["error"]?["code"]?.intValue == -32001, "reply: \(reply)")
            let data = reply["error"]?["data"]
            #expect(data?["setting"]?.stringValue != nil, "reply: \(reply)")
            #expect(data?["limit"]?.intValue == 200, "reply: \(reply)")
            #expect((data?["actual"]?.intValue ?? 0) >= 200, "reply: \(reply)")
            try await Self.ping(client, id: 2)
        }
    }

    @Test("max_in_flight: past the limit the server stops reading instead of failing calls")
    func maxInFlightIsBackpressure() async throws {
        try await withInProcessDaemon(configure: { $0.limits.maxInFlightPerConnection = 2 }) { daemon in
            let client = try await daemon.connect()
            let count = 12
            var payload = ""
            for id in 1...count { payload += #"{"jsonrpc":"2.0","id":\#(id),"method":"test.sleep","params":{"ms":30}}"# + "\n" }
            try await client.write(payload)
            var seen = Set<Int>()
            for _ in 1...count {
                let reply = try await Self.next(client)
                #expect(reply["result"] == (try Self.json(#"{"sleptMs":30}"#)), "reply: \(reply)")
                if let id = reply["id"]?.intValue { seen.insert(id) }
            }
            #expect(seen == Set(1...count))
        }
    }
}
