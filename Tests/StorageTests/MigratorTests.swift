import GRDB
import Logging
import Testing

@testable import Storage

/// The migrator against in-memory SQLite.
@Suite("Migrator")
struct MigratorTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static let first = Migration(version: 1, name: "first", sql: "CREATE TABLE a (id INTEGER PRIMARY KEY);\n")
    static let second = Migration(version: 2, name: "second", sql: "CREATE TABLE b (id INTEGER PRIMARY KEY, a INTEGER REFERENCES a(id));\n")

    static func database(_ migrations: [Migration]) throws -> AgentDatabase {
        try AgentDatabase.inMemory(migrator: Migrator(migrations: migrations))
    }

    static func tables(_ writer: any DatabaseWriter) async throws -> Set<String> {
        try await writer.read { db in
            Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
        }
    }

    static func recordedVersions(_ writer: any DatabaseWriter) async throws -> [Int] {
        try await writer.read { db in try Int.fetchAll(db, sql: "SELECT version FROM schema_migrations ORDER BY version") }
    }

    @Test("a fresh database gets every embedded migration, recorded with name, checksum and time")
    func freshDatabase() async throws {
        let database = try AgentDatabase.inMemory()
        let applied = try await database.migrate(logger: Self.logger)
        #expect(applied == Migration.embedded)
        // The FTS5 tables of 0006 come with their shadow tables (external content: no _content).
        let fts = ["modules_fts", "messages_fts", "files_fts"].flatMap { table in ["", "_data", "_idx", "_docsize", "_config"].map { table + $0 } }
        #expect(
            try await Self.tables(database.writer)
                == Set(
                    [
                        "schema_migrations", "users", "sessions", "login_failures", "modules", "module_tags", "chats", "messages", "prompts",
                        "prompt_versions", "search_progress", "events", "event_consumers", "event_retention", "audit_entries", "agent_runs",
                        "user_usage", "chat_segments", "chain_forks", "jobs", "files", "file_uploads", "message_attachments",
                        "module_files", "file_texts",
                    ] + fts))
        let status = try await database.migrationStatus()
        #expect(status.pending.isEmpty)
        #expect(status.schemaVersion == Migration.embedded.last?.version)
        let row = try #require(status.applied.first)
        #expect(row.fileName == "0001_init.sql")
        #expect(row.checksum == Migration.embedded[0].checksum)
        // 2026-01-31T12:00:00.000Z
        #expect(
            row.appliedAt.count == 24 && row.appliedAt.hasSuffix("Z") && row.appliedAt.dropFirst(10).hasPrefix("T"), "applied_at: \(row.appliedAt)")
    }

    @Test("0001: usernames are unique without regard to case; deleting a user deletes its sessions")
    func initialSchema() async throws {
        let database = try AgentDatabase.inMemory()
        try await database.migrate(logger: Self.logger)
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('u1', 'Alice', '2026-01-01T00:00:00.000Z')")
            try db.execute(sql: "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (x'01', 'u1', 'now', 'later')")
        }
        await #expect(throws: DatabaseError.self) {
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('u2', 'ALICE', 'now')")
            }
        }
        await #expect(throws: DatabaseError.self, "a session of a user that does not exist") {
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (x'02', 'nobody', 'now', 'later')")
            }
        }
        let sessions = try await database.writer.write { db in
            try db.execute(sql: "DELETE FROM users WHERE id = 'u1'")
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM sessions")
        }
        #expect(sessions == 0)
        let indexes = try await database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL")
        }
        #expect(indexes == ["sessions_user_id"])
    }

    @Test("migrating twice applies nothing the second time")
    func idempotent() async throws {
        let database = try Self.database([Self.first, Self.second])
        #expect(try await database.migrate(logger: Self.logger) == [Self.first, Self.second])
        let before = try await database.migrationStatus()
        #expect(try await database.migrate(logger: Self.logger) == [])
        #expect(try await database.migrationStatus() == before)
        #expect(try await Self.recordedVersions(database.writer) == [1, 2])
    }

    @Test("a binary with more migrations applies only the new ones")
    func appliesOnlyPending() async throws {
        let old = try Self.database([Self.first])
        try await old.migrate(logger: Self.logger)
        let newer = AgentDatabase(writer: old.writer, path: old.path, migrator: Migrator(migrations: [Self.first, Self.second]))
        let status = try await newer.migrationStatus()
        #expect(status.applied.map(\.version) == [1])
        #expect(status.pending == [Self.second])
        #expect(try await newer.migrate(logger: Self.logger) == [Self.second])
        #expect(try await Self.tables(old.writer) == ["schema_migrations", "a", "b"])
    }

    @Test("versions may skip numbers, and a lower version that arrives later (a branch merged after) is applied too")
    func gapsAndLateVersions() async throws {
        let fourth = Migration(version: 4, name: "fourth", sql: "CREATE TABLE d (id INTEGER PRIMARY KEY);\n")
        let third = Migration(version: 3, name: "third", sql: "CREATE TABLE c (id INTEGER PRIMARY KEY);\n")
        let database = try Self.database([Self.first, Self.second, fourth])
        #expect(try await database.migrate(logger: Self.logger) == [Self.first, Self.second, fourth])
        let merged = AgentDatabase(
            writer: database.writer, path: database.path, migrator: Migrator(migrations: [Self.first, Self.second, third, fourth]))
        #expect(try await merged.migrationStatus().pending == [third])
        #expect(try await merged.migrate(logger: Self.logger) == [third])
        #expect(try await Self.recordedVersions(database.writer) == [1, 2, 3, 4])
        #expect(try await Self.tables(database.writer) == ["schema_migrations", "a", "b", "c", "d"])
    }

    @Test("a database written by a newer agentd is refused, by migrate and by status, and left alone")
    func newerDatabase() async throws {
        let database = try Self.database([Self.first, Self.second])
        try await database.migrate(logger: Self.logger)
        let older = AgentDatabase(writer: database.writer, path: "/data/agentd.sqlite", migrator: Migrator(migrations: [Self.first]))
        let expected = MigrationError.newerDatabase(database: "/data/agentd.sqlite", databaseVersion: 2, knownVersion: 1)
        await #expect(throws: expected) { try await older.migrate(logger: Self.logger) }
        await #expect(throws: expected) { try await older.migrationStatus() }
        #expect(
            expected.description
                == "database /data/agentd.sqlite was written by a newer agentd (schema version 2, this binary knows up to 1); refusing to downgrade")
        #expect(try await Self.recordedVersions(database.writer) == [1, 2])
    }

    @Test("a future version row (9999) is refused")
    func futureRow() async throws {
        let database = try AgentDatabase.inMemory()
        try await database.migrate(logger: Self.logger)
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO schema_migrations VALUES (9999, 'future', 'x', '2099-01-01T00:00:00.000Z')")
        }
        let latest = Migration.embedded.last!.version
        await #expect(throws: MigrationError.newerDatabase(database: ":memory:", databaseVersion: 9999, knownVersion: latest)) {
            try await database.migrate(logger: Self.logger)
        }
    }

    @Test("an applied migration whose SQL changed is refused, naming its file")
    func checksumMismatch() async throws {
        let database = try Self.database([Self.first])
        try await database.migrate(logger: Self.logger)
        let edited = Migration(version: 1, name: "first", sql: Self.first.sql + "CREATE INDEX a_id ON a(id);\n")
        let changed = AgentDatabase(writer: database.writer, path: database.path, migrator: Migrator(migrations: [edited, Self.second]))
        let expected = MigrationError.checksumMismatch(
            database: ":memory:", migration: "0001_first.sql", recorded: Self.first.checksum, embedded: edited.checksum)
        await #expect(throws: expected) { try await changed.migrate(logger: Self.logger) }
        await #expect(throws: expected) { try await changed.migrationStatus() }
        #expect(expected.description.contains("0001_first.sql"))
        // Nothing after the refusal ran: migration 2 is not applied.
        #expect(try await Self.recordedVersions(database.writer) == [1])
    }

    @Test("an applied version this binary lacks, below its newest, is refused")
    func unknownMigration() async throws {
        let database = try Self.database([Self.second])
        try await database.migrate(logger: Self.logger)
        let third = Migration(version: 3, name: "third", sql: "CREATE TABLE c (id INTEGER);")
        let other = AgentDatabase(writer: database.writer, path: database.path, migrator: Migrator(migrations: [Self.first, third]))
        await #expect(throws: MigrationError.unknownMigration(database: ":memory:", migration: "0002_second.sql", knownVersion: 3)) {
            try await other.migrate(logger: Self.logger)
        }
    }

    @Test("a failing migration is rolled back whole: none of its tables, no schema_migrations row; earlier ones stay")
    func failingMigration() async throws {
        let broken = Migration(
            version: 2, name: "broken",
            sql: """
                CREATE TABLE b (id INTEGER PRIMARY KEY);
                INSERT INTO b VALUES (1);
                INSERT INTO no_such_table VALUES (1);
                """)
        let database = try Self.database([Self.first, broken])
        await #expect {
            try await database.migrate(logger: Self.logger)
        } throws: { error in
            guard case .failed(let name, let migration, let reason) = error as? MigrationError else { return false }
            return name == ":memory:" && migration == "0002_broken.sql" && reason.contains("no_such_table")
        }
        #expect(try await Self.tables(database.writer) == ["schema_migrations", "a"])
        #expect(try await Self.recordedVersions(database.writer) == [1])
        // Fixed, it applies on the next start.
        let fixed = AgentDatabase(writer: database.writer, path: database.path, migrator: Migrator(migrations: [Self.first, Self.second]))
        #expect(try await fixed.migrate(logger: Self.logger) == [Self.second])
    }

    @Test("status of a database never migrated: everything pending, nothing created")
    func statusOfEmptyDatabase() async throws {
        let database = try Self.database([Self.first, Self.second])
        let status = try await database.migrationStatus()
        #expect(status.applied.isEmpty)
        #expect(status.pending == [Self.first, Self.second])
        #expect(status.schemaVersion == 0)
        #expect(try await Self.tables(database.writer).isEmpty)
    }
}
