import AgentdTesting
import Daemon
import Foundation
import NIOCore
import RPC
import Services
import Testing

/// Issue 17, item 10: a subscription opened with a session must not outlive the session's expiry.
extension HostileClientTests {
    // In process: the expiry is the daemon's timer on the injected clock and the connection's event
    // loop, advanced by the test (over the socket this needed a 1 s session, waited out on the wall
    // clock, with no other live test running).
    @Test("an expired session's live subscription ends with events.ended {reason: session expired}, on the daemon's timer and the injected clock")
    func expiredSessionEndsSubscription() async throws {
        try await withInProcessDaemon(configure: { $0.auth.sessionLifetime = 3600 }) { daemon in
            let client = try await daemon.connect(uid: 777)
            let credentials = Auth.Credentials(username: "erin", password: "correct horse")
            _ = try await client.send(Auth.Register.self, credentials)
            let login = try await client.send(Auth.Login.self, credentials)
            #expect(!login.token.isEmpty, "\(login)")
            let subscription = try await client.send(Events.Subscribe.self, .init(topics: ["module.*"])).subscription
            let bus = daemon.dependencies.eventBus

            // Not yet: a minute before the expiry, nothing ends.
            daemon.clock.advance(by: 3540)
            await client.channel.testingEventLoop.advanceTime(by: .seconds(3540))
            #expect(bus.subscriptionCount == 1)
            #expect(await client.unreadCount == 0)

            daemon.clock.advance(by: 61)
            await client.channel.testingEventLoop.advanceTime(by: .seconds(61))
            let ended = try await client.nextNotification(of: EventsNotifications.Ended.self)
            #expect(ended.reason == "session expired")
            #expect(ended.subscription == subscription)
            #expect(bus.subscriptionCount == 0)
        }
    }
}
