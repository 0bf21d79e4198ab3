import Foundation
import Testing

/// Issue 17, item 11: a subscription's topics are bounded (the bus matches each of a user's events
/// against every pattern of every subscription of that user).
extension HostileClientTests {
    @Test("events.subscribe and events.replay take at most 64 topic patterns, each at most 256 bytes: more is -32602 naming the limit")
    func subscriptionTopicsAreBounded() throws {
        try withDaemon { daemon in
            let client = ClientConnection(try daemon.connect())
            func topics(_ count: Int, _ pattern: String = "chat.*") -> String {
                "[" + Array(repeating: "\"\(pattern)\"", count: count).joined(separator: ",") + "]"
            }

            let tooMany = try client.call("events.subscribe", #"{"topics":\#(topics(65))}"#)
            #expect(tooMany["error"]?["code"]?.intValue == -32602, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["field"]?.stringValue == "topics", "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["limit"]?.intValue == 64, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["actual"]?.intValue == 65, "\(tooMany)")
            #expect(tooMany["error"]?["data"]?["reason"]?.stringValue?.contains("64") == true, "\(tooMany)")

            let replay = try client.call("events.replay", #"{"since":0,"topics":\#(topics(65))}"#)
            #expect(replay["error"]?["data"]?["limit"]?.intValue == 64, "\(replay)")

            let long = "chat." + String(repeating: "x", count: 252) + ".*"
            let tooLong = try client.call("events.subscribe", #"{"topics":["chat.*","\#(long)"]}"#)
            #expect(tooLong["error"]?["code"]?.intValue == -32602, "\(tooLong)")
            #expect(tooLong["error"]?["data"]?["field"]?.stringValue == "topics[1]", "\(tooLong)")
            #expect(tooLong["error"]?["data"]?["limit"]?.intValue == 256, "\(tooLong)")
            #expect(tooLong["error"]?["data"]?["actual"]?.intValue == 259, "\(tooLong)")

            // 64 is allowed, and the subscription works.
            _ = try client.subscribe(#"{"topics":\#(topics(64))}"#)
            let chat = try client.result("chats.create", #"{"title":"Still delivered"}"#)
            let event = try client.nextNotification()
            #expect(event["params"]?["data"]?["chatId"] == chat["id"], "\(event)")
        }
    }
}
