import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The audit log over the socket: security-relevant calls (logins, failed ones too, logouts,
/// password changes, refused sessions) with time, user, uid and outcome, read back with audit.list
/// by that user only.
@Suite("Audit log", .blockingIO, .timeLimit(.minutes(1)))
struct AuditTests {
    static func entries(_ client: RPCTestClient, id: Int) throws -> [JSON] {
        let reply = try AuthTests.call(client, id: id, "audit.list", #"{"limit":200}"#)
        return try #require(reply["result"]?["items"]?.arrayValue, "reply: \(reply)")
    }

    static func actions(_ entries: [JSON]) -> [String] {
        entries.compactMap { entry in
            guard let action = entry["action"]?.stringValue, let outcome = entry["outcome"]?.stringValue else { return nil }
            return "\(action) \(outcome)"
        }
    }

    @Test("logins (failed too), a password change and a logout are recorded under the user, with uid and outcome, newest first")
    func securityCalls() throws {
        try withDaemon { daemon in
            let bob = try daemon.connect()
            _ = try AuthTests.call(bob, id: 1, "auth.register", #"{"username":"bob","password":"correct horse"}"#)
            let failed = try AuthTests.call(bob, id: 2, "auth.login", #"{"username":"BOB","password":"wrong horse"}"#)
            #expect(failed["error"]?["code"] == .integer(-32021))
            _ = try AuthTests.call(bob, id: 3, "auth.login", #"{"username":"bob","password":"correct horse"}"#)
            let changed = try AuthTests.call(bob, id: 4, "auth.changePassword", #"{"oldPassword":"correct horse","newPassword":"battery staple"}"#)
            #expect(changed["error"] == nil, "reply: \(changed)")

            let entries = try Self.entries(bob, id: 5)
            let calls = entries.filter { $0["eventSeq"] == nil }
            #expect(Self.actions(calls) == ["auth.changePassword ok", "auth.login ok", "auth.login error -32021"])
            #expect(calls.allSatisfy { $0["uid"]?.intValue == Int(getuid()) && $0["occurredAt"]?.stringValue != nil })
            #expect(calls.last?["data"]?["username"]?.stringValue == "BOB")
            // The account's creation comes from its event (the audit consumer, in its own time).
            let deadline = Deadline(.seconds(10))
            var all = entries
            while !Self.actions(all).contains("user.registered ok") {
                guard !deadline.hasPassed else { Issue.record("user.registered never audited: \(Self.actions(all))"); return }
                all = try Self.entries(bob, id: 6)
            }

            _ = try AuthTests.call(bob, id: 7, "auth.logout")
            // Logged out, the connection is nobody: it sees none of bob's entries (its own uid's
            // account has none of these).
            #expect(!Self.actions(try Self.entries(bob, id: 8)).contains("auth.logout ok"))
            let again = try daemon.connect()
            _ = try AuthTests.call(again, id: 1, "auth.login", #"{"username":"bob","password":"battery staple"}"#)
            #expect(Self.actions(try Self.entries(again, id: 2)).prefix(2) == ["auth.login ok", "auth.logout ok"])
        }
    }

    @Test("a session revoked elsewhere is refused and recorded under its user; an unknown token under no one")
    func refusals() throws {
        try withDaemon { daemon in
            let first = try daemon.connect()
            _ = try AuthTests.call(first, id: 1, "auth.register", #"{"username":"carol","password":"correct horse"}"#)
            let token = try #require(
                try AuthTests.call(first, id: 2, "auth.login", #"{"username":"carol","password":"correct horse"}"#)["result"]?["token"]?.stringValue)
            let second = try daemon.connect()
            #expect(try AuthTests.call(second, id: 1, "auth.authenticate", #"{"token":"\#(token)"}"#)["result"] != nil)
            _ = try AuthTests.call(first, id: 3, "auth.logout")
            let refused = try AuthTests.call(second, id: 2, "modules.list")
            #expect(refused["error"]?["code"] == .integer(-32020))

            let stranger = try daemon.connect()
            let bogus = try AuthTests.call(stranger, id: 1, "auth.authenticate", #"{"token":"not-a-token"}"#)
            #expect(bogus["error"]?["code"] == .integer(-32020))

            let carol = try daemon.connect()
            _ = try AuthTests.call(carol, id: 1, "auth.login", #"{"username":"carol","password":"correct horse"}"#)
            let entries = try Self.entries(carol, id: 2).filter { $0["eventSeq"] == nil }
            let refusal = try #require(entries.first { $0["action"]?.stringValue == "auth.refused" }, "\(Self.actions(entries))")
            #expect(refusal["outcome"]?.stringValue == "error -32020" && refusal["data"]?["method"]?.stringValue == "modules.list")
            #expect(Self.actions(entries).filter { $0.hasPrefix("auth.authenticate") } == ["auth.authenticate ok"])
        }
    }
}

/// A subscription opened with a session ends when that session is revoked elsewhere: a client
/// never keeps receiving a user's events on a session that no longer exists.
@Suite("Subscriptions of revoked sessions", .blockingIO, .timeLimit(.minutes(1)))
struct RevokedSubscriptionTests {
    @Test("a logout on another connection ends the session's subscription with events.ended; nothing follows it")
    func logoutEndsSubscription() throws {
        try withDaemon { daemon in
            let first = try daemon.connect()
            _ = try AuthTests.call(first, id: 1, "auth.register", #"{"username":"dora","password":"correct horse"}"#)
            let token = try #require(
                try AuthTests.call(first, id: 2, "auth.login", #"{"username":"dora","password":"correct horse"}"#)["result"]?["token"]?.stringValue)
            let watcher = try daemon.connect()
            #expect(try AuthTests.call(watcher, id: 1, "auth.authenticate", #"{"token":"\#(token)"}"#)["result"] != nil)
            let subscription = try #require(
                try AuthTests.call(watcher, id: 2, "events.subscribe", #"{"topics":["module.*"]}"#)["result"]?["subscription"]?.stringValue)

            // Another session of dora's keeps working and publishing.
            let other = try daemon.connect()
            _ = try AuthTests.call(other, id: 1, "auth.login", #"{"username":"dora","password":"correct horse"}"#)
            _ = try AuthTests.call(other, id: 2, "modules.create", #"{"title":"before"}"#)
            #expect(try watcher.readJSON()["params"]?["topic"]?.stringValue == "module.created")

            _ = try AuthTests.call(first, id: 3, "auth.logout")
            let ended = try watcher.readJSON()
            #expect(ended["method"]?.stringValue == "events.ended", "\(ended)")
            #expect(ended["params"]?["subscription"]?.stringValue == subscription)
            _ = try AuthTests.call(other, id: 3, "modules.create", #"{"title":"after"}"#)
            try watcher.expectNoData(within: .milliseconds(300))
        }
    }
}
