import Foundation
import Testing

/// Rate limits over the socket: a class's budget is per caller, a batch spends its length, exempt
/// methods always answer, and the refusal says when to retry. (Recovery over time is tested on an
/// injected clock in RPCRateLimitTests.)
// Alone (no other live test meanwhile): a budget refills at 1 read a second, so on a loaded
// machine a slow test earns back the call it expects refused.
@Suite("Rate limits over the socket", .blockingIOAlone, .timeLimit(.minutes(1)))
struct RateLimitTests {
    /// The test runs as the daemon's own uid, exempt by default: the exemption is turned off.
    static let environment = [
        "AGENTD_RATE_LIMITING": "on", "AGENTD_RATE_EXEMPT_OWN_UID": "off", "AGENTD_RATE_READ_BURST": "3", "AGENTD_RATE_READ_PER_SECOND": "1",
    ]

    static func daemon(_ body: (DaemonProcess) throws -> Void) throws {
        try withDaemon(testMethods: false, environment: Self.environment, body)
    }

    @Test("a burst of reads passes, the next is refused with -32017 and retryAfterMs; pings are never limited")
    func burstThenRefused() throws {
        try Self.daemon { daemon in
            let client = try daemon.connect()
            for id in 1...3 { #expect(try AuthTests.call(client, id: id, "modules.list")["result"] != nil) }
            let refused = try AuthTests.call(client, id: 4, "modules.list")
            #expect(refused["error"]?["code"] == .integer(-32017), "reply: \(refused)")
            #expect(refused["error"]?["data"]?["class"]?.stringValue == "read")
            let wait = try #require(refused["error"]?["data"]?["retryAfterMs"]?.intValue)
            #expect(wait > 0 && wait <= 1000)
            // The budget is the caller's, not the connection's: another connection of the same uid
            // shares it. (Asked before the first connection's pause ends: a token is back by then.)
            let other = try daemon.connect()
            #expect(try AuthTests.call(other, id: 1, "modules.list")["error"]?["code"] == .integer(-32017))
            // Exempt and other classes are untouched (answered once the pause after -32017 ends).
            #expect(try AuthTests.call(client, id: 5, "system.ping")["result"] == .string("pong"))
            #expect(try AuthTests.call(client, id: 6, "modules.create", #"{"title":"t"}"#)["result"] != nil)
        }
    }

    @Test("a batch spends its length: of 5 reads in one batch, 3 run and 2 are refused")
    func batchCountsItsLength() throws {
        try Self.daemon { daemon in
            let client = try daemon.connect()
            let calls = (1...5).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.list"}"# }.joined(separator: ",")
            try client.send(line: "[\(calls)]")
            let replies = try #require(try client.readJSON().arrayValue)
            #expect(replies.count == 5)
            #expect(replies.filter { $0["result"] != nil }.count == 3)
            #expect(replies.filter { $0["error"]?["code"] == .integer(-32017) }.count == 2)
        }
    }

    /// The tarpit: after a -32017 the daemon stops reading the connection until `retryAfterMs` has
    /// passed, so a client that resends at once is not answered at once (in process, with the
    /// exact counts: RPCRateLimitPauseTests).
    @Test("a flooder that ignores retryAfterMs: of 1,000 pipelined reads, 3 are served and 1 refused, then nothing for a while")
    func flooderPaused() throws {
        try Self.daemon { daemon in
            let client = try daemon.connect()
            try client.send(raw: (1...1000).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.list"}"# + "\n" }.joined())
            // The refusal is answered at once, the reads when the store answers: in any order.
            let first = try (1...4).map { _ in try client.readJSON() }.sorted { ($0["id"]?.intValue ?? 0) < ($1["id"]?.intValue ?? 0) }
            #expect(first.map { $0["id"]?.intValue } == [1, 2, 3, 4])
            #expect(first[3]["error"]?["code"] == .integer(-32017), "\(first[3])")
            // Without the pause, 996 more refusals would follow at once. (The pause is about a
            // second: the bucket refills one read per second.)
            try client.expectNoData(within: .milliseconds(200), "answered while paused")
            // Then the next read runs (a token is back) and the one after it is refused and paused
            // again.
            let next = try (1...2).map { _ in try client.readJSON()["id"]?.intValue ?? 0 }
            #expect(next.sorted() == [5, 6])
            try client.expectNoData(within: .milliseconds(200), "answered while paused again")
        }
    }

    /// Another uid has a budget of its own (in process, where the test picks the peer uid:
    /// HostileClientTests.accountsShareTheUIDsBudget); a second account does not (issue 17).
    @Test("another account signed in from the same uid shares the uid's budget")
    func perUser() throws {
        try Self.daemon { daemon in
            // Bob signs in first (hashing a password takes a while on a loaded machine, long
            // enough for a read token to come back), then the uid spends its reads.
            let bob = try daemon.connect()
            _ = try AuthTests.call(bob, id: 1, "auth.register", #"{"username":"bob","password":"correct horse"}"#)
            let login = try AuthTests.call(bob, id: 2, "auth.login", #"{"username":"bob","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")

            let client = try daemon.connect()
            // The fourth read is refused; a fifth on this connection would wait out the pause after
            // the refusal, long enough for a token to come back.
            for id in 1...3 { _ = try AuthTests.call(client, id: id, "modules.list") }
            #expect(try AuthTests.call(client, id: 4, "modules.list")["error"]?["code"] == .integer(-32017))
            #expect(try AuthTests.call(bob, id: 3, "modules.list")["error"]?["code"] == .integer(-32017))
        }
    }
}
