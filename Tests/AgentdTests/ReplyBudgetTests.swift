import Foundation
import RPC
import Services
import Testing

/// The reply budget's arithmetic (issue 17, item 3): estimates never below what the wire encoder
/// writes, and pages cut where the next item would pass the budget.
@Suite("Reply budget")
struct ReplyBudgetTests {
    static let date = Date(timeIntervalSince1970: 1_800_000_000.123)

    static func message(_ content: String, depth: Int = 1) -> Message {
        Message(
            id: "msg_01a24f52e8053fbd9ab2e1717db064e2", chatId: "cht_01a24f52e8053fbd9ab2e1717db064e2",
            parentId: "msg_01a24f52e8053fbd9ab2e1717db064e1",
            role: .assistant, content: content, depth: depth, createdAt: date)
    }

    @Test(
        "text sizes count escapes as the wire encoder writes them; items are never estimated below their encoding",
        arguments: [
            "", "plain", #"quote " and backslash \"#, "line\nbreak\ttab\r\u{8}\u{c}", "\u{0}\u{1}\u{1f}", "é 🚀 ⟦snippet⟧",
            String(repeating: "\"\u{2}", count: 1000),
        ])
    func estimatesCoverTheEncoding(text: String) throws {
        let encoder = RPCJSONEncoder()
        let encoded = try encoder.encodeToBytes(text).count
        #expect(ReplySize.text(text) == encoded, "exact for a string")
        let message = Self.message(text, depth: Int.max)
        let encodedMessage = try encoder.encodeToBytes(message).count
        #expect(message.replySize >= encodedMessage)
        let module = Module(
            id: "mod_1", title: text, description: text, content: text, tags: [text, "x"], createdAt: Self.date, updatedAt: Self.date)
        let encodedModule = try encoder.encodeToBytes(module).count
        #expect(module.replySize >= encodedModule)
    }

    @Test("a page stops before the item that would pass the budget, its cursor the last kept; the first item alone too large throws")
    func pagesStopAtTheBudget() throws {
        let rows = (1...10).map { Self.message(String(repeating: "x", count: 1000), depth: $0) }
        let budget = ReplyBudget(bytes: 4096)
        let page = try KeysetPage(rows: rows, limit: 9, budget: budget, position: { Int64($0.depth) }, item: { $0 })
        #expect(page.items.map(\.depth) == [1, 2])
        #expect(page.nextCursor.flatMap(PageCursor.decode) == 2)
        let encoded = try RPCJSONEncoder().encodeToBytes(page).count
        #expect(encoded < 4096)

        // Everything fits: the usual cursor (there is a next row) or none.
        let roomy = ReplyBudget(bytes: 1 << 20)
        #expect(
            try KeysetPage(rows: rows, limit: 9, budget: roomy, position: { Int64($0.depth) }, item: { $0 }).nextCursor.flatMap(PageCursor.decode)
                == 9)
        #expect(try KeysetPage(rows: rows, limit: 10, budget: roomy, position: { Int64($0.depth) }, item: { $0 }).nextCursor == nil)

        #expect(throws: ReplyBudgetError.self) {
            try KeysetPage(
                rows: [Self.message(String(repeating: "y", count: 5000))], limit: 1, budget: budget, position: { Int64($0.depth) }, item: { $0 })
        }
    }
}
