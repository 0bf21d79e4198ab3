import NIOCore
import NIOEmbedded
import Testing

@testable import RPC

/// Issue 17: a connection that is not signed in can only say hello, sign in, discover and ping,
/// so its messages are held to `maxUnauthenticatedMessageBytes`: a multi-MiB login is answered
/// `-32010` naming that limit as soon as it passes it (never buffered, never parsed, the rest never
/// read), and the connection is closed.
@Suite("Messages before sign-in")
struct RPCUnauthenticatedLimitTests {
    static func limits() -> RPCLimits {
        var limits = RPCLimits()
        limits.maxUnauthenticatedMessageBytes = 1024
        return limits
    }

    static func bigEcho(id: Int, bytes: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"echo","params":{"text":""# + String(repeating: "u", count: bytes) + "\"}}\n"
    }

    /// What the handler holds of messages not run yet.
    static func buffered(_ connection: InProcessConnection) async throws -> Int {
        let channel = connection.channel
        return try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: RPCConnectionHandler.self).bufferedInboundBytes
        }.get()
    }

    @Test(
        "not signed in: a message over the limit is answered -32010 {setting, limit, actual} once it passes the limit, unbuffered, and the connection closes"
    )
    func refusedUnbuffered() async throws {
        let connection = try await InProcessConnection(limits: Self.limits(), signedIn: false)
        let bytes = Array(Self.bigEcho(id: 7, bytes: 1 << 20).utf8)
        // Under the limit, the start of the message is held as any partial message is.
        try await connection.channel.writeInbound(ByteBuffer(bytes: bytes[0..<1000]))
        #expect(try await Self.buffered(connection) == 1000)
        try await connection.expectNothingWritten()
        // The next read passes the 1 KiB limit: answered at once, the rest of the MiB never read.
        try await connection.channel.writeInbound(ByteBuffer(bytes: bytes[1000..<(64 << 10)]))
        let refused = try await connection.nextJSON()
        #expect(refused.at("id")?.int == 7, "\(refused)")
        #expect(refused.at("error.code")?.int == -32010)
        #expect(refused.at("error.data.setting")?.string == "max_unauthenticated_message_bytes")
        #expect(refused.at("error.data.limit")?.int == 1024)
        #expect(refused.at("error.data.actual")?.int == 64 << 10, "the bytes received until the refusal")
        try await connection.channel.closeFuture.get()
    }

    @Test("once signed in, the connection's messages may be max_message_bytes; signed in from the start, at once")
    func fullLimitAfterSignIn() async throws {
        let connection = try await InProcessConnection(limits: Self.limits(), signedIn: false)
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"signIn"}"# + "\n")
        #expect(try await connection.nextJSON().at("result") == .bool(true))
        try await connection.send(Self.bigEcho(id: 2, bytes: 1 << 20))
        let served = try await connection.nextJSON()
        #expect(served.at("id")?.int == 2 && served.at("result.text")?.string?.count == 1 << 20)

        let trusted = try await InProcessConnection(limits: Self.limits(), signedIn: true)
        try await trusted.send(Self.bigEcho(id: 1, bytes: 1 << 20))
        #expect(try await trusted.nextJSON().at("result.text")?.string?.count == 1 << 20)
    }

    @Test("Content-Length framing: a body over the limit is refused from its header, with its declared length, unbuffered; the connection closes")
    func contentLengthRefused() async throws {
        let connection = try await InProcessConnection(limits: Self.limits(), signedIn: false)
        let body = String(Self.bigEcho(id: 3, bytes: 4096).dropLast())
        try await connection.send("Content-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(2048))
        _ = try await connection.next()  // the header
        let refused = json(try await connection.next())
        #expect(refused.at("error.code")?.int == -32010 && refused.at("error.data.limit")?.int == 1024, "\(refused)")
        #expect(refused.at("error.data.actual")?.int == body.utf8.count)
        try await connection.channel.closeFuture.get()
    }
}
