import NIOCore
import NIOEmbedded
import Testing

@testable import RPC

/// Issue 17: a connection that is not signed in can only say hello, sign in, discover and ping,
/// so its messages are held to `maxUnauthenticatedMessageBytes`: a multi-MiB login is skipped as
/// it streams in (never buffered, never parsed) and answered `-32010` naming that limit.
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
        "not signed in: a message over the limit is not buffered past the limit, is answered -32010 {setting, limit, actual}, and the connection goes on"
    )
    func refusedUnbuffered() async throws {
        let connection = try await InProcessConnection(limits: Self.limits(), signedIn: false)
        let message = Self.bigEcho(id: 7, bytes: 1 << 20)
        let bytes = Array(message.utf8)
        // Streamed in 64 KiB reads, as a socket delivers it: the handler never holds more than
        // the limit of it.
        var offset = 0
        while offset < bytes.count - 1 {
            let end = min(offset + (64 << 10), bytes.count - 1)
            try await connection.channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
            offset = end
            let held = try await Self.buffered(connection)
            #expect(held <= 1026, "held \(held) bytes")
        }
        try await connection.expectNothingWritten()
        try await connection.send("\n")
        let refused = try await connection.nextJSON()
        #expect(refused.at("id")?.int == 7, "\(refused)")
        #expect(refused.at("error.code")?.int == -32010)
        #expect(refused.at("error.data.setting")?.string == "max_unauthenticated_message_bytes")
        #expect(refused.at("error.data.limit")?.int == 1024)
        #expect(refused.at("error.data.actual")?.int == bytes.count - 1)
        // Small messages still run.
        try await connection.send(#"{"jsonrpc":"2.0","id":8,"method":"subtract","params":[3,1]}"# + "\n")
        #expect(try await connection.nextJSON().at("result")?.int == 2)
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

    @Test("Content-Length framing: a body over the limit is skipped by its length, unbuffered")
    func contentLengthRefused() async throws {
        let connection = try await InProcessConnection(limits: Self.limits(), signedIn: false)
        let body = String(Self.bigEcho(id: 3, bytes: 4096).dropLast())
        try await connection.send("Content-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(2048))
        #expect(try await Self.buffered(connection) == 0)
        try await connection.send(String(body.dropFirst(2048)))
        _ = try await connection.next()  // the header
        let refused = json(try await connection.next())
        #expect(refused.at("error.code")?.int == -32010 && refused.at("error.data.limit")?.int == 1024, "\(refused)")
    }
}
