import Foundation
import Testing

/// Rate limits over the socket: a class's budget is per caller, a batch spends its length, exempt
/// methods always answer, and the refusal says when to retry. (Recovery over time is tested on an
/// injected clock in RPCRateLimitTests.)
@Suite("Rate limits over the socket", .timeLimit(.minutes(1)))
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
            // Exempt and other classes are untouched.
            #expect(try AuthTests.call(client, id: 5, "system.ping")["result"] == .string("pong"))
            #expect(try AuthTests.call(client, id: 6, "modules.create", #"{"title":"t"}"#)["result"] != nil)
            // The budget is the caller's, not the connection's: another connection of the same uid
            // shares it.
            let other = try daemon.connect()
            #expect(try AuthTests.call(other, id: 1, "modules.list")["error"]?["code"] == .integer(-32017))
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

    /// Another uid has a budget of its own (in process, where the test picks the peer uid:
    /// HostileClientTests.accountsShareTheUIDsBudget); a second account does not (issue 17).
    @Test("another account signed in from the same uid shares the uid's budget")
    func perUser() throws {
        try Self.daemon { daemon in
            // Bob signs in first: registering and signing in hash passwords for about a second in a
            // debug build, time in which the read budget (1/s) would refill between the two.
            let bob = try daemon.connect()
            _ = try AuthTests.call(bob, id: 1, "auth.register", #"{"username":"bob","password":"correct horse"}"#)
            let login = try AuthTests.call(bob, id: 2, "auth.login", #"{"username":"bob","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")

            let client = try daemon.connect()
            for id in 1...4 { _ = try AuthTests.call(client, id: id, "modules.list") }
            #expect(try AuthTests.call(client, id: 5, "modules.list")["error"]?["code"] == .integer(-32017))
            #expect(try AuthTests.call(bob, id: 3, "modules.list")["error"]?["code"] == .integer(-32017))
        }
    }
}
