import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import RPC

/// Methods for the engine tests (the JSON-RPC spec's fixtures and a few controllable ones).
enum Fixtures {
    enum Subtract: RPCMethod {
        static let name = "subtract"
        static let summary = "minuend - subtrahend"
        static let rateClass: RPCRateClassName = .read
        struct Params: Codable, Sendable {
            var minuend: Int
            var subtrahend: Int
        }
        typealias Result = Int
    }

    enum GetData: RPCMethod {
        static let name = "get_data"
        static let summary = "Returns [\"hello\", 5]."
        static let rateClass: RPCRateClassName = .read
        typealias Result = JSONFragment
    }

    enum Echo: RPCMethod {
        static let name = "echo"
        static let summary = "Echo."
        static let rateClass: RPCRateClassName = .read
        typealias Params = JSONFragment
        typealias Result = JSONFragment
    }

    /// Waits until the gate named by `name` opens, or the call is cancelled.
    enum Wait: RPCMethod {
        static let name = "wait"
        static let summary = "Waits for a gate."
        /// In the class with `maxConcurrent` (RPCConcurrencyLimitTests).
        static let rateClass: RPCRateClassName = .agent
        struct Params: Codable, Sendable { var gate: String }
        typealias Result = String
        static var timeout: Duration? { .seconds(30) }
    }

    /// As `wait`, but a cancelled call ends with the handler's own -32800, with `data`.
    enum WaitOwnCancel: RPCMethod {
        static let name = "waitOwnCancel"
        static let summary = "Waits for a gate; cancelled, says what it kept."
        static let rateClass: RPCRateClassName = .read
        typealias Params = Wait.Params
        typealias Result = String
    }

    enum Timed: RPCMethod {
        static let name = "timed"
        static let summary = "Never finishes on its own; times out after 50 ms."
        static let rateClass: RPCRateClassName = .read
        typealias Result = String
        static var timeout: Duration? { .milliseconds(50) }
    }

    enum Fail: RPCMethod {
        static let name = "fail"
        static let summary = "Throws an error that is not an RPC error."
        static let rateClass: RPCRateClassName = .read
        typealias Result = String
    }

    struct Secret: Error {}

    /// Marks the connection signed in, as `auth.login` does.
    enum SignIn: RPCMethod {
        static let name = "signIn"
        static let summary = "Sign in."
        static let rateClass: RPCRateClassName = .auth
        typealias Params = RPCNoParams
        typealias Result = Bool
    }
}

/// Gates that `wait` calls block on, opened by the test.
actor Gates {
    private var open: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func wait(_ name: String) async {
        if open.contains(name) { return }
        await withCheckedContinuation { waiters[name, default: []].append($0) }
    }

    func open(_ name: String) {
        open.insert(name)
        for waiter in waiters.removeValue(forKey: name) ?? [] { waiter.resume() }
    }
}

/// One connection to an in-process engine: the real frame decoder and connection handler on a
/// test channel, no socket.
final class InProcessConnection: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let channel: NIOAsyncTestingChannel
    let gates: Gates
    /// The connection's handler, not kept alive by the test (to see that a closed connection frees it).
    weak var handler: RPCConnectionHandler?
    /// Bytes written by the server and not yet consumed by `next()`.
    private var received = ""
    /// After a Content-Length header: the length of the body still to come.
    private var pendingBodyLength: Int?

    init(limits: RPCLimits = RPCLimits(), middleware: [any RPCMiddleware] = [], signedIn: Bool = true) async throws {
        let gates = Gates()
        var router = RPCRouter()
        router.onInline(Fixtures.Subtract.self) { params, _ in params.minuend - params.subtrahend }
        router.onInline(Fixtures.GetData.self) { _, _ in JSONFragment(unchecked: "[\"hello\", 5]") }
        router.onInline(Fixtures.Echo.self) { params, _ in params }
        router.on(Fixtures.Wait.self) { params, _ in
            await gates.wait(params.gate)
            try Task.checkCancellation()
            return params.gate
        }
        router.on(Fixtures.WaitOwnCancel.self) { params, _ in
            await gates.wait(params.gate)
            if Task.isCancelled { throw RPCError(.requestCancelled, "Request cancelled", data: ["kept": "partial"]) }
            return params.gate
        }
        router.on(Fixtures.Timed.self) { _, _ in
            try await Task.sleep(for: .seconds(3600))
            return "late"
        }
        router.on(Fixtures.Fail.self) { _, _ in throw Fixtures.Secret() }
        router.onInline(Fixtures.SignIn.self) { _, context in
            context.connection.markSignedIn()
            return true
        }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let dispatcher = RPCDispatcher(
            router: router, middleware: middleware + [RPCTimeoutMiddleware(defaultTimeout: .seconds(30))], limits: limits,
            server: RPCServerDescription(name: "test", version: "0", apiVersions: ["1"]), logger: logger)
        let channel = NIOAsyncTestingChannel()
        nonisolated(unsafe) var created: RPCConnectionHandler?
        try await channel.eventLoop.submit {
            let handler = RPCConnectionHandler(dispatcher: dispatcher, connectionID: 1, peer: nil, logger: logger, signedIn: signedIn)
            created = handler
            try channel.pipeline.syncOperations.addHandler(handler)
        }.get()
        self.handler = created
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/tmp/in-process")).get()
        self.channel = channel
        self.gates = gates
    }

    func send(_ text: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: text))
    }

    /// The next message the server wrote: a line without its newline, or for Content-Length
    /// framing the header block and then the body.
    func next() async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)  // a hang guard: CI runs hundreds of tests at once on 2 cores
        while true {
            if let message = popMessage() { return message }
            if let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                received += String(buffer: buffer)
                continue
            }
            guard ContinuousClock.now < deadline else { throw TimedOut() }
            await Task.yield()
            try await Task.sleep(for: .milliseconds(1))  // polling for the server's write, bounded by the deadline
        }
    }

    private func popMessage() -> String? {
        if let length = pendingBodyLength {
            let bytes = Array(received.utf8)
            guard bytes.count >= length else { return nil }
            pendingBodyLength = nil
            received = String(decoding: bytes[length...], as: UTF8.self)
            return String(decoding: bytes[..<length], as: UTF8.self)
        }
        if received.hasPrefix("Content-Length: ") {
            guard let end = received.range(of: "\r\n\r\n") else { return nil }
            let header = String(received[..<end.upperBound])
            received.removeSubrange(..<end.upperBound)
            pendingBodyLength = Int(header.dropFirst("Content-Length: ".count).prefix { $0.isNumber })
            return header
        }
        guard let newline = received.firstIndex(of: "\n") else { return nil }
        let line = String(received[..<newline])
        received.removeSubrange(...newline)
        return line
    }

    func nextJSON() async throws -> JSONValue {
        json(try await next())
    }

    /// Asserts nothing was written (everything sent so far has been processed synchronously).
    func expectNothingWritten() async throws {
        #expect(received.isEmpty)
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
    }

    struct TimedOut: Error {}
}

func json(_ text: String) -> JSONValue {
    try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
}

extension JSONValue {
    /// The value at a dotted path (`"error.data.field"`).
    func at(_ path: String) -> JSONValue? {
        var value: JSONValue? = self
        for key in path.split(separator: ".") { value = value?[String(key)] }
        return value
    }

    var int: Int? {
        if case .number(let number) = self { return Int(exactly: number) }
        return nil
    }

    var string: String? {
        if case .string(let string) = self { return string }
        return nil
    }
}

@Suite("Connection engine (in process)")
struct RPCConnectionTests {
    @Test("the JSON-RPC 2.0 specification's examples")
    func specificationExamples() async throws {
        let connection = try await InProcessConnection()
        let examples: [(String, String?)] = [
            (#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#, #"{"jsonrpc": "2.0", "result": 19, "id": 1}"#),
            (#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#, #"{"jsonrpc": "2.0", "result": -19, "id": 2}"#),
            (
                #"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
                #"{"jsonrpc": "2.0", "result": 19, "id": 3}"#
            ),
            (
                #"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#,
                #"{"jsonrpc": "2.0", "result": 19, "id": 4}"#
            ),
            (#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#, nil),
            (#"{"jsonrpc": "2.0", "method": "foobar"}"#, nil),
            (
                #"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#,
                #"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found", "data": {"apiVersion": "1", "method": "foobar"}}, "id": "1"}"#
            ),
            (
                #"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#,
                #"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request", "data": {"reason": "method must be a string"}}, "id": null}"#
            ),
            (
                #"[1]"#,
                #"[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request", "data": {"reason": "a batch member must be an object"}}, "id": null}]"#
            ),
            (#"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#, nil),
            (
                #"[{"jsonrpc": "2.0", "method": "get_data", "id": "9"}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}, {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"}, {"foo": "boo"}, {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"}]"#,
                #"[{"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}, {"jsonrpc": "2.0", "result": 19, "id": "2"}, {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request", "data": {"reason": "jsonrpc must be \"2.0\""}}, "id": null}, {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found", "data": {"apiVersion": "1", "method": "foo.get"}}, "id": "5"}]"#
            ),
        ]
        for (request, expected) in examples {
            try await connection.send(request + "\n")
            if let expected {
                #expect(try await connection.nextJSON() == json(expected), "for \(request)")
            } else {
                try await connection.expectNothingWritten()
            }
        }
    }

    @Test("parse errors and the empty batch answer once with a null id")
    func parseErrors() async throws {
        let connection = try await InProcessConnection()
        try await connection.send("{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]\n")
        let parse = try await connection.nextJSON()
        #expect(parse.at("error.code")?.int == -32700)
        #expect(parse.at("id") == .null)
        try await connection.send("[]\n")
        #expect(try await connection.nextJSON().at("error.code")?.int == -32600)
    }

    @Test("invalid params name the field and the reason")
    func invalidParams() async throws {
        let connection = try await InProcessConnection()
        let cases: [(String, String, String)] = [
            (#"{"minuend": 1}"#, "subtrahend", "required"),
            (#"{"minuend": "1", "subtrahend": 2}"#, "minuend", "expected an integer"),
            (#"{"minuend": 1, "subtrahend": 2, "extra": 3}"#, "extra", "unknown parameter (expected: minuend, subtrahend)"),
            (#"[1, 2, 3]"#, "", "subtract takes at most 2 params by position, got 3"),
            (#"{"minuend": null, "subtrahend": 2}"#, "minuend", "expected an integer, got null"),
        ]
        for (params, field, reason) in cases {
            try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"subtract","params":\#(params)}"# + "\n")
            let reply = try await connection.nextJSON()
            #expect(reply.at("error.code")?.int == -32602)
            #expect(reply.at("error.data.field")?.string == field, "for \(params)")
            #expect(reply.at("error.data.reason")?.string == reason, "for \(params)")
        }
    }

    @Test("echo returns params byte for byte and ids exactly")
    func echoExact() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":9007199254740993,"method":"echo","params":{"b": [1.50, 1e2], "a": "\u00e9"}}"# + "\n")
        #expect(try await connection.next() == #"{"jsonrpc":"2.0","id":9007199254740993,"result":{"b": [1.50, 1e2], "a": "\u00e9"}}"#)
        try await connection.send(#"{"jsonrpc":"2.0","id":1.50,"method":"echo"}"# + "\n")
        #expect(try await connection.next() == #"{"jsonrpc":"2.0","id":1.50,"result":null}"#)
    }

    @Test("a closed connection frees its handler and handle, also after a call and a notification (no cycle through the handle)")
    func closedConnectionIsFreed() async throws {
        weak var handler: RPCConnectionHandler?
        weak var handle: RPCConnectionHandler.Handle?
        do {
            let connection = try await InProcessConnection()
            try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"subtract","params":[2,1]}"# + "\n")
            #expect(try await connection.nextJSON().at("result")?.int == 1)
            handler = connection.handler
            handle = try await connection.channel.eventLoop.submit { connection.handler?.handle }.get()
            #expect(handler != nil && handle != nil)
            try await connection.channel.close()
        }
        // The pipeline is gone and the test holds nothing: both must have been freed. (Before the
        // fix the handle held the handler, which held the handle: every connection ever opened
        // stayed in memory, ~1.5 KB each in the soak.)
        #expect(handler == nil)
        #expect(handle == nil)
    }

    @Test("a slow call does not delay the next one; replies come out of order")
    func outOfOrder() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":"slow","method":"wait","params":{"gate":"g"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","id":"fast","method":"subtract","params":[2,1]}"# + "\n")
        #expect(try await connection.nextJSON().at("id")?.string == "fast")
        await connection.gates.open("g")
        let slow = try await connection.nextJSON()
        #expect(slow.at("id")?.string == "slow")
        #expect(slow.at("result")?.string == "g")
    }

    @Test("$/cancelRequest cancels a running call, which answers -32800")
    func cancelRunning() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":5,"method":"wait","params":{"gate":"never"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":5}}"# + "\n")
        await connection.gates.open("never")
        let reply = try await connection.nextJSON()
        #expect(reply.at("id")?.int == 5)
        #expect(reply.at("error.code")?.int == -32800)
    }

    @Test("a cancelled call that ends with its own -32800 is answered with it (its data says what it kept)")
    func cancelWithHandlerData() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":6,"method":"waitOwnCancel","params":{"gate":"never"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":6}}"# + "\n")
        await connection.gates.open("never")
        let reply = try await connection.nextJSON()
        #expect(reply.at("error.code")?.int == -32800)
        #expect(reply.at("error.data.kept")?.string == "partial")
    }

    @Test("a cancel that arrives before its request is not lost")
    func cancelEarly() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"early"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","id":"early","method":"wait","params":{"gate":"never"}}"# + "\n")
        let reply = try await connection.nextJSON()
        #expect(reply.at("error.code")?.int == -32800)
    }

    @Test("a call past its timeout answers -32001 with the limit")
    func timeout() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"timed"}"# + "\n")
        // The test loop's clock only moves when told to: no waiting for real time.
        await connection.channel.testingEventLoop.advanceTime(by: .milliseconds(50))
        let reply = try await connection.nextJSON()
        #expect(reply.at("error.code")?.int == -32001)
        #expect(reply.at("error.data.limit")?.int == 50)
    }

    @Test("an unexpected error is opaque to the client")
    func internalError() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"fail"}"# + "\n")
        let reply = try await connection.next()
        #expect(json(reply) == json(#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error"}}"#))
        #expect(!reply.contains("Secret"))
    }

    @Test("a batch with a slow member is answered as one array when all are done")
    func batchWithSlowMember() async throws {
        let connection = try await InProcessConnection()
        try await connection.send(
            #"[{"jsonrpc":"2.0","id":1,"method":"wait","params":{"gate":"b"}},{"jsonrpc":"2.0","id":2,"method":"subtract","params":[3,1]}]"# + "\n")
        try await connection.expectNothingWritten()
        await connection.gates.open("b")
        let reply = try await connection.nextJSON()
        #expect(reply == json(#"[{"jsonrpc":"2.0","id":1,"result":"b"},{"jsonrpc":"2.0","id":2,"result":2}]"#))
    }

    @Test(
        "a batch whose results are large (written as references to them, not copied) answers the same bytes, in order, in both framings",
        arguments: [false, true])
    func batchWithLargeResults(contentLength: Bool) async throws {
        let connection = try await InProcessConnection()
        let first = String(repeating: "a", count: BatchReply.referencedResultBytes)
        let second = String(repeating: "b", count: 3 * BatchReply.referencedResultBytes)
        let batch =
            #"[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"\#(first)"}},"#
            + #"{"jsonrpc":"2.0","id":2,"method":"subtract","params":[3,1]},"#
            + #"{"jsonrpc":"2.0","id":"x","method":"echo","params":["\#(second)"]}]"#
        let after = #"{"jsonrpc":"2.0","id":3,"method":"subtract","params":[9,1]}"#
        if contentLength {
            try await connection.send("Content-Length: \(batch.utf8.count)\r\n\r\n\(batch)Content-Length: \(after.utf8.count)\r\n\r\n\(after)")
        } else {
            try await connection.send(batch + "\n" + after + "\n")
        }
        let expected = json(
            #"[{"jsonrpc":"2.0","id":1,"result":{"text":"\#(first)"}},{"jsonrpc":"2.0","id":2,"result":2},"#
                + #"{"jsonrpc":"2.0","id":"x","result":["\#(second)"]}]"#)
        if contentLength {
            let header = try await connection.next()
            let body = try await connection.next()
            #expect(header == "Content-Length: \(body.utf8.count)\r\n\r\n")
            #expect(json(body) == expected)
            #expect(try await connection.next() == "Content-Length: 35\r\n\r\n")
        } else {
            #expect(try await connection.nextJSON() == expected)
        }
        #expect(try await connection.nextJSON() == json(#"{"jsonrpc":"2.0","id":3,"result":8}"#))
    }

    @Test("Content-Length framing is answered in Content-Length framing")
    func contentLengthReplies() async throws {
        let connection = try await InProcessConnection()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"subtract","params":[5,2]}"#
        try await connection.send("Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(try await connection.next() == "Content-Length: 35\r\n\r\n")
        #expect(try await connection.next() == #"{"jsonrpc":"2.0","id":1,"result":3}"#)
    }

    @Test("an oversized message is answered with its id and the connection stays usable")
    func oversized() async throws {
        var limits = RPCLimits()
        limits.maxMessageBytes = 100
        let connection = try await InProcessConnection(limits: limits)
        let message = #"{"jsonrpc":"2.0","id":77,"method":"echo","params":""# + String(repeating: "z", count: 500) + "\"}"
        try await connection.send(message + "\n")
        let reply = try await connection.nextJSON()
        #expect(reply.at("id")?.int == 77)
        #expect(reply.at("error.code")?.int == -32010)
        #expect(reply.at("error.data.limit")?.int == 100)
        #expect(reply.at("error.data.actual")?.int == message.utf8.count)
        try await connection.send(#"{"jsonrpc":"2.0","id":78,"method":"subtract","params":[1,1]}"# + "\n")
        #expect(try await connection.nextJSON().at("result")?.int == 0)
    }

    @Test("server notifications are framed and keep their order")
    func notificationsInOrder() async throws {
        let connection = try await InProcessConnection()
        let channel = connection.channel
        let handle = try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: RPCConnectionHandler.self).handle!
        }.get()
        for index in 0..<5 { handle.notify(method: "tick", params: ByteBuffer(string: "[\(index)]")) }
        for index in 0..<5 {
            #expect(try await connection.next() == #"{"jsonrpc":"2.0","method":"tick","params":[\#(index)]}"#)
        }
    }
}
