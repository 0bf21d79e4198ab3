import AgentdTesting
import Foundation
import NIOCore
import RPC
import Testing

@testable import Daemon

/// Issue 17, item 10: a subscription opened with a session must not outlive the session's expiry.
extension HostileClientTests {
    // Alone (no other live test meanwhile): the session lives 1 s, and on a loaded machine it could
    // expire before the subscribe that follows the login.
    @Test("an expired session's live subscription ends with events.ended {reason: session expired} (over the socket)", .blockingIOAlone)
    func expiredSessionEndsSubscription() throws {
        try withDaemon(environment: ["AGENTD_AUTH_SESSION_LIFETIME_SECONDS": "1"]) { daemon in
            let client = try daemon.connect()
            _ = try AuthTests.call(client, id: 1, "auth.register", #"{"username":"erin","password":"correct horse"}"#)
            let login = try AuthTests.call(client, id: 2, "auth.login", #"{"username":"erin","password":"correct horse"}"#)
            #expect(login["result"]?["token"] != nil, "reply: \(login)")
            let subscription = try #require(
                try AuthTests.call(client, id: 3, "events.subscribe", #"{"topics":["module.*"]}"#)["result"]?["subscription"]?.stringValue)
            // The timer fires at the expiry, a second after the login: the deadline is generous.
            let ended = try client.readJSON(timeout: .seconds(10))
            #expect(ended["method"]?.stringValue == "events.ended", "\(ended)")
            #expect(ended["params"]?["reason"]?.stringValue == "session expired", "\(ended)")
            #expect(ended["params"]?["subscription"]?.stringValue == subscription)
        }
    }

    @Test("an expired session's subscription ends on the daemon's timer, on the injected clock (in process)")
    func expiredSessionEndsSubscriptionInProcess() async throws {
        let clock = TestClock()
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.auth.sessionLifetime = 3600
        let dependencies = try await Dependencies.testing(
            configuration: configuration, collaborators: .init(clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts()))
        _ = try await dependencies.auth.register(username: "erin", password: "password1")
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: RPCPeer(uid: 777, gid: 777, pid: 1))
        let login = try await connection.call("auth.login", #"{"username":"erin","password":"password1"}"#)
        #expect(AuthRoutesTests.result(login)?["token"] is String, "\(login)")
        let subscribed = try await connection.call("events.subscribe", #"{"topics":["module.*"]}"#)
        let subscription = try #require(AuthRoutesTests.result(subscribed)?["subscription"] as? String, "\(subscribed)")

        // Not yet: a minute before the expiry, nothing ends.
        clock.advance(by: 3540)
        await connection.channel.testingEventLoop.advanceTime(by: .seconds(3540))
        #expect(dependencies.eventBus.subscriptionCount == 1)

        clock.advance(by: 61)
        await connection.channel.testingEventLoop.advanceTime(by: .seconds(61))
        let ended = try await connection.next()
        #expect(ended["method"] as? String == "events.ended", "\(ended)")
        let params = ended["params"] as? [String: Any]
        #expect(params?["reason"] as? String == "session expired", "\(ended)")
        #expect(params?["subscription"] as? String == subscription)
        #expect(dependencies.eventBus.subscriptionCount == 0)
    }
}
