import Foundation
import RPC
import Services
import Testing

/// Events whose `json` is written by hand must read exactly as the generic encoder writes them:
/// subscribers and `events.replay` get one or the other (stored events, catch-up, live).
@Suite("Hand-written event JSON")
struct DomainEventJSONTests {
    static func message(id: String, parentId: String?, role: MessageRole, depth: Int, chatId: String = "cht_0123456789abcdef") -> Message {
        Message(id: id, chatId: chatId, parentId: parentId, role: role, content: "text", depth: depth, createdAt: Date(timeIntervalSince1970: 0))
    }

    @Test("chat.message.created: the same text as RPCJSONEncoder, with and without a parent, and with characters that need escaping")
    func messageCreated() throws {
        let cases = [
            Self.message(id: "msg_019a2b3c4d5e6f708192a3b4c5d6e7f8", parentId: nil, role: .user, depth: 0),
            Self.message(id: "msg_1", parentId: "msg_0", role: .assistant, depth: 12),
            Self.message(id: "msg_\"quoted\"\\slash/", parentId: "msg_\u{1}\n\t", role: .system, depth: 1, chatId: "cht_é✓"),
        ]
        for message in cases {
            let event = ChatsEvents.MessageCreated(userID: "usr_1", message: message)
            let generic = try RPCJSONEncoder().encodeToString(event)
            #expect(event.json == generic)
            // And it is JSON that reads back to the same members.
            let object = try #require(try JSONSerialization.jsonObject(with: Data((event.json ?? "").utf8)) as? [String: Any])
            #expect(object["messageId"] as? String == message.id)
            #expect(object["parentId"] as? String == message.parentId)
            #expect(object["depth"] as? Int == message.depth)
        }
    }

    @Test("job.*: the same text as RPCJSONEncoder, with characters that need escaping")
    func jobEvents() throws {
        for (jobId, kind) in [("job_019a2b3c4d5e6f70", "agent.run"), ("job_\"q\"\\", "kind\u{1}\n✓")] {
            let events: [any DomainEvent] = [
                JobsEvents.Queued(userID: "usr_1", jobId: jobId, kind: kind, attempt: 0),
                JobsEvents.Started(userID: "usr_1", jobId: jobId, kind: kind, attempt: 1),
                JobsEvents.Succeeded(userID: "usr_1", jobId: jobId, kind: kind, attempt: 12),
                JobsEvents.Failed(userID: "usr_1", jobId: jobId, kind: kind, attempt: 2, errorKind: "rate\"Limited"),
                JobsEvents.Cancelled(userID: "usr_1", jobId: jobId, kind: kind, attempt: 3),
            ]
            for event in events {
                let generic = try RPCJSONEncoder().encodeToString(event)
                #expect(event.json == generic, "\(type(of: event).topic)")
            }
        }
    }
}
