import Foundation
import GRDB
import Services

/// The files attached to messages and modules, on SQLite: tables `message_attachments` and
/// `module_files` (schema/0021_attachments.sql). The chats and modules stores attach files inside
/// their own writes through the helpers here; the agent reads a run's files through this store
/// (`AttachmentStore`).
///
/// Lists of ids go to SQLite as one JSON array (`json_each`): one cached statement whatever their
/// number.
public struct SQLiteAttachmentStore: AttachmentStore {
    let reader: any DatabaseReader

    public init(reader: any DatabaseReader) {
        self.reader = reader
    }

    public func attachments(messageIDs: [String], userID: String) async throws -> [String: [FileMetadata]] {
        guard !messageIDs.isEmpty else { return [:] }
        let ids = try Self.jsonArray(messageIDs)
        return try await reader.unsafeRead { db in try Self.attachments(messageIDsJSON: ids, userID: userID, db: db) }
    }

    public func moduleFiles(moduleID: String, userID: String) async throws -> [FileMetadata]? {
        try await reader.read { db in
            guard
                try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM modules WHERE id = ? AND user_id = ?"), arguments: [moduleID, userID])
                    != nil
            else { return nil }
            return try Self.moduleFiles(moduleID: moduleID, db: db)
        }
    }

    // MARK: Messages

    /// The user's files among `ids`, in the order of `ids`, read in the caller's write before it
    /// writes anything.
    ///
    /// - Throws: `FilesError.notFound(kind: "file")` naming the first id that is not the user's file.
    static func ownedFiles(_ ids: [String], userID: String, db: Database) throws -> [FileMetadata] {
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT \(fileColumns) FROM files WHERE user_id = ? AND id IN (SELECT value FROM json_each(?))"),
            arguments: [userID, try jsonArray(ids)])
        var found: [String: FileMetadata] = [:]
        for row in rows {
            let file = try file(row)
            found[file.id] = file
        }
        return try ids.map { id in
            guard let file = found[id] else { throw FilesError.notFound(kind: "file", id: id) }
            return file
        }
    }

    /// Attaches `fileIDs` (checked: the user's files) to message `messageID`, in their order.
    static func attach(_ fileIDs: [String], toMessage messageID: String, db: Database) throws {
        try db.cachedStatement(
            sql: "INSERT INTO message_attachments (message_id, position, file_id) SELECT ?, key, value FROM json_each(?)"
        ).execute(arguments: [messageID, try jsonArray(fileIDs)])
    }

    /// Attaches to message `messageID` those of `fileIDs` that are still the user's files (a fork's
    /// copies: a file deleted since the original was read is left out); returns how many.
    static func attachRemaining(_ fileIDs: [String], toMessage messageID: String, userID: String, db: Database) throws -> Int {
        try db.cachedStatement(
            sql: """
                INSERT INTO message_attachments (message_id, position, file_id)
                SELECT ?, j.key, f.id FROM json_each(?) j JOIN files f ON f.id = j.value AND f.user_id = ?
                """
        ).execute(arguments: [messageID, try jsonArray(fileIDs), userID])
        return db.changesCount
    }

    /// Fills in the attachments of those `messages` that were appended with some (the chats store
    /// reads them with `attachments` set to `[]` when `attachment_count` is not 0, nil otherwise):
    /// no statement when none was; one for all of them otherwise. A message whose files were all
    /// deleted ends with nil, as one that never had any.
    static func fill(_ messages: inout [Message], db: Database) throws {
        let ids = messages.compactMap { $0.attachments == nil ? nil : $0.id }
        guard !ids.isEmpty else { return }
        let found = try attachments(messageIDsJSON: try jsonArray(ids), userID: nil, db: db)
        for index in messages.indices where messages[index].attachments != nil {
            messages[index].attachments = found[messages[index].id]
        }
    }

    /// `fill` for one message.
    static func fill(_ message: Message?, db: Database) throws -> Message? {
        guard var messages = message.map({ [$0] }) else { return nil }
        try fill(&messages, db: db)
        return messages.first
    }

    /// `userID` nil: the caller has scoped the messages already (a message's files are its owner's).
    private static func attachments(messageIDsJSON: String, userID: String?, db: Database) throws -> [String: [FileMetadata]] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT a.message_id, \(fileColumns("f")) FROM message_attachments a JOIN files f ON f.id = a.file_id
                    WHERE a.message_id IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR f.user_id = ?2)
                    ORDER BY a.message_id, a.position
                    """),
            arguments: [messageIDsJSON, userID])
        var result: [String: [FileMetadata]] = [:]
        for row in rows {
            result[row["message_id"], default: []].append(try file(row))
        }
        return result
    }

    // MARK: Modules

    /// The module's files in the order they were added (the caller has checked the module is the user's).
    static func moduleFiles(moduleID: String, db: Database) throws -> [FileMetadata] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT \(fileColumns("f")) FROM module_files m JOIN files f ON f.id = m.file_id WHERE m.module_id = ? ORDER BY m.seq"),
            arguments: [moduleID]
        ).map(file)
    }

    /// The modules file `fileID` is in (deleting it takes it out of them).
    static func modulesHolding(fileID: String, db: Database) throws -> [String] {
        try String.fetchAll(db.cachedStatement(sql: "SELECT module_id FROM module_files WHERE file_id = ? ORDER BY seq"), arguments: [fileID])
    }

    // MARK: Rows

    static let fileColumns = fileColumns(nil)

    static func fileColumns(_ table: String?) -> String {
        let prefix = table.map { "\($0)." } ?? ""
        return ["id", "name", "media_type", "size", "sha256", "created_at"].map { prefix + $0 }.joined(separator: ", ")
    }

    static func file(_ row: Row) throws -> FileMetadata {
        FileMetadata(
            id: row["id"], name: row["name"], mediaType: row["media_type"], size: row["size"], sha256: row["sha256"],
            createdAt: try Timestamp.date(row["created_at"]))
    }

    static func jsonArray(_ ids: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)
    }
}
