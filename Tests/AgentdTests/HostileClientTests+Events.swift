import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// Issue 17, item 11: a subscription's topics are bounded (the bus matches each of a user's events
/// against every pattern of every subscription of that user). In process: the limits are the
/// params checks of the daemon's own routes.
extension HostileClientTests {
    @Test("events.subscribe and events.replay take at most 64 topic patterns, each at most 256 bytes: more is -32602 naming the limit")
    func subscriptionTopicsAreBounded() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            func topics(_ count: Int, _ pattern: String = "chat.*") -> [String] { Array(repeating: pattern, count: count) }

            let tooMany = await #expect(throws: RPCError.self) { try await client.send(Events.Subscribe.self, .init(topics: topics(65))) }
            #expect(tooMany?.code == .invalidParams, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["field"]?.stringValue == "topics", "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["limit"]?.intValue == 64, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["actual"]?.intValue == 65, "\(String(describing: tooMany))")
            #expect(tooMany?.dataValue?["reason"]?.stringValue?.contains("64") == true, "\(String(describing: tooMany))")

            let replay = await #expect(throws: RPCError.self) { try await client.send(Events.Replay.self, .init(since: 0, topics: topics(65))) }
            #expect(replay?.dataValue?["limit"]?.intValue == 64, "\(String(describing: replay))")

            let long = "chat." + String(repeating: "x", count: 252) + ".*"
            let tooLong = await #expect(throws: RPCError.self) { try await client.send(Events.Subscribe.self, .init(topics: ["chat.*", long])) }
            #expect(tooLong?.code == .invalidParams, "\(String(describing: tooLong))")
            #expect(tooLong?.dataValue?["field"]?.stringValue == "topics[1]", "\(String(describing: tooLong))")
            #expect(tooLong?.dataValue?["limit"]?.intValue == 256, "\(String(describing: tooLong))")
            #expect(tooLong?.dataValue?["actual"]?.intValue == 259, "\(String(describing: tooLong))")

            // 64 is allowed, and the subscription works.
            let subscription = try await client.send(Events.Subscribe.self, .init(topics: topics(64)))
            let chat = try await client.send(Chats.Create.self, .init(title: "Still delivered"))
            let event = try await client.nextNotification(of: EventsNotifications.Event.self)
            #expect(event.subscription == subscription.subscription)
            #expect(try event.data.decode(JSONValue.self)["chatId"]?.stringValue == chat.id, "\(event.data)")
        }
    }
}
