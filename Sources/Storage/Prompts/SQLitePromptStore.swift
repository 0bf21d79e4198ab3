import Foundation
import GRDB
import Services

/// The prompts domain's store on SQLite: tables `prompts` and `prompt_versions` (0005). A row of
/// `prompts` without `user_id` is a built-in: the reads find it for every user, the writes never.
/// Reads go through GRDB's async API, writes through the shared `GroupCommitWriter` (with their
/// events); never on an event loop.
public struct SQLitePromptStore: PromptStore {
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter
    private let ledger: StorageLedger

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, ledger: StorageLedger) {
        self.writer = writer
        self.writes = groupWriter
        self.ledger = ledger
    }

    public func insert(_ prompt: Prompt, userID: String, event: PromptsEvents.PromptCreated) async throws -> Int64 {
        let variables = try Self.json(prompt.variables)
        let writes = self.writes
        let ledger = self.ledger
        return try await Self.mappingNameTaken {
            try await writes.write { db in
                let seq = try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                    try db.cachedStatement(
                        sql:
                            "INSERT INTO prompts (id, user_id, name, description, latest_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ).execute(arguments: [
                        prompt.id, userID, prompt.name, prompt.description, prompt.latestVersion, Timestamp.text(prompt.createdAt),
                        Timestamp.text(prompt.updatedAt),
                    ])
                    let seq = db.lastInsertedRowID
                    try db.cachedStatement(
                        sql: "INSERT INTO prompt_versions (prompt_id, version, body, variables, created_at) VALUES (?, ?, ?, ?, ?)"
                    ).execute(arguments: [prompt.id, prompt.version, prompt.body, variables, Timestamp.text(prompt.versionCreatedAt)])
                    return seq
                }
                try writes.record(event, in: db)
                return seq
            }
        }
    }

    public func prompt(id: String, version: Int?, userID: String) async throws -> Prompt? {
        try await writer.read { db in
            let sql = "\(Self.select(version: "coalesce(?, p.latest_version)")) WHERE p.id = ? AND (p.user_id = ? OR p.user_id IS NULL)"
            return try Row.fetchOne(db.cachedStatement(sql: sql), arguments: [version, id, userID]).map { try Self.storedPrompt($0).prompt }
        }
    }

    public func prompt(named name: String, userID: String) async throws -> Prompt? {
        try await writer.read { db in
            // The user's own first: `user_id IS NULL` is 0 for theirs, 1 for a built-in.
            let sql = """
                \(Self.select(version: "p.latest_version")) WHERE p.name = ? AND (p.user_id = ? OR p.user_id IS NULL)
                ORDER BY p.user_id IS NULL LIMIT 1
                """
            return try Row.fetchOne(db.cachedStatement(sql: sql), arguments: [name, userID]).map { try Self.storedPrompt($0).prompt }
        }
    }

    public func update(
        id: String, userID: String, edit: @escaping @Sendable (Prompt) throws -> PromptChanges,
        event: @escaping @Sendable (Prompt) -> PromptsEvents.PromptUpdated
    ) async throws -> Prompt? {
        let writes = self.writes
        let ledger = self.ledger
        return try await Self.mappingNameTaken {
            try await writes.write { db in
                try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) { () -> Prompt? in
                    let select = "\(Self.select(version: "p.latest_version")) WHERE p.id = ?"
                    guard let row = try Row.fetchOne(db.cachedStatement(sql: select + " AND p.user_id = ?"), arguments: [id, userID]) else {
                        return nil
                    }
                    let current = try Self.storedPrompt(row).prompt
                    let changes = try edit(current)
                    var latest = current.latestVersion
                    if let content = changes.content {
                        latest += 1
                        try db.cachedStatement(
                            sql: "INSERT INTO prompt_versions (prompt_id, version, body, variables, created_at) VALUES (?, ?, ?, ?, ?)"
                        ).execute(arguments: [id, latest, content.body, try Self.json(content.variables), Timestamp.text(changes.updatedAt)])
                    }
                    try db.cachedStatement(
                        sql:
                            "UPDATE prompts SET name = coalesce(?, name), description = coalesce(?, description), latest_version = ?, updated_at = ? WHERE id = ?"
                    ).execute(arguments: [changes.name, changes.description, latest, Timestamp.text(changes.updatedAt), id])
                    guard let updated = try Row.fetchOne(db.cachedStatement(sql: select), arguments: [id]).map({ try Self.storedPrompt($0).prompt })
                    else {
                        return nil
                    }
                    try writes.record(event(updated), in: db)
                    return updated
                }
            }
        }
    }

    public func delete(id: String, userID: String, event: PromptsEvents.PromptDeleted) async throws -> Bool {
        let writes = self.writes
        return try await writes.write { db in
            // Its versions go with it (ON DELETE CASCADE).
            try db.cachedStatement(sql: "DELETE FROM prompts WHERE id = ? AND user_id = ?").execute(arguments: [id, userID])
            guard db.changesCount > 0 else { return false }
            try writes.record(event, in: db)
            return true
        }
    }

    public func list(_ query: PromptQuery) async throws -> [StoredPrompt] {
        var sql = "\(Self.select(version: "p.latest_version")) WHERE (p.user_id = ? OR p.user_id IS NULL)"
        var arguments: StatementArguments = [query.userID]
        if let before = query.beforeSeq {
            sql += " AND p.seq < ?"
            arguments += [before]
        }
        sql += " ORDER BY p.seq DESC LIMIT ?"
        arguments += [query.limit]
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db.cachedStatement(sql: finalSQL), arguments: finalArguments).map(Self.storedPrompt)
        }
    }

    public func versions(id: String, userID: String) async throws -> [PromptVersionSummary]? {
        try await writer.read { db in
            guard
                try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM prompts WHERE id = ? AND (user_id = ? OR user_id IS NULL)"), arguments: [id, userID])
                    != nil
            else { return nil }
            return try Row.fetchAll(
                db.cachedStatement(sql: "SELECT version, variables, created_at FROM prompt_versions WHERE prompt_id = ? ORDER BY version"),
                arguments: [id]
            ).map { row in
                PromptVersionSummary(
                    version: row["version"], variables: try Self.variables(row["variables"]), createdAt: try Timestamp.date(row["created_at"]))
            }
        }
    }

    // MARK: Helpers

    /// The prompt joined with one of its versions (`version`: an SQL expression); add the WHERE.
    private static func select(version: String) -> String {
        """
        SELECT p.seq, p.id, p.user_id, p.name, p.description, p.latest_version, p.created_at, p.updated_at,
            v.version, v.body, v.variables, v.created_at AS version_created_at
        FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = \(version)
        """
    }

    private static func storedPrompt(_ row: Row) throws -> StoredPrompt {
        let userID: String? = row["user_id"]
        let prompt = Prompt(
            id: row["id"], name: row["name"], description: row["description"], version: row["version"],
            latestVersion: row["latest_version"], body: row["body"], variables: try variables(row["variables"]), builtIn: userID == nil,
            createdAt: try Timestamp.date(row["created_at"]), updatedAt: try Timestamp.date(row["updated_at"]),
            versionCreatedAt: try Timestamp.date(row["version_created_at"]))
        return StoredPrompt(seq: row["seq"], prompt: prompt)
    }

    /// Declared variables are kept as a JSON array of names.
    private static func json(_ variables: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(variables), as: UTF8.self)
    }

    private static func variables(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    /// A UNIQUE violation on a write is the (user, name) index: the only other one is the id's, and
    /// ids are fresh.
    private static func mappingNameTaken<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw PromptStoreError.nameTaken
        }
    }
}
