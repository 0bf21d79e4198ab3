import Foundation
import GRDB
import Logging
import Services
import Testing

@testable import Storage

/// `file_texts` (0022): a row per file from the schema, the store's reads and its one write, and
/// the files kind of the search index over them. Files are inserted as rows here (the files
/// service and its blob store are tested on their own).
@Suite("SQLite file texts")
struct SQLiteFileTextStoreTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let now = "2027-01-15T08:00:00.000Z"
    static let sha = String(repeating: "ab", count: 32)

    struct Fixture {
        let database: AgentDatabase
        let store: SQLiteFileTextStore
        let index: SQLiteSearchIndex

        init() async throws {
            database = try AgentDatabase.inMemory(migrator: Migrator())
            try await database.migrate(logger: SQLiteFileTextStoreTests.logger)
            let writes = GroupCommitWriter.testing(database.writer)
            store = SQLiteFileTextStore(reader: database.writer, groupWriter: writes)
            index = SQLiteSearchIndex(reader: database.writer, indexer: nil)
            try await database.writer.write { db in
                for (id, name) in [("usr_1", "alice"), ("usr_2", "bob")] {
                    try db.execute(
                        sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)", arguments: [id, name, SQLiteFileTextStoreTests.now])
                }
            }
        }

        func insertFile(_ id: String, user: String = "usr_1", name: String, mediaType: String, size: Int64 = 10) async throws {
            try await database.writer.write { db in
                try db.execute(
                    sql: "INSERT INTO files (id, user_id, name, media_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [id, user, name, mediaType, size, SQLiteFileTextStoreTests.sha, SQLiteFileTextStoreTests.now])
            }
        }

        func search(_ words: [String], user: String = "usr_1", prefix: Bool = false) async throws -> [SearchHit] {
            try await index.search(SearchQuery(userID: user, words: words, lastWordIsPrefix: prefix, kinds: [.files], limit: 10))
        }
    }

    @Test(
        "a file's text is pending exactly for the media types the job extracts, skipped otherwise",
        arguments: [
            "application/pdf", "text/plain", "text/markdown; charset=utf-8", "application/json", "application/json; charset=utf-8", "image/png",
            "application/octet-stream", "application/zip", "application/pdfx",
        ])
    func pendingByMediaType(mediaType: String) async throws {
        let fixture = try await Fixture()
        try await fixture.insertFile("fil_1", name: "a", mediaType: mediaType)
        let text = try #require(try await fixture.store.extractedText(fileID: "fil_1", userID: "usr_1"))
        #expect(text.state == (FileTextJob.extracts(mediaType: mediaType) ? .pending : .skipped))
        #expect((try await fixture.store.pendingText(fileID: "fil_1") != nil) == FileTextJob.extracts(mediaType: mediaType))
    }

    @Test("extractedText is the owner's only; pendingText names the blob; pendingTexts pages by seq")
    func readsAndScoping() async throws {
        let fixture = try await Fixture()
        try await fixture.insertFile("fil_1", name: "one.pdf", mediaType: "application/pdf", size: 123)
        try await fixture.insertFile("fil_2", user: "usr_2", name: "two.txt", mediaType: "text/plain")
        try await fixture.insertFile("fil_3", name: "three.png", mediaType: "image/png")
        try await fixture.insertFile("fil_4", name: "four.pdf", mediaType: "application/pdf")

        #expect(try await fixture.store.extractedText(fileID: "fil_1", userID: "usr_2") == nil)
        #expect(try await fixture.store.extractedText(fileID: "fil_1", userID: "usr_1") == ExtractedText(state: .pending))
        #expect(try await fixture.store.extractedText(fileID: "fil_9", userID: "usr_1") == nil)

        let task = try #require(try await fixture.store.pendingText(fileID: "fil_1"))
        #expect(task.fileID == "fil_1" && task.userID == "usr_1" && task.mediaType == "application/pdf")
        #expect(task.size == 123 && task.digest.hex == Self.sha)

        let all = try await fixture.store.pendingTexts(afterSeq: 0, limit: 10)
        #expect(all.map(\.fileID) == ["fil_1", "fil_2", "fil_4"])
        let second = try await fixture.store.pendingTexts(afterSeq: all[0].seq, limit: 1)
        #expect(second.map(\.fileID) == ["fil_2"])
    }

    @Test("finishText stores the outcome once, only while pending, and not for a deleted file")
    func finish() async throws {
        let fixture = try await Fixture()
        try await fixture.insertFile("fil_1", name: "one.pdf", mediaType: "application/pdf")
        try await fixture.insertFile("fil_2", name: "two.pdf", mediaType: "application/pdf")
        try await fixture.insertFile("fil_3", name: "three.png", mediaType: "image/png")
        let at = Date(timeIntervalSince1970: 1_800_000_000)

        #expect(try await fixture.store.finishText(fileID: "fil_1", outcome: .ready(text: "hello pages", truncated: true), at: at))
        #expect(
            try await fixture.store.extractedText(fileID: "fil_1", userID: "usr_1")
                == ExtractedText(state: .ready, text: "hello pages", truncated: true, extractedAt: at))
        #expect(try await fixture.store.pendingText(fileID: "fil_1") == nil)
        // A second attempt finishing late changes nothing.
        #expect(try await fixture.store.finishText(fileID: "fil_1", outcome: .failed(reason: "late"), at: at) == false)

        #expect(try await fixture.store.finishText(fileID: "fil_2", outcome: .failed(reason: "damaged"), at: at))
        #expect(
            try await fixture.store.extractedText(fileID: "fil_2", userID: "usr_1")
                == ExtractedText(state: .failed, error: "damaged", extractedAt: at))

        #expect(try await fixture.store.finishText(fileID: "fil_3", outcome: .ready(text: "x", truncated: false), at: at) == false)
        #expect(try await fixture.store.finishText(fileID: "fil_9", outcome: .ready(text: "x", truncated: false), at: at) == false)
    }

    @Test("search finds a file by name at once and by text once extracted, the owner's only, and not once deleted")
    func search() async throws {
        let fixture = try await Fixture()
        try await fixture.insertFile("fil_1", name: "Quarterly report.pdf", mediaType: "application/pdf")
        try await fixture.insertFile("fil_2", user: "usr_2", name: "quarterly numbers.pdf", mediaType: "application/pdf")

        let byName = try await fixture.search(["quarterly"])
        #expect(
            byName == [
                SearchHit(
                    kind: .file, id: "fil_1", mediaType: "application/pdf", title: "Quarterly report.pdf", snippet: "⟦Quarterly⟧ report.pdf")
            ])
        #expect(try await fixture.search(["zebra"]).isEmpty)

        _ = try await fixture.store.finishText(
            fileID: "fil_1", outcome: .ready(text: "Revenue grew; the zebra crossing was rebuilt.", truncated: false), at: Date())
        let byText = try await fixture.search(["zebra", "crossing"])
        #expect(byText.map(\.id) == ["fil_1"])
        #expect(byText.first?.snippet.contains("⟦zebra⟧ ⟦crossing⟧") == true)
        // Words from the name and the text together.
        #expect(try await fixture.search(["report", "revenue"]).map(\.id) == ["fil_1"])
        #expect(try await fixture.search(["zeb"], prefix: true).map(\.id) == ["fil_1"])
        #expect(try await fixture.search(["zebra"], user: "usr_2").isEmpty)

        try await fixture.database.writer.write { db in try db.execute(sql: "DELETE FROM files WHERE id = 'fil_1'") }
        #expect(try await fixture.search(["zebra"]).isEmpty)
        #expect(try await fixture.search(["quarterly"]).isEmpty)
        #expect(try await fixture.search(["quarterly"], user: "usr_2").map(\.id) == ["fil_2"])
        // The external-content index agrees with its table (a 'delete' with other values than
        // the row's would corrupt it).
        try await fixture.database.writer.write { db in try db.execute(sql: "INSERT INTO files_fts (files_fts) VALUES ('integrity-check')") }
    }

    @Test("deleting a user removes their files' texts from the index (cascade)")
    func userDeletion() async throws {
        let fixture = try await Fixture()
        try await fixture.insertFile("fil_1", name: "alpha.pdf", mediaType: "application/pdf")
        _ = try await fixture.store.finishText(fileID: "fil_1", outcome: .ready(text: "bravo", truncated: false), at: Date())
        try await fixture.database.writer.write { db in try db.execute(sql: "DELETE FROM users WHERE id = 'usr_1'") }
        let rows = try await fixture.database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM file_texts") }
        #expect(rows == 0)
        try await fixture.database.writer.write { db in try db.execute(sql: "INSERT INTO files_fts (files_fts) VALUES ('integrity-check')") }
        let matches = try await fixture.database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM files_fts WHERE files_fts MATCH 'bravo'")
        }
        #expect(matches == 0)
    }

    @Test("0022 gives the files stored before it their rows, pending or skipped")
    func backfill() async throws {
        let before = Migration.embedded.filter { $0.version < 22 }
        let database = try AgentDatabase.inMemory(migrator: Migrator(migrations: before))
        try await database.migrate(logger: Self.logger)
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'alice', ?)", arguments: [Self.now])
            for (id, name, type) in [("fil_1", "old.pdf", "application/pdf"), ("fil_2", "photo.png", "image/png")] {
                try db.execute(
                    sql: "INSERT INTO files (id, user_id, name, media_type, size, sha256, created_at) VALUES (?, 'usr_1', ?, ?, 1, ?, ?)",
                    arguments: [id, name, type, Self.sha, Self.now])
            }
        }
        let migrated = AgentDatabase(writer: database.writer, path: database.path, migrator: Migrator())
        #expect(try await migrated.migrate(logger: Self.logger).map(\.version).contains(22))
        let store = SQLiteFileTextStore(reader: database.writer, groupWriter: .testing(database.writer))
        #expect(try await store.extractedText(fileID: "fil_1", userID: "usr_1")?.state == .pending)
        #expect(try await store.extractedText(fileID: "fil_2", userID: "usr_1")?.state == .skipped)
        let index = SQLiteSearchIndex(reader: database.writer, indexer: nil)
        let hits = try await index.search(SearchQuery(userID: "usr_1", words: ["photo"], lastWordIsPrefix: false, kinds: [.files], limit: 10))
        #expect(hits.map(\.id) == ["fil_2"])
    }
}

extension SQLiteFileTextStore {
    /// `finishText` with the event the job makes (for usr_1: these tests' files are theirs).
    func finishText(fileID: String, outcome: FileTextOutcome, at: Date) async throws -> Bool {
        try await finishText(
            fileID: fileID, outcome: outcome, at: at, event: FileTextEvents.TextExtracted(userID: "usr_1", fileId: fileID, outcome: outcome))
    }
}
