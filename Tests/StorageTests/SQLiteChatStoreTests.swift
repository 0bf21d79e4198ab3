import Foundation
import GRDB
import GRDBSQLite
import Logging
import Services
import Testing

@testable import Storage

/// The message tree's reads and writes at the store: selecting a long branch must cost the single
/// writer no more than a short one, and a page of it must cost a page (issue 17, item 12; 0014).
@Suite("SQLite chat store", .timeLimit(.minutes(3)))
struct SQLiteChatStoreTests {
    static func database() async throws -> AgentDatabase {
        let database = try AgentDatabase.inMemory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        try await database.writer.write { db in
            for id in ["usr_1", "usr_2"] {
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)", arguments: [id, id, "2026-01-01T00:00:00.000Z"])
            }
        }
        return database
    }

    static let date = Date(timeIntervalSince1970: 1_800_000_000)

    static func chat(_ store: SQLiteChatStore, _ id: String, userID: String = "usr_1") async throws -> Chat {
        try await store.insert(
            NewChat(id: id, moduleID: nil, title: id, createdAt: date), userID: userID,
            event: ChatsEvents.ChatCreated(userID: userID, chatId: id, moduleId: nil, title: id))
    }

    @discardableResult
    static func append(_ store: SQLiteChatStore, _ id: String, to chatID: String, _ placement: MessagePlacement = .afterActiveLeaf) async throws
        -> Message
    {
        try await store.append(
            NewMessage(id: id, chatID: chatID, placement: placement, role: .user, content: id, createdAt: date), userID: "usr_1",
            event: { ChatsEvents.MessageCreated(userID: "usr_1", message: $0) })
    }

    /// The whole active branch, and what the parent links say it is (the path up from the leaf).
    static func branch(_ store: SQLiteChatStore, _ chatID: String) async throws -> (stored: [String], walked: [String]) {
        let chat = try #require(try await store.chat(id: chatID, userID: "usr_1"))
        let stored = try #require(try await store.activeBranch(chatID: chatID, userID: "usr_1", afterDepth: 0, limit: Int.max)).map(\.id)
        guard let leaf = chat.activeMessageId else { return (stored, []) }
        let walked = try #require(try await store.path(to: leaf, userID: "usr_1")).map(\.id)
        #expect(chat.messageCount == walked.count)
        return (stored, walked)
    }

    /// Checks chat `chatID`'s stored branch against its parent links: listed whole, and page by
    /// page in pages of several sizes, it is the path up from the leaf; every message's chain, every
    /// fork row and the segments are what 0014 says they are; the last chain ends at the leaf.
    static func checkBranch(_ database: AgentDatabase, _ store: SQLiteChatStore, _ chatID: String, _ context: String) async throws {
        let (stored, walked) = try await branch(store, chatID)
        #expect(stored == walked, "\(context)")
        for size in [1, 2, 5, 13] {
            var paged: [String] = []
            var after = 0
            while let page = try await store.activeBranch(chatID: chatID, userID: "usr_1", afterDepth: after, limit: size), let last = page.last {
                #expect(page.count <= size)
                paged += page.map(\.id)
                after = last.depth
            }
            #expect(paged == walked, "pages of \(size), \(context)")
        }
        // A message continues its parent's chain iff it is the parent's oldest child; a chain that
        // starts at a child has exactly its fork row.
        let forks = """
            SELECT m.seq, p.chain_seq, p.depth FROM messages m JOIN messages p ON p.id = m.parent_id WHERE m.chat_id = ?1 AND m.chain_seq = m.seq
            """
        let storedForks = """
            SELECT f.child_chain_seq, f.parent_chain_seq, f.parent_depth
                FROM chain_forks f JOIN messages m ON m.seq = f.child_chain_seq WHERE m.chat_id = ?1
            """
        let violations = try await database.writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT (SELECT count(*) FROM messages m LEFT JOIN messages p ON p.id = m.parent_id WHERE m.chat_id = ?1 AND m.chain_seq IS NOT
                            CASE WHEN p.id IS NOT NULL AND m.seq = (SELECT min(o.seq) FROM messages o WHERE o.parent_id = p.id)
                                THEN p.chain_seq ELSE m.seq END)
                        + (SELECT count(*) FROM (\(forks) EXCEPT \(storedForks)))
                        + (SELECT count(*) FROM (\(storedForks) EXCEPT \(forks)))
                    """, arguments: [chatID])
        }
        #expect(violations == 0, "chains and forks, \(context)")
        // The segments: one where the walked branch enters a chain; the last chain ends at the leaf.
        let (segments, chainOf, lastChainEnd) = try await database.writer.read { db in
            let segments = try Row.fetchAll(
                db,
                sql:
                    "SELECT s.start_depth, s.chain_seq FROM chat_segments s JOIN chats c ON c.seq = s.chat_seq WHERE c.id = ? ORDER BY s.start_depth",
                arguments: [chatID]
            ).map { SQLiteChatStore.Segment(start: $0[0], chain: $0[1]) }
            let chainOf = try Dictionary(
                uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, chain_seq FROM messages WHERE chat_id = ?", arguments: [chatID]).map {
                    ($0[0] as String, $0[1] as Int64)
                })
            let end = try segments.last.flatMap {
                try String.fetchOne(db, sql: "SELECT id FROM messages WHERE chain_seq = ? ORDER BY depth DESC LIMIT 1", arguments: [$0.chain])
            }
            return (segments, chainOf, end)
        }
        var expected: [SQLiteChatStore.Segment] = []
        for (offset, id) in walked.enumerated() where expected.last?.chain != chainOf[id] {
            expected.append(SQLiteChatStore.Segment(start: offset + 1, chain: chainOf[id]!))
        }
        #expect(segments == expected, "segments, \(context)")
        #expect(lastChainEnd == walked.last, "the last chain's end, \(context)")
    }

    @Test("a 100,000-message branch is selected in as many statements as a short one, and pages in O(page): every message once, in order")
    func longBranch() async throws {
        let database = try await Self.database()
        let store = SQLiteChatStore(writer: database.writer, groupWriter: .testing(database.writer), ledger: StorageLedger(quota: .unlimited))
        _ = try await Self.chat(store, "cht_long")
        let length = 100_000
        // msg_1 … msg_100000, each the child of the one before, in one statement.
        try await database.writer.write { db in
            try db.execute(
                sql: """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at)
                    SELECT 'msg_' || i, 'cht_long', 'usr_1', CASE WHEN i > 1 THEN 'msg_' || (i - 1) END, 'user', 'm' || i, i,
                        '2027-01-15T08:00:00.000Z' FROM n
                    """, arguments: [length])
            // One chain (0014), the chat's branch.
            try db.execute(sql: "UPDATE messages SET chain_seq = (SELECT seq FROM messages WHERE id = 'msg_1') WHERE chat_id = 'cht_long'")
            try db.execute(
                sql: """
                    INSERT INTO chat_segments (chat_seq, start_depth, chain_seq) SELECT c.seq, 1, m.seq
                        FROM chats c JOIN messages m ON m.id = 'msg_1' WHERE c.id = 'cht_long';
                    UPDATE chats SET active_message_id = ? WHERE id = 'cht_long';
                    """, arguments: ["msg_\(length)"])
        }
        // A newer answer next to msg_2, which the chat shows.
        try await Self.append(store, "msg_side", to: "cht_long", .siblingOf(messageID: "msg_2"))
        try await Self.append(store, "msg_side2", to: "cht_long")
        #expect(try await Self.branch(store, "cht_long").stored == ["msg_1", "msg_side", "msg_side2"])

        let meter = try await StatementMeter(database.writer)
        // Switching to the short branch and back to the long one: the same statements, however long.
        let short = try await meter.measure { try await store.selectBranch(messageID: "msg_side", userID: "usr_1", updatedAt: Self.date) }
        #expect(short.result?.activeMessageId == "msg_side2")
        let long = try await meter.measure { try await store.selectBranch(messageID: "msg_2", userID: "usr_1", updatedAt: Self.date) }
        #expect(long.result?.activeMessageId == "msg_\(length)")
        #expect(long.result?.messageCount == length)
        #expect(long.statements <= short.statements, "statements to select a \(length)-message branch, against \(short.statements) for a short one")

        // Pages of 500 (the service asks for one more to know there is a next page), by depth.
        let limit = 500
        var seen: [String] = []
        var after = 0
        var steps: [Int] = []
        while true {
            let page = try await meter.measure {
                try await store.activeBranch(chatID: "cht_long", userID: "usr_1", afterDepth: after, limit: limit + 1)
            }
            let messages = try #require(page.result)
            steps.append(page.steps)
            seen += messages.prefix(limit).map(\.id)
            guard messages.count > limit, let last = messages.prefix(limit).last else { break }
            after = last.depth
        }
        #expect(seen.count == length)
        #expect(seen == (1...length).map { "msg_\($0)" }, "the long branch paged in order, each message once")
        // A page's work does not grow with the branch: the first page (which walked the whole
        // branch before) costs no more than the last full one, within a small factor.
        let lastFull = steps[steps.count - 2]
        #expect(steps.max()! <= 2 * lastFull, "VM steps per page: first \(steps.first!), last full \(lastFull), max \(steps.max()!)")
        #expect(steps.max()! < 50 * limit, "VM steps per page: max \(steps.max()!) for \(limit) messages")
    }

    @Test(
        "the stored branch follows every change of the active leaf: appends, edits, regenerations, answers to older messages, selects, forks, deletes"
    )
    func branchFollowsEveryChange() async throws {
        let database = try await Self.database()
        let store = SQLiteChatStore(writer: database.writer, groupWriter: .testing(database.writer), ledger: StorageLedger(quota: .unlimited))
        _ = try await Self.chat(store, "cht_1")
        _ = try await Self.chat(store, "cht_2")
        var generator = SplitMix64(seed: 17)
        var ids: [String] = []
        var others: [String] = []
        // The tree as the test built it: each message's children (roots under ""), oldest first.
        var children: [String: [String]] = [:]
        for step in 0..<300 {
            let id = "msg_\(step)"
            let placement: MessagePlacement
            switch (ids.isEmpty, generator.next() % 8) {
            case (true, _), (_, 0...3): placement = .afterActiveLeaf
            case (_, 4): placement = .siblingOf(messageID: ids[Int(generator.next() % UInt64(ids.count))])
            case (_, 5): placement = .after(messageID: ids[Int(generator.next() % UInt64(ids.count))])
            default:
                let selected = ids[Int(generator.next() % UInt64(ids.count))]
                let chat = try await store.selectBranch(messageID: selected, userID: "usr_1", updatedAt: Self.date)
                // The leaf: down from the message by the newest child.
                var leaf = selected
                while let newest = children[leaf]?.last { leaf = newest }
                #expect(chat?.activeMessageId == leaf, "select at step \(step)")
                try await Self.checkBranch(database, store, "cht_1", "after select at step \(step)")
                continue
            }
            let appended = try await Self.append(store, id, to: "cht_1", placement)
            children[appended.parentId ?? "", default: []].append(id)
            try await Self.append(store, "other_\(step)", to: "cht_2")  // another chat's branch, in the same table
            others.append("other_\(step)")
            ids.append(id)
            try await Self.checkBranch(database, store, "cht_1", "after \(placement) at step \(step)")
            #expect(try await Self.branch(store, "cht_1").stored.last == id)
        }
        let other = try await Self.branch(store, "cht_2")
        #expect(other.stored == others)
        try await Self.checkBranch(database, store, "cht_2", "the other chat")

        // A fork's branch is the copied path.
        let leaf = try #require(try await store.chat(id: "cht_1", userID: "usr_1")?.activeMessageId)
        let path = try #require(try await store.path(to: leaf, userID: "usr_1"))
        var copies: [Message] = []
        for message in path {
            copies.append(
                Message(
                    id: "fork_\(message.id)", chatId: "cht_fork", parentId: copies.last?.id, role: message.role, content: message.content,
                    depth: message.depth, createdAt: message.createdAt))
        }
        _ = try await store.insertFork(
            NewChat(id: "cht_fork", moduleID: nil, title: "fork", createdAt: Self.date), messages: copies, userID: "usr_1", events: [])
        #expect(try await Self.branch(store, "cht_fork").stored == copies.map(\.id))
        try await Self.checkBranch(database, store, "cht_fork", "the fork")

        // Deleting chats leaves no stored branch behind.
        for chat in ["cht_1", "cht_2", "cht_fork"] {
            #expect(try await store.delete(id: chat, userID: "usr_1", event: ChatsEvents.ChatDeleted(userID: "usr_1", chatId: chat)))
        }
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") } == 0)
        for table in ["chat_segments", "chain_forks"] {
            #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") } == 0, "rows left in \(table)")
        }
    }
}

extension SQLiteChatStoreTests {
    @Test("a database from before migrations 0013 and 0014 keeps the active branch of every chat it has")
    func migrationStoresExistingBranches() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let old = try AgentDatabase.inMemory(migrator: Migrator(migrations: Migration.embedded.filter { $0.version < 13 }))
        _ = try await old.migrate(logger: logger)
        // A chat whose shown branch is the older one (m1 → m2a → m3), next to m2b; an empty chat.
        try await old.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'usr_1', '2026-01-01T00:00:00.000Z')")
            try db.execute(
                sql: """
                    INSERT INTO chats (id, user_id, title, active_message_id, created_at, updated_at) VALUES
                        ('cht_1', 'usr_1', 't', 'm3', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'),
                        ('cht_2', 'usr_1', 't', NULL, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                    INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at) VALUES
                        ('m1', 'cht_1', 'usr_1', NULL, 'user', 'a', 1, '2026-01-01T00:00:00.000Z'),
                        ('m2a', 'cht_1', 'usr_1', 'm1', 'assistant', 'b', 2, '2026-01-01T00:00:00.000Z'),
                        ('m3', 'cht_1', 'usr_1', 'm2a', 'user', 'c', 3, '2026-01-01T00:00:00.000Z'),
                        ('m2b', 'cht_1', 'usr_1', 'm1', 'assistant', 'd', 2, '2026-01-01T00:00:00.000Z');
                    """)
        }
        let migrated = AgentDatabase(writer: old.writer, path: old.path, migrator: Migrator())
        #expect(try await migrated.migrate(logger: logger).map(\.version).contains(13))
        let store = SQLiteChatStore(writer: migrated.writer, groupWriter: .testing(migrated.writer), ledger: StorageLedger(quota: .unlimited))
        #expect(try await store.activeBranch(chatID: "cht_1", userID: "usr_1", afterDepth: 0, limit: 10)?.map(\.id) == ["m1", "m2a", "m3"])
        #expect(try await store.activeBranch(chatID: "cht_1", userID: "usr_1", afterDepth: 1, limit: 1)?.map(\.id) == ["m2a"])
        #expect(try await store.activeBranch(chatID: "cht_2", userID: "usr_1", afterDepth: 0, limit: 10) == [])
        #expect(try await store.activeBranch(chatID: "cht_2", userID: "usr_2", afterDepth: 0, limit: 10) == nil)
    }
}

/// Counts the statements a connection runs and the virtual-machine steps they take (the rows
/// they visit, roughly), through SQLite's profile hook; and the statements that write, with the
/// rows they changed (`sqlite3_total_changes`: triggers' and foreign keys' changes included).
final class StatementMeter: @unchecked Sendable {
    private var statements = 0
    private var steps = 0
    private var writes: [String] = []
    private var connection: OpaquePointer?

    init(_ writer: any DatabaseWriter) async throws {
        try await writer.write { [self] db in
            connection = db.sqliteConnection
            // Retained for good: the hook may run until the connection closes, after the test.
            let context = Unmanaged.passRetained(self).toOpaque()
            _ = sqlite3_trace_v2(
                db.sqliteConnection, UInt32(SQLITE_TRACE_PROFILE),
                { _, context, statement, _ in
                    let meter = Unmanaged<StatementMeter>.fromOpaque(context!).takeUnretainedValue()
                    let statement = OpaquePointer(statement)
                    meter.statements += 1
                    meter.steps += Int(sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_VM_STEP, 1))
                    if sqlite3_stmt_readonly(statement) == 0, let sql = sqlite3_sql(statement) {
                        meter.writes.append(String(cString: sql))
                    }
                    return 0
                }, context)
        }
    }

    /// What `body` cost on the connection. It runs one statement at a time, and `body` is awaited.
    func measure<T>(_ body: () async throws -> T) async rethrows -> (result: T, statements: Int, steps: Int) {
        let measured = try await measureWrites(body)
        return (measured.result, measured.statements, measured.steps)
    }

    /// `measure`, with the statements that may write (transaction control included) and the rows
    /// changed.
    func measureWrites<T>(_ body: () async throws -> T) async rethrows -> (result: T, statements: Int, steps: Int, writes: [String], rowsChanged: Int)
    {
        statements = 0
        steps = 0
        writes = []
        let changesBefore = sqlite3_total_changes64(connection)
        let result = try await body()
        return (result, statements, steps, writes, Int(sqlite3_total_changes64(connection) - changesBefore))
    }
}

/// A seeded generator: the same tree every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
