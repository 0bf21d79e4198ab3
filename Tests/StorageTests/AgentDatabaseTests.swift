import Foundation
import GRDB
import Logging
import Testing

@testable import Storage

/// The file-backed database: its folders, file mode and connection settings.
@Suite("AgentDatabase")
struct AgentDatabaseTests {
    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("agentd-storage-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test("a file-backed pool: WAL, foreign keys on every connection, synchronous NORMAL, 5 s busy timeout")
    func fileBackedPool() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let database = try AgentDatabase.open(path: "\(folder)/agentd.sqlite")
        defer { try? database.close() }
        #expect(database.writer is DatabasePool)

        let written = try await database.writer.write { db in
            [
                try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                try String.fetchOne(db, sql: "PRAGMA foreign_keys"),
                try String.fetchOne(db, sql: "PRAGMA synchronous"),
                try String.fetchOne(db, sql: "PRAGMA busy_timeout"),
                try String.fetchOne(db, sql: "PRAGMA temp_store"),
                try String.fetchOne(db, sql: "PRAGMA wal_autocheckpoint"),
            ]
        }
        // temp_store 2 = MEMORY; the writer's automatic checkpoint is only a backstop.
        #expect(written == ["wal", "1", "1", "5000", "2", "\(WALCheckpointer.writerBackstopPages)"])
        // Reader connections are separate connections with their own settings. GRDB gives readers
        // at least 10 s (WAL readers can meet SQLITE_BUSY in rare recovery cases).
        let (foreignKeys, busyTimeout) = try await database.writer.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA foreign_keys"), try Int.fetchOne(db, sql: "PRAGMA busy_timeout"))
        }
        #expect(foreignKeys == 1)
        #expect((busyTimeout ?? 0) >= 5000, "reader busy_timeout: \(busyTimeout.map(String.init) ?? "nil")")
    }

    @Test("the writer leaves the WAL to the checkpointer, whose passive checkpoint copies every frame into the file")
    func checkpointer() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/agentd.sqlite"
        let database = try AgentDatabase.open(path: path)
        defer { try? database.close() }
        try await database.writer.write { db in try db.execute(sql: "CREATE TABLE t (x BLOB)") }
        // ~4 MiB in 1,000 commits: past SQLite's default threshold (1,000 pages), so without the
        // raised one the writer would have checkpointed and the file would hold the rows.
        for _ in 0..<1_000 {
            try await database.writer.write { db in try db.execute(sql: "INSERT INTO t VALUES (zeroblob(4000))") }
        }
        let before = try Self.size(path)
        #expect(before < 1 << 20, "the writer did not checkpoint: the file is \(before) bytes")
        let checkpointer = try WALCheckpointer(path: path)
        defer { try? checkpointer.close() }
        let result = try await checkpointer.checkpoint()
        #expect(result.walFrames >= 1_000 && result.checkpointed == result.walFrames, "\(result)")
        #expect(try Self.size(path) > 4_000_000, "the rows are in the file now")
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 1_000)
    }

    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
    }

    @Test("missing parent folders are created 0700, the file 0600; reopening keeps the data")
    func createsFoldersAndFile() async throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/a/b/agentd.sqlite"
        do {
            let database = try AgentDatabase.open(path: path)
            try await database.migrate(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            try database.close()
        }
        #expect(try Self.mode("\(folder)/a") == 0o700)
        #expect(try Self.mode("\(folder)/a/b") == 0o700)
        #expect(try Self.mode(path) == 0o600)
        let reopened = try AgentDatabase.open(path: path)
        defer { try? reopened.close() }
        #expect(try await reopened.migrationStatus().pending.isEmpty)
    }

    @Test("a file that is not a database is refused with its path")
    func notADatabase() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/agentd.sqlite"
        try String(repeating: "not sqlite\n", count: 200).write(toFile: path, atomically: false, encoding: .utf8)
        #expect {
            try AgentDatabase.open(path: path)
        } throws: { error in
            "\(error)".hasPrefix("cannot open database \(path): ")
        }
    }

    @Test("the in-memory variant is a queue with foreign keys on")
    func inMemory() async throws {
        let database = try AgentDatabase.inMemory()
        #expect(database.writer is DatabaseQueue)
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "PRAGMA foreign_keys") } == 1)
    }
}
