import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, item 2: replies a client asks for and never reads. A 50 KiB batch of 1,000
/// `rpc.discover` calls asks for ~100 MB of replies; the daemon must keep what it holds for a
/// connection (and for all of them) within its bounds, stop running the calls of connections that
/// hold unread replies, and close those that stay over their bound for the frame timeout.
extension HostileClientTests {
    /// One line of 1,000 `rpc.discover` calls (~50 KiB; ~100 MB of replies).
    static let discoverBatch = "[" + (1...1000).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"rpc.discover"}"# }.joined(separator: ",") + "]\n"

    /// The daemon's `rpc_reply_bytes_queued` gauge read through `v2.system.metrics` on `client`
    /// (nil when the daemon has no such gauge).
    static func queuedReplyBytes(_ client: RPCTestClient, id: Int) throws -> Int? {
        let reply = try AuthTests.call(client, id: id, "v2.system.metrics")
        let text = try #require(reply["result"]?["text"]?.stringValue, "reply: \(reply)")
        let line = text.split(separator: "\n").first { $0.hasPrefix("rpc_reply_bytes_queued ") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) }
    }

    /// Samples the daemon (its RSS, and its queued reply bytes through `observer`, which must be
    /// served all along) until `done` holds or `timeout` passes; returns the peaks seen.
    static func samplePeaks(
        _ daemon: DaemonProcess, observer: RPCTestClient, timeout: Duration, until done: () -> Bool
    ) throws -> (residentKiB: Int, queued: Int?) {
        let deadline = Deadline(timeout)
        var peakResident = 0
        var peakQueued: Int?
        var id = 1000
        repeat {
            peakResident = max(peakResident, try OverloadTests.residentKiB(daemon.pid))
            id += 1
            if let queued = try queuedReplyBytes(observer, id: id) { peakQueued = max(peakQueued ?? 0, queued) }
            if done() { break }
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)  // the sampling period, bounded by the deadline
            nanosleep(&pause, nil)
        } while !deadline.hasPassed
        return (peakResident, peakQueued)
    }

    @Test(
        "amplifying batches (1,000 rpc.discover) from a peer that never reads: what the daemon queues for it stays within --max-queued-reply-bytes-per-connection (16 MiB), its RSS with it; another client is served meanwhile"
    )
    func amplifiedRepliesToAPeerThatNeverReads() throws {
        let bound = 16 << 20  // the default
        try withDaemon { daemon in
            let other = try daemon.connect()
            try expectReply(other.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            let before = try OverloadTests.residentKiB(daemon.pid)
            let greedy = try RPCTestClient(path: daemon.socketPath)
            // Two batches: ~200 MB asked for. Sent whole (they fit in the socket's buffer), never read.
            for _ in 0..<2 { try? greedy.send(raw: Self.discoverBatch, timeout: .seconds(2)) }
            // Until the daemon has queued what it will for the peer (it then stays put), or 5 s.
            var last = -1
            var steady = 0
            let peaks = try Self.samplePeaks(daemon, observer: other, timeout: .seconds(5)) {
                let now = (try? Self.queuedReplyBytes(other, id: 2)).flatMap { $0 } ?? 0
                steady = now > 0 && now == last ? steady + 1 : 0
                last = now
                return steady >= 10
            }
            let grownMiB = (peaks.residentKiB - before) / 1024
            #expect(grownMiB < 64, "RSS grew by \(grownMiB) MiB for a peer that reads nothing")
            let queued = try #require(peaks.queued, "no rpc_reply_bytes_queued gauge")
            #expect(queued > 0 && queued <= bound, "\(queued) bytes queued for one connection")
            try expectReply(other.ping(id: 3), equals: #"{"jsonrpc":"2.0","id":3,"result":"pong"}"#)
            greedy.close()
            try OverloadTests.eventually("the closed connection's bytes leave the gauge") { (try Self.queuedReplyBytes(other, id: 4) ?? -1) == 0 }
        }
    }

    @Test(
        "a peer that asks for more than its bound and never reads: its calls stop, and it is closed after --frame-timeout-ms with a log line saying why; another client is served meanwhile"
    )
    func peerOverItsBoundIsClosed() throws {
        try withDaemon(["--max-queued-reply-bytes-per-connection", "65536", "--frame-timeout-ms", "1000"]) { daemon in
            let other = try daemon.connect()
            let greedy = try RPCTestClient(path: daemon.socketPath)
            // 200 single calls of ~100 KiB replies each, pipelined: far past 64 KiB once the
            // socket's own buffer is full.
            try greedy.send(raw: String(repeating: #"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"# + "\n", count: 200))
            var id = 10
            let deadline = Deadline(.seconds(20))
            while !daemon.stderr.contains("replies not read"), !deadline.hasPassed {
                id += 1
                try expectReply(other.ping(id: id), equals: #"{"jsonrpc":"2.0","id":\#(id),"result":"pong"}"#)
            }
            #expect(daemon.stderr.contains("replies not read in time, closing"), "the peer over its bound was not closed")
            #expect(daemon.stderr.contains("max_queued_reply_bytes_per_connection"), "the log line does not name the bound")
            // What the kernel still held, then the end; far fewer than the 200 replies asked for.
            let received = try greedy.readUntilEOF(timeout: .seconds(30))
            let replies = received.split(separator: "\n").count
            #expect(replies < 100, "\(replies) replies written to a peer that reads nothing")
            try OverloadTests.eventually("the closed connection's bytes leave the gauge") { (try Self.queuedReplyBytes(other, id: 2) ?? -1) == 0 }
        }
    }

    @Test(
        "a batch whose replies would pass the per-connection bound: the members that do not fit answer -32003 naming the limit, the rest are answered whole"
    )
    func batchReplyOverTheBound() throws {
        let bound = 1 << 20
        try withDaemon(["--max-queued-reply-bytes-per-connection", String(bound)]) { daemon in
            let client = try daemon.connect()
            try client.send(raw: Self.discoverBatch)
            let replies = try #require(try client.readJSON(timeout: .seconds(60)).arrayValue)
            #expect(replies.count == 1000)
            let answered = replies.filter { $0["result"] != nil }
            let refused = replies.filter { $0.errorCode == -32003 }
            #expect(answered.count + refused.count == 1000, "\(replies.first { $0["result"] == nil && $0.errorCode != -32003 }?.description ?? "")")
            #expect(!answered.isEmpty && !refused.isEmpty, "answered \(answered.count), refused \(refused.count)")
            let data = refused.first?["error"]?["data"]
            #expect(data?["setting"] == .string("max_queued_reply_bytes_per_connection"), "\(refused.first?.description ?? "")")
            #expect(data?["limit"] == .integer(Int64(bound)), "\(refused.first?.description ?? "")")
            #expect((data?["actual"]?.intValue ?? 0) > bound, "\(refused.first?.description ?? "")")
            // The connection is usable after it.
            try expectReply(client.ping(id: 5), equals: #"{"jsonrpc":"2.0","id":5,"result":"pong"}"#)
        }
    }

    @Test(
        "several peers that never read: the replies queued in the whole daemon stay within --max-queued-reply-bytes; a well-behaved client is served meanwhile; every byte leaves the gauge once they are closed"
    )
    func daemonWideBound() throws {
        let perConnection = 4 << 20
        let total = 8 << 20
        try withDaemon([
            "--max-queued-reply-bytes-per-connection", String(perConnection), "--max-queued-reply-bytes", String(total),
            "--frame-timeout-ms", "1500",
        ]) { daemon in
            let other = try daemon.connect()
            try expectReply(other.ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
            let before = try OverloadTests.residentKiB(daemon.pid)
            var peers: [RPCTestClient] = []
            for _ in 0..<8 {
                let peer = try RPCTestClient(path: daemon.socketPath)
                for _ in 0..<2 { try? peer.send(raw: Self.discoverBatch, timeout: .seconds(2)) }
                peers.append(peer)
            }
            let peaks = try Self.samplePeaks(daemon, observer: other, timeout: .seconds(20)) {
                daemon.stderr.contains("replies not read")
            }
            let queued = try #require(peaks.queued, "no rpc_reply_bytes_queued gauge")
            // Without the daemon-wide bound: 8 x 4 MiB and more. With it: the bound, plus at most a
            // reply per event-loop thread that raced past it.
            #expect(queued <= total + 2 * perConnection, "\(queued) bytes queued in the daemon")
            let grownMiB = (peaks.residentKiB - before) / 1024
            #expect(grownMiB < 96, "RSS grew by \(grownMiB) MiB")
            #expect(daemon.stderr.contains("replies not read"), "no peer over its bound was closed")
            try expectReply(other.ping(id: 2), equals: #"{"jsonrpc":"2.0","id":2,"result":"pong"}"#)
            for peer in peers { peer.close() }
            try OverloadTests.eventually("every closed peer's bytes leave the gauge") { (try Self.queuedReplyBytes(other, id: 3) ?? -1) == 0 }
        }
    }

    // Alone (no other live test meanwhile): a peer over its bound that reads nothing for 1 s is
    // closed, and on a loaded machine this reader could pause that long between replies.
    @Test(
        "a client that reads gets every reply past the bound: its calls wait for it, none fails (50 pipelined rpc.discover, then end of input, socat-style)",
        .blockingIOAlone)
    func readingClientIsServedPastTheBound() throws {
        try withDaemon(["--max-queued-reply-bytes-per-connection", "65536", "--frame-timeout-ms", "1000"]) { daemon in
            let client = try daemon.connect()
            try client.send(raw: (1...50).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"rpc.discover"}"# + "\n" }.joined())
            client.shutdownWrite()
            var ids: [Int] = []
            for _ in 1...50 {
                let reply = try client.readJSON()
                #expect(reply["result"]?["methods"] != nil, "\(reply.description.prefix(300))")
                if let id = reply["id"]?.intValue { ids.append(id) }
            }
            #expect(ids == Array(1...50))
            #expect(try client.readUntilEOF() == "", "the connection closes once everything is answered")
        }
    }
}
