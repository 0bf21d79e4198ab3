import Foundation
import GRDB
import Services

/// The modules domain's store on SQLite: tables `modules` and `module_tags` (0003), and the
/// modules' files (`module_files`, 0021, through `SQLiteAttachmentStore`'s helpers). Reads go
/// through GRDB's async API, writes through the shared `GroupCommitWriter` (with their events);
/// never on an event loop.
public struct SQLiteModuleStore: ModuleStore {
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter
    private let ledger: StorageLedger

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, ledger: StorageLedger) {
        self.writer = writer
        self.writes = groupWriter
        self.ledger = ledger
    }

    public func insert(_ module: Module, userID: String, event: ModulesEvents.ModuleCreated) async throws -> Int64 {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                try db.cachedStatement(
                    sql: "INSERT INTO modules (id, user_id, title, description, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ).execute(arguments: [
                    module.id, userID, module.title, module.description, module.content, Timestamp.text(module.createdAt),
                    Timestamp.text(module.updatedAt),
                ])
            }
            let seq = db.lastInsertedRowID
            try Self.insertTags(module.tags, moduleID: module.id, db: db)
            try writes.record(event, in: db)
            return seq
        }
    }

    public func module(id: String, userID: String) async throws -> Module? {
        // One statement (tags included, and whether there are files), so no snapshot transaction is
        // needed; the files, when there are some, are a second one: a file added or removed between
        // the two shows or not, as it would a moment earlier or later.
        try await writer.unsafeRead { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.columnsWithTags) FROM modules WHERE id = ? AND user_id = ?"), arguments: [id, userID]
            )
            .map { try Self.withFiles(Self.storedModule($0).module, db: db) }
        }
    }

    public func update(id: String, userID: String, changes: ModuleChanges, event: ModulesEvents.ModuleUpdated) async throws -> Module? {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                try db.cachedStatement(
                    sql: """
                        UPDATE modules SET title = coalesce(?, title), description = coalesce(?, description),
                            content = coalesce(?, content), updated_at = ? WHERE id = ? AND user_id = ?
                        """
                ).execute(arguments: [changes.title, changes.description, changes.content, Timestamp.text(changes.updatedAt), id, userID])
            }
            guard db.changesCount > 0 else { return nil }
            if let tags = changes.tags {
                try db.cachedStatement(sql: "DELETE FROM module_tags WHERE module_id = ?").execute(arguments: [id])
                try Self.insertTags(tags, moduleID: id, db: db)
            }
            try writes.record(event, in: db)
            return try Self.module(id: id, db: db)
        }
    }

    public func addFile(moduleID: String, fileID: String, userID: String, maxFiles: Int, updatedAt: Date, event: ModulesEvents.ModuleUpdated)
        async throws -> Module?
    {
        try await writes.write { db in
            guard
                let count = try Int.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT (SELECT count(*) FROM module_files WHERE module_id = modules.id) FROM modules WHERE id = ? AND user_id = ?"),
                    arguments: [moduleID, userID])
            else { return nil }
            _ = try SQLiteAttachmentStore.ownedFiles([fileID], userID: userID, db: db)
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO module_files (module_id, file_id, added_at) SELECT ?1, ?2, ?3 WHERE ?4 < ?5")
                .execute(arguments: [moduleID, fileID, Timestamp.text(updatedAt), count, maxFiles])
            if db.changesCount > 0 {
                try Self.touch(moduleID, updatedAt: updatedAt, db: db)
                try writes.record(event, in: db)
            } else if count >= maxFiles,
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM module_files WHERE module_id = ? AND file_id = ?"), arguments: [moduleID, fileID]) == nil
            {
                throw FilesError.tooLarge(
                    field: "fileId", reason: "a module holds at most \(maxFiles) files", limit: Int64(maxFiles), actual: Int64(count + 1))
            }
            return try Self.module(id: moduleID, db: db)
        }
    }

    public func removeFile(moduleID: String, fileID: String, userID: String, updatedAt: Date, event: ModulesEvents.ModuleUpdated) async throws
        -> Module?
    {
        try await writes.write { db in
            guard
                try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM modules WHERE id = ? AND user_id = ?"), arguments: [moduleID, userID])
                    != nil
            else { return nil }
            try db.cachedStatement(sql: "DELETE FROM module_files WHERE module_id = ? AND file_id = ?").execute(arguments: [moduleID, fileID])
            guard db.changesCount > 0 else { throw FilesError.notFound(kind: "file", id: fileID) }
            try Self.touch(moduleID, updatedAt: updatedAt, db: db)
            try writes.record(event, in: db)
            return try Self.module(id: moduleID, db: db)
        }
    }

    public func delete(id: String, userID: String, event: ModulesEvents.ModuleDeleted) async throws -> Bool {
        let writes = self.writes
        return try await writes.write { db in
            try db.cachedStatement(sql: "DELETE FROM module_tags WHERE module_id IN (SELECT id FROM modules WHERE id = ? AND user_id = ?)").execute(
                arguments: [id, userID])
            try db.cachedStatement(sql: "DELETE FROM modules WHERE id = ? AND user_id = ?").execute(arguments: [id, userID])
            guard db.changesCount > 0 else { return false }
            try writes.record(event, in: db)
            return true
        }
    }

    public func list(_ query: ModuleQuery) async throws -> [StoredModule] {
        var conditions = ["user_id = ?"]
        var arguments: StatementArguments = [query.userID]
        if let before = query.beforeSeq {
            conditions.append("seq < ?")
            arguments += [before]
        }
        if let tag = query.tag {
            conditions.append("id IN (SELECT module_id FROM module_tags WHERE tag = ?)")
            arguments += [tag]
        }
        if let text = query.text, !text.isEmpty {
            let pattern = "%" + Self.escapeLike(text) + "%"
            conditions.append(#"(title LIKE ? ESCAPE '\' OR description LIKE ? ESCAPE '\')"#)
            arguments += [pattern, pattern]
        }
        arguments += [query.limit]
        let sql = "SELECT \(Self.columnsWithTags) FROM modules WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq DESC LIMIT ?"
        let finalArguments = arguments
        return try await writer.unsafeRead { db in
            // A page's modules go without their files (modules.get shows them).
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map { row in
                var stored = try Self.storedModule(row)
                stored.module.files = nil
                return stored
            }
        }
    }

    // MARK: Helpers

    /// The module with its files (the caller has checked it is the user's).
    private static func module(id: String, db: Database) throws -> Module? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT \(columnsWithTags) FROM modules WHERE id = ?"), arguments: [id])
            .map { try withFiles(storedModule($0).module, db: db) }
    }

    /// `module` with its files, read when the row said it has some (`has_files`).
    private static func withFiles(_ module: Module, db: Database) throws -> Module {
        guard module.files != nil else { return module }
        var module = module
        let files = try SQLiteAttachmentStore.moduleFiles(moduleID: module.id, db: db)
        module.files = files.isEmpty ? nil : files
        return module
    }

    private static func touch(_ moduleID: String, updatedAt: Date, db: Database) throws {
        try db.cachedStatement(sql: "UPDATE modules SET updated_at = ? WHERE id = ?").execute(arguments: [Timestamp.text(updatedAt), moduleID])
    }

    private static let columns = "seq, id, title, description, content, created_at, updated_at"

    /// `columns` and the module's tags, sorted, joined by U+001F (which tags may not contain), and
    /// whether it has files.
    private static let columnsWithTags =
        columns + """
            , (SELECT group_concat(tag, char(31)) FROM (SELECT tag FROM module_tags WHERE module_id = modules.id ORDER BY tag)) AS tags,
            EXISTS (SELECT 1 FROM module_files WHERE module_id = modules.id) AS has_files
            """

    private static func insertTags(_ tags: [String], moduleID: String, db: Database) throws {
        for tag in tags {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO module_tags (module_id, tag) VALUES (?, ?)").execute(arguments: [moduleID, tag])
        }
    }

    /// A row selected with `columnsWithTags`; `files` is `[]` when the module has some (`withFiles`
    /// reads them), nil otherwise.
    private static func storedModule(_ row: Row) throws -> StoredModule {
        let joined: String? = row["tags"]
        // Sorted here as the service sorts them (group_concat's order is not guaranteed).
        let tags = joined.map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init).sorted() } ?? []
        let module = Module(
            id: row["id"], title: row["title"], description: row["description"], content: row["content"], tags: tags,
            createdAt: try Timestamp.date(row["created_at"]), updatedAt: try Timestamp.date(row["updated_at"]),
            files: row["has_files"] as Bool? == true ? [] : nil)
        return StoredModule(seq: row["seq"], module: module)
    }

    /// `\`, `%` and `_` escaped with `\`, for `LIKE … ESCAPE '\'`.
    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
