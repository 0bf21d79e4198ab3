import GRDB
import Logging
import Services
import Testing

@testable import Storage

/// The FTS5 index below the service: the query text it builds, and the migration's backfill.
@Suite("SQLite search index")
struct SQLiteSearchIndexTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("words become quoted FTS5 strings (inner quotes doubled), ANDed; the last one optionally also as a prefix")
    func matchExpression() {
        #expect(SQLiteSearchIndex.matchExpression(words: ["swift"], lastWordIsPrefix: false) == #""swift""#)
        #expect(SQLiteSearchIndex.matchExpression(words: ["swift"], lastWordIsPrefix: true) == #"("swift" OR "swift"*)"#)
        #expect(
            SQLiteSearchIndex.matchExpression(words: ["NEAR(a", "title:x", #"co"de"#], lastWordIsPrefix: true)
                == #""NEAR(a" AND "title:x" AND ("co""de" OR "co""de"*)"#)
        #expect(SQLiteSearchIndex.matchExpression(words: ["AND", "*", "\""], lastWordIsPrefix: false) == #""AND" AND "*" AND """""#)
    }

    @Test("0006 indexes the modules and messages that exist before it runs")
    func backfill() async throws {
        let before = Migration.embedded.filter { $0.version < 6 }
        let database = try AgentDatabase.inMemory(migrator: Migrator(migrations: before))
        try await database.migrate(logger: Self.logger)
        try await database.writer.write { db in
            let now = "2027-01-15T08:00:00.000Z"
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'alice', ?)", arguments: [now])
            try db.execute(
                sql:
                    "INSERT INTO modules (id, user_id, title, description, content, created_at, updated_at) VALUES ('mod_1', 'usr_1', 'Old module', '', 'preexisting text', ?, ?)",
                arguments: [now, now])
            try db.execute(
                sql: "INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at) VALUES ('cht_1', 'usr_1', 'mod_1', 'Old chat', ?, ?)",
                arguments: [now, now])
            try db.execute(
                sql:
                    "INSERT INTO messages (id, chat_id, user_id, role, content, depth, created_at) VALUES ('msg_1', 'cht_1', 'usr_1', 'user', 'preexisting message', 1, ?)",
                arguments: [now])
        }
        let migrated = AgentDatabase(writer: database.writer, path: database.path, migrator: Migrator())
        #expect(try await migrated.migrate(logger: Self.logger).map(\.version).contains(6))

        let index = SQLiteSearchIndex(reader: database.writer, indexer: nil)
        let hits = try await index.search(
            SearchQuery(userID: "usr_1", words: ["preexisting"], lastWordIsPrefix: false, kinds: [.modules, .messages], limit: 10))
        #expect(Set(hits.map(\.id)) == ["mod_1", "msg_1"])
        #expect(
            hits.first { $0.id == "msg_1" }
                == SearchHit(
                    kind: .message, id: "msg_1", chatId: "cht_1", moduleId: "mod_1", role: "user", title: "Old chat",
                    snippet: "⟦preexisting⟧ message"
                ))
        #expect(
            try await index.search(
                SearchQuery(userID: "usr_2", words: ["preexisting"], lastWordIsPrefix: false, kinds: [.modules, .messages], limit: 10)
            ).isEmpty)
    }
    @Test("a search finds a message committed in a batch that left indexing for later")
    func searchCatchesUpTheIndex() async throws {
        let database = try AgentDatabase.inMemory(migrator: Migrator())
        try await database.migrate(logger: Self.logger)
        let now = "2027-01-15T08:00:00.000Z"
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'alice', ?)", arguments: [now])
            try db.execute(
                sql: "INSERT INTO chats (id, user_id, title, created_at, updated_at) VALUES ('cht_1', 'usr_1', 'Chat', ?, ?)", arguments: [now, now])
        }
        // An hour between index runs: the first batch indexes, the second is left for later.
        let writes = GroupCommitWriter(
            writer: database.writer, beforeCommitInterval: .seconds(3600), beforeCommit: SQLiteSearchIndex.indexNewMessages)
        for (id, word) in [("msg_1", "first"), ("msg_2", "second")] {
            try await writes.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO messages (id, chat_id, user_id, role, content, depth, created_at) VALUES (?, 'cht_1', 'usr_1', 'user', ?, 1, ?)",
                    arguments: [id, "the \(word) message", now])
            }
        }
        let unindexed = try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'second'")
        }
        #expect(unindexed == 0)
        let index = SQLiteSearchIndex(reader: database.writer, indexer: writes)
        let hits = try await index.search(SearchQuery(userID: "usr_1", words: ["second"], lastWordIsPrefix: false, kinds: [.messages], limit: 10))
        #expect(hits.map(\.id) == ["msg_2"])
    }
}
