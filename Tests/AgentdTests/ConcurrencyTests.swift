import Testing

/// Calls on one connection run concurrently, can be cancelled, and many connections are served at
/// once.
@Suite("Concurrency and cancellation", .blockingIO, .timeLimit(.minutes(1)))
struct ConcurrencyTests {
    @Test("a ping sent after a slow call on the same connection is answered first")
    func outOfOrderReplies() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":"slow","method":"test.sleep","params":{"ms":2000}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","id":"fast","method":"system.ping"}"#)
            // Order by reading: the first reply on the wire must be the ping's.
            try expectReply(client.readJSON(timeout: .seconds(10)), equals: #"{"jsonrpc":"2.0","id":"fast","result":"pong"}"#)
            try expectReply(client.readJSON(timeout: .seconds(10)), equals: #"{"jsonrpc":"2.0","id":"slow","result":{"sleptMs":2000}}"#)
        }
    }

    @Test("$/cancelRequest cancels a call in flight: it answers -32800 at once")
    func cancelInFlight() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":"c1","method":"test.sleep","params":{"ms":120000}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"c1"}}"#)
            // Well before the 2 min sleep would end.
            let reply = try client.readJSON(timeout: .seconds(30))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":"c1","error":{"code":-32800,"message":"Request cancelled"}}"#)
            // The cancel notification itself is not answered.
            try expectReply(client.ping(id: 2), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

    @Test("$/cancelRequest matches ids exactly (numbers too) and leaves other calls alone")
    func cancelMatchesExactID() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","id":7,"method":"test.sleep","params":{"ms":120000}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","id":"7","method":"test.sleep","params":{"ms":300}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}"#)
            try expectReply(client.readJSON(timeout: .seconds(30)), equals: #"{"jsonrpc":"2.0","id":7,"error":{"code":-32800,"message":"Request cancelled"}}"#)
            try expectReply(client.readJSON(timeout: .seconds(30)), equals: #"{"jsonrpc":"2.0","id":"7","result":{"sleptMs":300}}"#)
        }
    }

    @Test("a cancel that arrives before its request makes that request answer -32800 at once")
    func cancelBeforeRequest() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            try client.send(line: #"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"early"}}"#)
            try client.send(line: #"{"jsonrpc":"2.0","id":"early","method":"test.sleep","params":{"ms":120000}}"#)
            let reply = try client.readJSON(timeout: .seconds(30))
            try expectReply(reply, equals: #"{"jsonrpc":"2.0","id":"early","error":{"code":-32800,"message":"Request cancelled"}}"#)
            try client.expectNoData(within: .milliseconds(100))
        }
    }

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
