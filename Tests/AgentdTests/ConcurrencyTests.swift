import AgentdTesting
import Testing

/// Calls on one connection run concurrently and can be cancelled (through the daemon's connection
/// handler in process, `InProcessDaemon`; `test.sleep` sleeps on the real clock), and many
/// connections are served at once (on the real daemon's socket: `ConcurrencyTests.Socket`).
@Suite("Concurrency and cancellation", .timeLimit(.minutes(1)))
struct ConcurrencyTests {
    @Test("a ping sent after a slow call on the same connection is answered first")
    func outOfOrderReplies() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":"slow","method":"test.sleep","params":{"ms":2000}}"# + "\n")
            try await client.write(#"{"jsonrpc":"2.0","id":"fast","method":"system.ping"}"# + "\n")
            // Order by reading: the first reply on the wire must be the ping's.
            try expectReply(JSON(parsing: await client.nextMessage(timeout: .seconds(10))), equals: #"{"jsonrpc":"2.0","id":"fast","result":"pong"}"#)
            try expectReply(
                JSON(parsing: await client.nextMessage(timeout: .seconds(10))), equals: #"{"jsonrpc":"2.0","id":"slow","result":{"sleptMs":2000}}"#)
        }
    }

    @Test("$/cancelRequest cancels a call in flight: it answers -32800 at once")
    func cancelInFlight() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":"c1","method":"test.sleep","params":{"ms":120000}}"# + "\n")
            try await client.write(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"c1"}}"# + "\n")
            // Well before the 2 min sleep would end.
            let reply = try JSON(parsing: await client.nextMessage(timeout: .seconds(30)))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":"c1","error":{"code":-32800,"message":"Request cancelled"}}"#)
            // The cancel notification itself is not answered.
            try expectReply(await SpecExampleTests.ping(client, id: 2), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            try await SpecExampleTests.expectNoMessage(client, within: .milliseconds(100))
        }
    }

    @Test("$/cancelRequest matches ids exactly (numbers too) and leaves other calls alone")
    func cancelMatchesExactID() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","id":7,"method":"test.sleep","params":{"ms":120000}}"# + "\n")
            try await client.write(#"{"jsonrpc":"2.0","id":"7","method":"test.sleep","params":{"ms":300}}"# + "\n")
            try await client.write(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}"# + "\n")
            // Matched by id, in either order: which comes first depends only on how long the cancel
            // takes to arrive against the 300 ms sleep (a loaded machine can take longer).
            let replies = [
                try JSON(parsing: await client.nextMessage(timeout: .seconds(30))),
                try JSON(parsing: await client.nextMessage(timeout: .seconds(30))),
            ]
            let number = try #require(replies.first { $0["id"] == .integer(7) }, "\(replies)")
            let string = try #require(replies.first { $0["id"] == .string("7") }, "\(replies)")
            try expectReply(number, equals: #"{"jsonrpc":"2.0","id":7,"error":{"code":-32800,"message":"Request cancelled"}}"#)
            try expectReply(string, equals: #"{"jsonrpc":"2.0","id":"7","result":{"sleptMs":300}}"#)
        }
    }

    @Test("a cancel that arrives before its request makes that request answer -32800 at once")
    func cancelBeforeRequest() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            try await client.write(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"early"}}"# + "\n")
            try await client.write(#"{"jsonrpc":"2.0","id":"early","method":"test.sleep","params":{"ms":120000}}"# + "\n")
            let reply = try JSON(parsing: await client.nextMessage(timeout: .seconds(30)))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":"early","error":{"code":-32800,"message":"Request cancelled"}}"#)
            try await SpecExampleTests.expectNoMessage(client, within: .milliseconds(100))
        }
    }
}

extension ConcurrencyTests {
    /// Many connections at once is the socket server's job (accepting, its connection limits, one
    /// file descriptor each): only the real daemon shows it.
    @Suite("Concurrency: connections on the socket", .blockingIO, .timeLimit(.minutes(1)))
    struct Socket {
        @Test("300 connections open at once are each served")
        func threeHundredConnections() throws {
            let count = 300
            raiseOpenFileLimit(to: 4096)
            try withDaemon(["--max-connections", "1024", "--max-connections-per-uid", "1024"]) { daemon in
                var clients = [try daemon.connect()]
                for _ in 1..<count { clients.append(try RPCTestClient(path: daemon.socketPath)) }
                // All are open before any is used.
                for (index, client) in clients.enumerated() {
                    try client.send(line: #"{"jsonrpc":"2.0","id":\#(index),"method":"system.ping"}"#)
                }
                for (index, client) in clients.enumerated() {
                    try expectReply(client.readJSON(timeout: .seconds(20)), equals: #"{"jsonrpc":"2.0","id":\#(index),"result":"pong"}"#)
                }
            }
        }
    }
}
