import AgentdTesting
import Foundation
import RPC
import Services
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The audit log through the daemon's dispatcher, in process: security-relevant calls (logins,
/// failed ones too, logouts, password changes, refused sessions) with time, user, uid and outcome,
/// read back with audit.list by that user only.
@Suite("Audit log (in process)", .timeLimit(.minutes(1)))
struct AuditTests {
    static func entries(_ client: InProcessClient) async throws -> [JSONValue] {
        let result = try await client.call("audit.list", #"{"limit":200}"#).decode(JSONValue.self)
        return try #require(result["items"]?.arrayValue, "\(result)")
    }

    static func actions(_ entries: [JSONValue]) -> [String] {
        entries.compactMap { entry in
            guard let action = entry["action"]?.stringValue, let outcome = entry["outcome"]?.stringValue else { return nil }
            return "\(action) \(outcome)"
        }
    }

    static func code(_ error: RPCError?) -> Int? { error.map { Int($0.code.rawValue) } }

    @Test("logins (failed too), a password change and a logout are recorded under the user, with uid and outcome, newest first")
    func securityCalls() async throws {
        try await withInProcessDaemon { daemon in
            let bob = try await daemon.connect()
            _ = try await bob.send(Auth.Register.self, .init(username: "bob", password: "correct horse"))
            let failed = await #expect(throws: RPCError.self) { try await bob.send(Auth.Login.self, .init(username: "BOB", password: "wrong horse")) }
            #expect(Self.code(failed) == -32021)
            _ = try await bob.send(Auth.Login.self, .init(username: "bob", password: "correct horse"))
            _ = try await bob.send(Auth.ChangePassword.self, .init(oldPassword: "correct horse", newPassword: "battery staple"))

            let entries = try await Self.entries(bob)
            let calls = entries.filter { $0["eventSeq"] == nil }
            #expect(Self.actions(calls) == ["auth.changePassword ok", "auth.login ok", "auth.login error -32021"])
            #expect(calls.allSatisfy { $0["uid"]?.intValue == Int(getuid()) && $0["occurredAt"]?.stringValue != nil })
            #expect(calls.last?["data"]?["username"]?.stringValue == "BOB")
            // The account's creation comes from its event (the audit consumer, in its own task).
            let deadline = ContinuousClock.now + .seconds(10)
            var all = entries
            while !Self.actions(all).contains("user.registered ok") {
                guard ContinuousClock.now < deadline else {
                    Issue.record("user.registered never audited: \(Self.actions(all))")
                    return
                }
                await Task.yield()
                all = try await Self.entries(bob)
            }

            _ = try await bob.send(Auth.Logout.self)
            // Logged out, the connection is its uid's account again: it sees none of bob's entries
            // (that account has none of these).
            #expect(!Self.actions(try await Self.entries(bob)).contains("auth.logout ok"))
            let again = try await daemon.connect()
            _ = try await again.send(Auth.Login.self, .init(username: "bob", password: "battery staple"))
            #expect(Self.actions(try await Self.entries(again)).prefix(2) == ["auth.login ok", "auth.logout ok"])
        }
    }

    @Test("a session revoked elsewhere is refused and recorded under its user; an unknown token under no one")
    func refusals() async throws {
        try await withInProcessDaemon { daemon in
            let first = try await daemon.connect()
            let carolCredentials = Auth.Credentials(username: "carol", password: "correct horse")
            _ = try await first.send(Auth.Register.self, carolCredentials)
            let token = try await first.send(Auth.Login.self, carolCredentials).token
            let second = try await daemon.connect()
            _ = try await second.send(Auth.Authenticate.self, .init(token: token))
            _ = try await first.send(Auth.Logout.self)
            let refused = await #expect(throws: RPCError.self) { try await second.send(Modules.List.self, .init()) }
            #expect(Self.code(refused) == -32020)

            let stranger = try await daemon.connect()
            let bogus = await #expect(throws: RPCError.self) { try await stranger.send(Auth.Authenticate.self, .init(token: "not-a-token")) }
            #expect(Self.code(bogus) == -32020)

            let carol = try await daemon.connect()
            _ = try await carol.send(Auth.Login.self, carolCredentials)
            let entries = try await Self.entries(carol).filter { $0["eventSeq"] == nil }
            let refusal = try #require(entries.first { $0["action"]?.stringValue == "auth.refused" }, "\(Self.actions(entries))")
            #expect(refusal["outcome"]?.stringValue == "error -32020" && refusal["data"]?["method"]?.stringValue == "modules.list")
            #expect(Self.actions(entries).filter { $0.hasPrefix("auth.authenticate") } == ["auth.authenticate ok"])
        }
    }
}

/// A subscription opened with a session ends when that session is revoked elsewhere: a client
/// never keeps receiving a user's events on a session that no longer exists.
@Suite("Subscriptions of revoked sessions (in process)", .timeLimit(.minutes(1)))
struct RevokedSubscriptionTests {
    @Test("a logout on another connection ends the session's subscription with events.ended; nothing follows it")
    func logoutEndsSubscription() async throws {
        try await withInProcessDaemon { daemon in
            let first = try await daemon.connect()
            let dora = Auth.Credentials(username: "dora", password: "correct horse")
            _ = try await first.send(Auth.Register.self, dora)
            let token = try await first.send(Auth.Login.self, dora).token
            let watcher = try await daemon.connect()
            _ = try await watcher.send(Auth.Authenticate.self, .init(token: token))
            let subscribed = try await watcher.call("events.subscribe", #"{"topics":["module.*"]}"#).decode(JSONValue.self)
            let subscription = try #require(subscribed["subscription"]?.stringValue, "\(subscribed)")

            // Another session of dora's keeps working and publishing.
            let other = try await daemon.connect()
            _ = try await other.send(Auth.Login.self, dora)
            _ = try await other.send(Modules.Create.self, .init(title: "before"))
            #expect(try await watcher.nextNotification(of: EventsNotifications.Event.self).topic == "module.created")

            _ = try await first.send(Auth.Logout.self)
            // The next message, whatever it is, is the end.
            let ended = try JSONFragment(unchecked: await watcher.nextMessage()).decode(JSONValue.self)
            #expect(ended["method"]?.stringValue == "events.ended", "\(ended)")
            #expect(ended["params"]?["subscription"]?.stringValue == subscription)
            _ = try await other.send(Modules.Create.self, .init(title: "after"))
            let after = try? await watcher.nextMessage(timeout: .milliseconds(300))
            #expect(after == nil, "a message after events.ended: \(after ?? "")")
        }
    }
}
