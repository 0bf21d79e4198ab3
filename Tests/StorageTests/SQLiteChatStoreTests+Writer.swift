import Foundation
import GRDB
import Logging
import Services
import Testing

@testable import Storage

/// What a select and an append cost the single writer (issue 17, item 12): every user's write
/// waits for it, so its share of a select must not grow with the branch.
extension SQLiteChatStoreTests {
    /// A chat on a file (a pool: reads on their own connections, so the meter on the writer counts
    /// the writer's work alone) with two branches of `length` messages that split at the root:
    /// a_1 → … → a_length, then b_1 → … → b_length (a second root: an edit of the first message).
    static func twoBranches(length: Int) async throws -> (database: AgentDatabase, store: SQLiteChatStore, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("agentd-branch-\(UUID().uuidString)")
        let database = try AgentDatabase.open(path: folder.appendingPathComponent("agentd.sqlite").path)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'usr_1', '2026-01-01T00:00:00.000Z')")
        }
        let store = SQLiteChatStore(writer: database.writer, groupWriter: .testing(database.writer), ledger: StorageLedger(quota: .unlimited))
        _ = try await Self.chat(store, "cht_two")
        for branch in ["a", "b"] {
            try await Self.append(store, "\(branch)_1", to: "cht_two", branch == "a" ? .afterActiveLeaf : .siblingOf(messageID: "a_1"))
            // The rest of the line in one statement, each message the child of the one before (the
            // first child: in the root's chain, 0014).
            try await database.writer.write { db in
                try db.execute(
                    sql: """
                        WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                        INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at, chain_seq)
                        SELECT ?2 || '_' || i, 'cht_two', 'usr_1', ?2 || '_' || (i - 1), 'user', 'm' || i, i, '2027-01-15T08:00:00.000Z',
                            (SELECT chain_seq FROM messages WHERE id = ?2 || '_1') FROM n
                        """, arguments: [length, branch])
            }
        }
        return (database, store, folder)
    }

    @Test("selecting one then the other of two long branches that split at the root holds the writer for as long at 100,000 messages as at 1,000; an append after the leaf writes its message, the chat's leaf, the quota and its event, nothing else")
    func selectCostsTheWriterAConstant() async throws {
        var costs: [Int: (statements: Int, steps: Int, rowsChanged: Int)] = [:]
        for length in [1_000, 100_000] {
            let (database, store, folder) = try await Self.twoBranches(length: length)
            defer { try? FileManager.default.removeItem(at: folder) }
            let meter = try await StatementMeter(database.writer)
            var worst = (statements: 0, steps: 0, rowsChanged: 0)
            for (root, leaf) in [("a_1", "a_\(length)"), ("b_1", "b_\(length)"), ("a_1", "a_\(length)"), ("b_1", "b_\(length)")] {
                let select = try await meter.measureWrites { try await store.selectBranch(messageID: root, userID: "usr_1", updatedAt: Self.date) }
                #expect(select.result?.activeMessageId == leaf)
                #expect(select.result?.messageCount == length)
                worst = (max(worst.statements, select.statements), max(worst.steps, select.steps), max(worst.rowsChanged, select.rowsChanged))
            }
            costs[length] = worst
            // The branch shown is b's, whole, in order.
            let page = try #require(try await store.activeBranch(chatID: "cht_two", userID: "usr_1", afterDepth: length - 3, limit: 10))
            #expect(page.map(\.id) == (length - 2...length).map { "b_\($0)" })

            // The hot path: after the leaf.
            let append = try await meter.measureWrites { try await Self.append(store, "b_next", to: "cht_two") }
            #expect(append.result.depth == length + 1)
            let tables = append.writes.compactMap { sql in
                ["messages", "chats", "user_usage", "events"].first { sql.contains("INSERT INTO \($0) ") || sql.contains("UPDATE \($0) ") }
                    ?? (sql.hasPrefix("BEGIN") || sql.hasPrefix("COMMIT") ? nil : sql)
            }
            #expect(tables.sorted() == ["chats", "events", "messages", "user_usage"], "an append's writes: \(append.writes)")
            #expect(append.rowsChanged == 4, "rows an append changed: \(append.rowsChanged)")
            #expect(try await store.activeBranch(chatID: "cht_two", userID: "usr_1", afterDepth: length - 1, limit: 10)?.map(\.id) == ["b_\(length)", "b_next"])
        }
        let short = try #require(costs[1_000])
        let long = try #require(costs[100_000])
        #expect(long.statements <= short.statements, "writer statements per select: \(long.statements) at 100,000 messages, \(short.statements) at 1,000")
        #expect(long.steps <= short.steps + short.steps / 10, "writer VM steps per select: \(long.steps) at 100,000 messages, \(short.steps) at 1,000")
        #expect(long.rowsChanged <= short.rowsChanged, "rows a select changed: \(long.rowsChanged) at 100,000 messages, \(short.rowsChanged) at 1,000")
        #expect(long.steps < 2_000, "writer VM steps per select of a 100,000-message branch: \(long.steps)")
    }
}
