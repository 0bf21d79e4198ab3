import Foundation
import Testing

/// Hostile and greedy clients through the real socket: a flood of connections, a client that sends
/// and never reads, slow-loris partial messages, batch bombs, many subscriptions. The daemon must
/// refuse cleanly, keep its memory and file descriptors bounded, and keep serving everyone else.
/// (The single limits, one at a time, are LimitTests; SECURITY.md maps each promise to its test.)
@Suite("Overload", .blockingIO, .timeLimit(.minutes(3)))
struct OverloadTests {
    /// `VmRSS` of a process, in KiB.
    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    /// Open file descriptors of a process.
    static func openFiles(_ pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// Waits (polling, 30 s hang guard) until `condition` holds.
    static func eventually(_ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Deadline(.seconds(30))
        while try !condition() {
            guard !deadline.hasPassed else { throw HarnessError("not within 30 s: \(what)") }
            var pause = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            nanosleep(&pause, nil)
        }
    }

    @Test("a flood of connections past --max-connections: each refused with -32013 and closed, the admitted ones served, no descriptor leaked")
    func connectionFlood() throws {
        raiseOpenFileLimit(to: 4096)
        let limit = 20
        try withDaemon(["--max-connections", String(limit)]) { daemon in
            var admitted = [try daemon.connect()]
            for _ in 1..<limit { admitted.append(try RPCTestClient(path: daemon.socketPath)) }
            for (index, client) in admitted.enumerated() {
                try expectReply(client.ping(id: index), equals: #"{"jsonrpc":"2.0","id":\#(index),"result":"pong"}"#)
            }
            let baseline = try Self.openFiles(daemon.pid)
            // 300 more at once: every one gets the refusal and EOF.
            let flood = try (0..<300).map { _ in try RPCTestClient(path: daemon.socketPath) }
            for client in flood {
                let reply = try JSON(parsing: try client.readLine())
                #expect(reply.errorCode == -32013, "reply: \(reply)")
                #expect(try client.readUntilEOF() == "")
                client.close()
            }
            for (index, client) in admitted.enumerated() {
                try expectReply(client.ping(id: 100 + index), equals: #"{"jsonrpc":"2.0","id":\#(100 + index),"result":"pong"}"#)
            }
            try Self.eventually("the refused connections' descriptors are closed") { try Self.openFiles(daemon.pid) <= baseline }
        }
    }

    @Test("a client that sends and never reads: the daemon stops reading it (backpressure), its memory stays bounded, others are served")
    func clientThatNeverReads() throws {
        try withDaemon { daemon in
            let other = try daemon.connect()
            try expectReply(other.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            let before = try Self.residentKiB(daemon.pid)
            let greedy = try RPCTestClient(path: daemon.socketPath)
            // Echoes of 64 KiB: 256 MiB of replies if everything were read and answered. The daemon
            // must stop reading long before: a send then makes no progress for a second.
            let request = LimitTests.echoRequest(id: "1", size: 64 * 1024) + "\n"
            let chunk = String(repeating: request, count: 16)  // 1 MiB
            var sentMiB = 0
            var blocked = false
            while sentMiB < 256 {
                do {
                    try greedy.send(raw: chunk, timeout: .seconds(1))
                    sentMiB += 1
                } catch {
                    blocked = true
                    break
                }
            }
            #expect(blocked, "the daemon read all 256 MiB from a client that reads nothing")
            let after = try Self.residentKiB(daemon.pid)
            // Socket buffers, 256 calls in flight of 64 KiB and their replies: a few tens of MiB.
            #expect(after - before < 128 * 1024, "RSS grew from \(before) KiB to \(after) KiB after \(sentMiB) MiB unread")
            try expectReply(other.ping(id: 2), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            let fresh = try daemon.connect()
            try expectReply(fresh.ping(id: 3), equals: #"{"jsonrpc":"2.0","id":3,"result":"pong"}"#)
            greedy.close()
            try expectReply(other.ping(id: 4), equals: #"{"jsonrpc":"2.0","id":4,"result":"pong"}"#)
        }
    }

    @Test(
        "slow-loris: an unfinished message is answered -32019 and closed after --frame-timeout-ms; an idle connection with nothing unfinished stays open"
    )
    func slowLoris() throws {
        try withDaemon(["--frame-timeout-ms", "500"]) { daemon in
            let idle = try daemon.connect()  // connected, silent throughout
            let busy = try daemon.connect()
            try expectReply(busy.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)

            let loris = try RPCTestClient(path: daemon.socketPath)
            try loris.send(raw: #"{"jsonrpc":"2.0","id":7,"method":"system.pi"#)
            let reply = try JSON(parsing: try loris.readLine())
            #expect(reply["id"] == .null && reply.errorCode == -32019, "reply: \(reply)")
            #expect(reply["error"]?["data"]?["setting"] == .string("frame_timeout_ms"), "reply: \(reply)")
            #expect(reply["error"]?["data"]?["limit"] == .integer(500), "reply: \(reply)")
            #expect((reply["error"]?["data"]?["actual"]?.intValue ?? 0) >= 500, "reply: \(reply)")
            #expect(try loris.readUntilEOF() == "", "the connection must be closed after the error")

            // LSP framing: a header promising more body than ever comes.
            let lsp = try RPCTestClient(path: daemon.socketPath)
            try lsp.send(raw: "Content-Length: 100\r\n\r\n{\"jsonrpc\":")
            let lspReply = try JSON(parsing: try lsp.readLSPMessage())
            #expect(lspReply.errorCode == -32019, "reply: \(lspReply)")
            // And a header block that never ends.
            let header = try RPCTestClient(path: daemon.socketPath)
            try header.send(raw: "Content-Length: 10\r\nX-Slow: 1")
            let headerReply = try JSON(parsing: try header.readLSPMessage())
            #expect(headerReply.errorCode == -32019, "reply: \(headerReply)")

            // The idle connection has been open longer than the timeout, with nothing unfinished.
            try expectReply(idle.ping(id: 2), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            try expectReply(busy.ping(id: 3), equals: #"{"jsonrpc":"2.0","id":3,"result":"pong"}"#)
        }
    }

    @Test("--frame-timeout-ms 0 turns the slow-loris cut off")
    func frameTimeoutOff() throws {
        try withDaemon(["--frame-timeout-ms", "0"]) { daemon in
            let client = try daemon.connect()
            try client.send(raw: #"{"jsonrpc":"2.0","id":1,"#)
            try client.expectNoData(within: .milliseconds(300), "nothing is answered to a partial message")
            try client.send(raw: #""method":"system.ping"}"# + "\n")
            try expectReply(client.readJSON(), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        }
    }

    @Test("batch bombs: 1000 members (the default limit) nested 60 deep are all answered; 1001 members get one -32012; the daemon stays responsive")
    func batchBombs() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let deep = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
            let member = { (id: Int) in #"{"jsonrpc":"2.0","id":\#(id),"method":"system.echo","params":{"deep":\#(deep)}}"# }
            try client.send(line: "[" + (1...1000).map(member).joined(separator: ",") + "]")
            let replies = try #require(try client.readJSON(timeout: .seconds(60)).arrayValue)
            #expect(replies.count == 1000)
            #expect(Set(replies.compactMap { $0["id"]?.intValue }) == Set(1...1000))
            #expect(replies.allSatisfy { $0["result"] != nil }, "a member failed")

            try client.send(line: "[" + (1...1001).map(member).joined(separator: ",") + "]")
            let refused = try client.readJSON(timeout: .seconds(60))
            #expect(refused.errorCode == -32012, "reply: \(refused)")
            // One member nested past the depth limit fails alone; its neighbours are served.
            let tooDeep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
            try client.send(
                line: #"[{"jsonrpc":"2.0","id":1,"method":"system.ping"},{"jsonrpc":"2.0","id":2,"method":"system.echo","params":\#(tooDeep)}]"#)
            let mixed = try #require(try client.readJSON().arrayValue)
            #expect(mixed.contains { $0["id"] == .integer(1) && $0["result"] == .string("pong") }, "\(mixed)")
            #expect(mixed.contains { $0.errorCode == -32011 }, "\(mixed)")
            try expectReply(client.ping(id: 5), equals: #"{"jsonrpc":"2.0","id":5,"result":"pong"}"#)
        }
    }

    @Test("many subscriptions: 40 connections x 64 subscriptions all receive one append's event; closing them releases every subscription")
    func manySubscriptions() throws {
        raiseOpenFileLimit(to: 4096)
        try withDaemon { daemon in
            let writer = try daemon.connect()
            let chat = try ChatsTests.result(try AuthTests.call(writer, id: 1, "chats.create", "{}"))["id"]?.stringValue ?? ""
            let connections = 40
            let perConnection = 64
            var subscribers: [RPCTestClient] = []
            for _ in 0..<connections {
                let client = try daemon.connect()
                var batch: [String] = []
                for n in 0..<perConnection {
                    batch.append(#"{"jsonrpc":"2.0","id":\#(n),"method":"events.subscribe","params":{"topics":["chat.message.created"]}}"#)
                }
                try client.send(line: "[" + batch.joined(separator: ",") + "]")
                let replies = try #require(try client.readJSON().arrayValue)
                #expect(replies.count == perConnection && replies.allSatisfy { $0["result"]?["subscription"] != nil }, "\(replies.prefix(2))")
                subscribers.append(client)
            }
            // One more on a full connection is refused.
            let extra = try AuthTests.call(subscribers[0], id: 99, "events.subscribe", #"{"topics":["*"]}"#)
            #expect(extra.errorCode == -32041, "\(extra)")

            _ = try ChatsTests.result(
                try AuthTests.call(writer, id: 2, "chats.messages.append", #"{"chatId":"\#(chat)","role":"user","content":"to all"}"#))
            for client in subscribers {
                var seen = Set<String>()
                for _ in 0..<perConnection {
                    let event = try client.readJSON()
                    #expect(event["method"] == .string("events.event"), "\(event)")
                    if let subscription = event["params"]?["subscription"]?.stringValue { seen.insert(subscription) }
                }
                #expect(seen.count == perConnection, "every subscription receives the event once")
            }
            /// The `events_subscriptions_active` gauge (`events_subscriptions_active 2560.0`).
            func active() throws -> Double? {
                let metrics = try AuthTests.call(writer, id: 3, "v2.system.metrics")
                let text = metrics["result"]?["text"]?.stringValue ?? ""
                let line = text.split(separator: "\n").first { $0.hasPrefix("events_subscriptions_active ") }
                return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
            }
            #expect(try active() == Double(connections * perConnection))
            for client in subscribers { client.close() }
            try Self.eventually("every subscription is released") { try active() == 0 }
        }
    }
}
