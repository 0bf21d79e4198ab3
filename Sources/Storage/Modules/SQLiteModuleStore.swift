import Foundation
import GRDB
import Services

/// The modules domain's store on SQLite: tables `modules` and `module_tags` (0003). Reads go
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
        // One statement (tags included), so no snapshot transaction is needed.
        try await writer.unsafeRead { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.columnsWithTags) FROM modules WHERE id = ? AND user_id = ?"), arguments: [id, userID]
            )
            .map { try Self.storedModule($0).module }
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
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.columnsWithTags) FROM modules WHERE id = ?"), arguments: [id])
                .map { try Self.storedModule($0).module }
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
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map { try Self.storedModule($0) }
        }
    }

    // MARK: Helpers

    private static let columns = "seq, id, title, description, content, created_at, updated_at"

    /// `columns` and the module's tags, sorted, joined by U+001F (which tags may not contain).
    private static let columnsWithTags =
        columns + """
            , (SELECT group_concat(tag, char(31)) FROM (SELECT tag FROM module_tags WHERE module_id = modules.id ORDER BY tag)) AS tags
            """

    private static func insertTags(_ tags: [String], moduleID: String, db: Database) throws {
        for tag in tags {
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO module_tags (module_id, tag) VALUES (?, ?)").execute(arguments: [moduleID, tag])
        }
    }

    /// A row selected with `columnsWithTags`.
    private static func storedModule(_ row: Row) throws -> StoredModule {
        let joined: String? = row["tags"]
        // Sorted here as the service sorts them (group_concat's order is not guaranteed).
        let tags = joined.map { $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init).sorted() } ?? []
        let module = Module(
            id: row["id"], title: row["title"], description: row["description"], content: row["content"], tags: tags,
            createdAt: try Timestamp.date(row["created_at"]), updatedAt: try Timestamp.date(row["updated_at"]))
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
