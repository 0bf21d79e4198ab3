import AgentdTesting
import Foundation
import RPC
import Services
import Synchronization
import Testing

@testable import Daemon

/// Issue 17, item 3: one call must not make a reply of hundreds of MiB. The daemon (in process)
/// runs with a 64 KiB reply budget (`limits.reply_budget_bytes`) so that a few 20 KiB messages pass it.
extension HostileClientTests {
    static let replyBudget = 64 << 10

    /// One in-process connection with the reply's raw size: the budget is about bytes on the wire.
    final class SizedClient: Sendable {
        let client: InProcessClient
        private let nextID = Mutex(1)

        init(_ client: InProcessClient) { self.client = client }

        /// The reply to `method` and its size in bytes (the line, without its newline).
        func call(_ method: String, _ params: String) async throws -> (reply: JSON, bytes: Int) {
            let id = nextID.withLock { id in
                defer { id += 1 }
                return id
            }
            try await client.write(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"# + "\n")
            let line = try await client.nextMessage()
            let reply = try JSON(parsing: line)
            #expect(reply["id"] == .integer(Int64(id)), "reply: \(line.prefix(300))")
            return (reply, line.utf8.count)
        }

        func result(_ method: String, _ params: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> JSON {
            let reply = try await call(method, params).reply
            return try #require(reply["result"], "\(method): \(reply)", sourceLocation: sourceLocation)
        }
    }

    static func withBudgetedDaemon(_ body: (SizedClient) async throws -> Void) async throws {
        try await withInProcessDaemon(configure: { $0.replyBudget = ReplyBudget(bytes: replyBudget) }) { daemon in
            try await body(SizedClient(try await daemon.connect()))
        }
    }

    /// `-32006` with `{setting, limit, actual}`, actual over the limit.
    static func expectReplyTooLarge(_ reply: JSON, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.errorCode == -32006, "reply: \(reply)", sourceLocation: sourceLocation)
        let data = reply["error"]?["data"]
        #expect(data?["setting"]?.stringValue == "reply_budget_bytes", "reply: \(reply)", sourceLocation: sourceLocation)
        #expect(data?["limit"]?.intValue == replyBudget, "reply: \(reply)", sourceLocation: sourceLocation)
        #expect((data?["actual"]?.intValue ?? 0) > replyBudget, "reply: \(reply)", sourceLocation: sourceLocation)
    }

    /// About 20 KiB, with characters JSON escapes (quotes, newlines, a control character) so the
    /// estimate has to count escapes, not only bytes.
    static func bulky(_ index: Int) -> String {
        "#\(index) " + String(repeating: #"say "hi"\n"#, count: 2000) + "\u{1}"
    }

    /// JSON-escaped, for a params literal.
    static func quoted(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    @Test("chats.messages.list stops a page before the reply budget and pages through every message exactly once")
    func messagesListPagesUnderBudget() async throws {
        try await Self.withBudgetedDaemon { client in
            let chatID = try #require(try await client.result("chats.create", "{}")["id"]?.stringValue)
            var appended: [String] = []
            for index in 0..<12 {
                let message = try await client.result(
                    "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":\#(Self.quoted(Self.bulky(index)))}"#)
                appended.append(try #require(message["id"]?.stringValue))
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let params = #"{"chatId":"\#(chatID)","limit":500"# + (cursor.map { #","cursor":"\#($0)""# } ?? "") + "}"
                let (reply, bytes) = try await client.call("chats.messages.list", params)
                let page = try #require(reply["result"], "reply: \(reply)")
                #expect(bytes <= Self.replyBudget, "a page of \(bytes) bytes passes the \(Self.replyBudget)-byte budget")
                let items = try #require(page["items"]?.arrayValue)
                #expect(!items.isEmpty)
                for item in items {
                    seen.append(try #require(item["id"]?.stringValue))
                    #expect(item["content"]?.stringValue?.hasSuffix("\u{1}") == true, "items are whole")
                }
                cursor = page["nextCursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 20
            #expect(seen == appended, "every message once, in order")
            #expect(pages > 1, "12 messages of ~20 KiB cannot fit one 64 KiB reply")
        }
    }

    @Test(
        "a message larger than the reply budget: chats.messages.get and .list answer -32006 with {limit, actual}; the page before it stops short of it"
    )
    func singleMessageOverBudget() async throws {
        try await Self.withBudgetedDaemon { client in
            let chatID = try #require(try await client.result("chats.create", "{}")["id"]?.stringValue)
            let small = try await client.result("chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"short"}"#)
            let huge = try await client.result(
                "chats.messages.append", #"{"chatId":"\#(chatID)","role":"assistant","content":"\#(String(repeating: "y", count: 100_000))"}"#)
            let hugeID = try #require(huge["id"]?.stringValue)
            Self.expectReplyTooLarge(try await client.call("chats.messages.get", #"{"id":"\#(hugeID)"}"#).reply)

            let first = try await client.result("chats.messages.list", #"{"chatId":"\#(chatID)"}"#)
            #expect(first["items"]?.arrayValue?.map { $0["id"]?.stringValue } == [small["id"]?.stringValue], "page: \(first)")
            let cursor = try #require(first["nextCursor"]?.stringValue, "the message that did not fit is announced: \(first)")
            Self.expectReplyTooLarge(try await client.call("chats.messages.list", #"{"chatId":"\#(chatID)","cursor":"\#(cursor)"}"#).reply)

            // The connection stays usable.
            #expect(try await client.result("chats.messages.get", #"{"id":"\#(small["id"]?.stringValue ?? "")"}"#)["content"]?.stringValue == "short")
        }
    }

    @Test("chats.export of a chat larger than the reply budget answers -32006 (json and markdown); a small chat still exports")
    func exportOverBudget() async throws {
        try await Self.withBudgetedDaemon { client in
            let chatID = try #require(try await client.result("chats.create", "{}")["id"]?.stringValue)
            _ = try await client.result("chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":"hello"}"#)
            let small = try await client.call("chats.export", #"{"chatId":"\#(chatID)","format":"json"}"#)
            #expect(small.reply["result"]?["content"]?.stringValue?.contains("hello") == true, "reply: \(small.reply)")
            for index in 0..<4 {
                _ = try await client.result(
                    "chats.messages.append", #"{"chatId":"\#(chatID)","role":"user","content":\#(Self.quoted(Self.bulky(index)))}"#)
            }
            for format in ["json", "markdown"] {
                let (reply, bytes) = try await client.call("chats.export", #"{"chatId":"\#(chatID)","format":"\#(format)"}"#)
                Self.expectReplyTooLarge(reply)
                #expect(bytes < 1024, "\(format): an error, not the document (\(bytes) bytes)")
            }
        }
    }

    @Test("modules.create/update refuse a description over 4 KiB with -32602 {field, limit, actual}; 4 KiB is accepted")
    func moduleDescriptionLimit() async throws {
        try await Self.withBudgetedDaemon { client in
            let refused = try await client.call("modules.create", #"{"title":"t","description":"\#(String(repeating: "d", count: 5120))"}"#).reply
            #expect(refused.errorCode == -32602, "reply: \(refused)")
            let data = refused["error"]?["data"]
            #expect(
                data?["field"]?.stringValue == "description" && data?["limit"]?.intValue == 4096 && data?["actual"]?.intValue == 5120,
                "reply: \(refused)")

            let module = try await client.result("modules.create", #"{"title":"t","description":"\#(String(repeating: "é", count: 2048))"}"#)
            let moduleID = try #require(module["id"]?.stringValue)
            let update = try await client.call("modules.update", #"{"id":"\#(moduleID)","description":"\#(String(repeating: "é", count: 2049))"}"#)
                .reply
            #expect(update.errorCode == -32602 && update["error"]?["data"]?["actual"]?.intValue == 4098, "bytes of UTF-8, not characters: \(update)")
            #expect(try await client.result("modules.list", "{}")["items"]?.arrayValue?.count == 1, "nothing stored by the refusals")
        }
    }

    @Test("modules.list stays under the reply budget and pages through every module exactly once")
    func modulesListUnderBudget() async throws {
        try await Self.withBudgetedDaemon { client in
            var created: [String] = []
            for index in 0..<8 {
                let module = try await client.result("modules.create", #"{"title":"m\#(index)","content":\#(Self.quoted(Self.bulky(index)))}"#)
                created.append(try #require(module["id"]?.stringValue))
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let params = #"{"limit":200"# + (cursor.map { #","cursor":"\#($0)""# } ?? "") + "}"
                let (reply, bytes) = try await client.call("modules.list", params)
                let page = try #require(reply["result"], "reply: \(reply)")
                #expect(bytes <= Self.replyBudget, "a page of \(bytes) bytes passes the budget")
                seen += try #require(page["items"]?.arrayValue).compactMap { $0["id"]?.stringValue }
                cursor = page["nextCursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 20
            #expect(seen == created.reversed(), "every module once, newest first")
            #expect(pages > 1)
        }
    }

    @Test("prompts.list and events.replay stop before the reply budget; paging returns everything once")
    func otherListsUnderBudget() async throws {
        try await Self.withBudgetedDaemon { client in
            // Prompts of ~40 KiB bodies: one per page.
            var prompts: [String] = []
            for index in 0..<3 {
                let body = "p\(index) " + String(repeating: "text ", count: 8000)
                prompts.append(
                    try #require(try await client.result("prompts.create", #"{"name":"p\#(index)","body":"\#(body)"}"#)["id"]?.stringValue))
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let (reply, bytes) = try await client.call("prompts.list", #"{"limit":200"# + (cursor.map { #","cursor":"\#($0)""# } ?? "") + "}")
                let page = try #require(reply["result"], "reply: \(reply)")
                #expect(bytes <= Self.replyBudget, "a page of \(bytes) bytes passes the budget")
                seen += try #require(page["items"]?.arrayValue).filter { $0["builtIn"] != .bool(true) }.compactMap { $0["id"]?.stringValue }
                cursor = page["nextCursor"]?.stringValue
                pages += 1
            } while cursor != nil && pages < 20
            #expect(Set(seen) == Set(prompts) && seen.count == prompts.count, "every prompt once: \(seen)")

            // 120 module.created events with 200-character titles: more than one replay's budget.
            let title = String(repeating: "t", count: 196)
            for index in 0..<120 { _ = try await client.result("modules.create", #"{"title":"\#(title)\#(1000 + index)"}"#) }
            var titles: [String] = []
            var since = 0
            var replays = 0
            var hasMore = true
            while hasMore && replays < 50 {
                let (reply, bytes) = try await client.call("events.replay", #"{"since":\#(since),"limit":1000,"topics":["module.created"]}"#)
                let result = try #require(reply["result"], "reply: \(reply)")
                #expect(bytes <= Self.replyBudget, "a replay of \(bytes) bytes passes the budget")
                titles += try #require(result["events"]?.arrayValue).compactMap { $0["data"]?["title"]?.stringValue }
                since = try #require(result["lastSeq"]?.intValue)
                hasMore = result["hasMore"] == .bool(true)
                replays += 1
            }
            #expect(titles == (0..<120).map { "\(title)\(1000 + $0)" }, "every event once, in order")
            #expect(replays > 1)
        }
    }
}
