import Foundation
import GRDB
import Logging
import Services
import Synchronization
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
                // The chat shows the line to its end, as the store would (its last segment runs
                // to the chain's end already).
                try db.execute(sql: "UPDATE chats SET active_message_id = ? WHERE id = 'cht_two'", arguments: ["\(branch)_\(length)"])
            }
        }
        return (database, store, folder)
    }

    @Test(
        "selecting one then the other of two long branches that split at the root holds the writer for as long at 100,000 messages as at 1,000; an append after the leaf writes its message, the chat's leaf, the quota and its event, nothing else"
    )
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
            // One row each: no branch row (chat_paths wrote a fifth before 0014).
            #expect(append.rowsChanged == 4, "rows an append changed: \(append.rowsChanged)")
            #expect(
                try await store.activeBranch(chatID: "cht_two", userID: "usr_1", afterDepth: length - 1, limit: 10)?.map(\.id) == [
                    "b_\(length)", "b_next",
                ])
        }
        let short = try #require(costs[1_000])
        let long = try #require(costs[100_000])
        #expect(
            long.statements <= short.statements, "writer statements per select: \(long.statements) at 100,000 messages, \(short.statements) at 1,000")
        #expect(
            long.steps <= short.steps + short.steps / 10, "writer VM steps per select: \(long.steps) at 100,000 messages, \(short.steps) at 1,000")
        #expect(
            long.rowsChanged <= short.rowsChanged, "rows a select changed: \(long.rowsChanged) at 100,000 messages, \(short.rowsChanged) at 1,000")
        #expect(long.steps < 2_000, "writer VM steps per select of a 100,000-message branch: \(long.steps)")
    }
}

extension SQLiteChatStoreTests {
    /// Counts calls from any task.
    final class Counter: Sendable {
        private let count = Mutex(0)
        /// The count after this call.
        func next() -> Int {
            count.withLock {
                $0 += 1
                return $0
            }
        }
        var value: Int { count.withLock { $0 } }
    }

    @Test(
        "a select planned before a new fork on its walk is planned again (inside the writer after three tries); an append after the leaf meanwhile leaves the plan good"
    )
    func stalePlans() async throws {
        let database = try await Self.database()
        let store = SQLiteChatStore(writer: database.writer, groupWriter: .testing(database.writer), ledger: StorageLedger(quota: .unlimited))
        _ = try await Self.chat(store, "cht_1")
        for id in ["m1", "m2", "m3"] { try await Self.append(store, id, to: "cht_1") }

        // m2 regenerated while the select of m1 is planned: m1's newest child is then m2b.
        let plans = Counter()
        let regenerated = try await store.selectBranch(messageID: "m1", userID: "usr_1", updatedAt: Self.date) {
            if plans.next() == 1 { try await Self.append(store, "m2b", to: "cht_1", .siblingOf(messageID: "m2")) }
        }
        #expect(regenerated?.activeMessageId == "m2b")
        #expect(plans.value == 2)
        try await Self.checkBranch(database, store, "cht_1", "after a stale plan")

        // A new fork under every plan: the fourth try is done inside the writer, on the tree as it is.
        let forks = Counter()
        let contended = try await store.selectBranch(messageID: "m1", userID: "usr_1", updatedAt: Self.date) {
            try await Self.append(store, "m2_\(forks.next())", to: "cht_1", .siblingOf(messageID: "m2"))
        }
        #expect(forks.value == SQLiteChatStore.selectAttempts)
        #expect(contended?.activeMessageId == "m2_\(SQLiteChatStore.selectAttempts)")
        try await Self.checkBranch(database, store, "cht_1", "after contended selects")

        // Selecting m2 (leaf m3) while m3 gets an answer: one plan, and the leaf is the answer.
        _ = try await store.selectBranch(messageID: "m2b", userID: "usr_1", updatedAt: Self.date)
        let appends = Counter()
        let extended = try await store.selectBranch(messageID: "m2", userID: "usr_1", updatedAt: Self.date) {
            if appends.next() == 1 { try await Self.append(store, "m4", to: "cht_1", .after(messageID: "m3")) }
        }
        #expect(appends.value == 1)
        #expect(extended?.activeMessageId == "m4")
        try await Self.checkBranch(database, store, "cht_1", "after an answer to the planned leaf")
        #expect(try await Self.branch(store, "cht_1").stored == ["m1", "m2", "m3", "m4"])
    }

    @Test("selects racing forks and appends on a pool (plans on reader snapshots): the stored branch is the tree's afterwards")
    func selectsRacingWrites() async throws {
        let (database, store, folder) = try await Self.twoBranches(length: 50)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for step in 0..<40 {
                group.addTask {
                    _ = try await store.selectBranch(messageID: "\(step % 2 == 0 ? "a" : "b")_\(1 + step % 7)", userID: "usr_1", updatedAt: Self.date)
                }
                group.addTask {
                    let placement: MessagePlacement =
                        step % 3 == 0 ? .afterActiveLeaf : .siblingOf(messageID: "\(step % 2 == 0 ? "b" : "a")_\(2 + step % 5)")
                    try await Self.append(store, "race_\(step)", to: "cht_two", placement)
                }
            }
            try await group.waitForAll()
        }
        try await Self.checkBranch(database, store, "cht_two", "after the race")
        // And a select now walks the tree as it is.
        let chat = try #require(try await store.selectBranch(messageID: "a_1", userID: "usr_1", updatedAt: Self.date))
        try await Self.checkBranch(database, store, "cht_two", "selected after the race")
        let leaf = try #require(chat.activeMessageId)
        #expect(
            try await database.writer.read { db in
                try Bool.fetchOne(db, sql: "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE parent_id = ?)", arguments: [leaf])
            } == true, "the active leaf has no child")
    }

    @Test("migration 0014 gives every message its chain, records every fork and stores each chat's active branch as segments")
    func migrationStoresChains() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let old = try AgentDatabase.inMemory(migrator: Migrator(migrations: Migration.embedded.filter { $0.version < 14 }))
        _ = try await old.migrate(logger: logger)
        // cht_1 shows m1 → m2a → m3a → m4, the older answer to m1 (m2b → m3b is newer); a second root
        // r2 → r3 is the newest. cht_2 is empty.
        try await old.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'usr_1', '2026-01-01T00:00:00.000Z')")
            try db.execute(
                sql: """
                    INSERT INTO chats (id, user_id, title, active_message_id, created_at, updated_at) VALUES
                        ('cht_1', 'usr_1', 't', 'm4', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
                        ('cht_2', 'usr_1', 't', NULL, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                    INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at) VALUES
                        ('m1', 'cht_1', 'usr_1', NULL, 'user', 'a', 1, '2026-01-01T00:00:00.000Z'),
                        ('m2a', 'cht_1', 'usr_1', 'm1', 'assistant', 'b', 2, '2026-01-01T00:00:00.000Z'),
                        ('m3a', 'cht_1', 'usr_1', 'm2a', 'user', 'c', 3, '2026-01-01T00:00:00.000Z'),
                        ('m2b', 'cht_1', 'usr_1', 'm1', 'assistant', 'd', 2, '2026-01-01T00:00:00.000Z'),
                        ('m3b', 'cht_1', 'usr_1', 'm2b', 'user', 'e', 3, '2026-01-01T00:00:00.000Z'),
                        ('m4', 'cht_1', 'usr_1', 'm3a', 'assistant', 'f', 4, '2026-01-01T00:00:00.000Z'),
                        ('r2', 'cht_1', 'usr_1', NULL, 'user', 'g', 1, '2026-01-01T00:00:00.000Z'),
                        ('r3', 'cht_1', 'usr_1', 'r2', 'assistant', 'h', 2, '2026-01-01T00:00:00.000Z');
                    """)
        }
        let migrated = AgentDatabase(writer: old.writer, path: old.path, migrator: Migrator())
        // 0014 and any later migration.
        #expect(try await migrated.migrate(logger: logger).map(\.version) == Migration.embedded.map(\.version).filter { $0 >= 14 })
        let store = SQLiteChatStore(writer: migrated.writer, groupWriter: .testing(migrated.writer), ledger: StorageLedger(quota: .unlimited))
        try await Self.checkBranch(migrated, store, "cht_1", "migrated")
        try await Self.checkBranch(migrated, store, "cht_2", "migrated, empty")
        #expect(try await Self.branch(store, "cht_1").stored == ["m1", "m2a", "m3a", "m4"])
        #expect(try await store.activeBranch(chatID: "cht_2", userID: "usr_1", afterDepth: 0, limit: 10) == [])
        // Down by the newest child, on the migrated chains.
        #expect(try await store.selectBranch(messageID: "m1", userID: "usr_1", updatedAt: Self.date)?.activeMessageId == "m3b")
        #expect(try await store.selectBranch(messageID: "r2", userID: "usr_1", updatedAt: Self.date)?.activeMessageId == "r3")
        try await Self.checkBranch(migrated, store, "cht_1", "migrated, selected")
        #expect(
            try await migrated.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE name = 'chat_paths'") } == 0)
    }
}
