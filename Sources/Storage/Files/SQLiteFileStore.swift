import Foundation
import GRDB
import Services

/// The files domain's store on SQLite: tables `files` and `file_uploads` (0020). Reads go through
/// GRDB's async API, writes through the shared `GroupCommitWriter` (with their events); never on an
/// event loop. The triggers of 0020 count a file's size and an open upload's announced size in
/// `user_usage`; the writes that grow it check the quota with `StorageLedger.refusingGrowthPastQuota`.
///
/// The blob store's calls that must not interleave with a reference to the same content (placing
/// a blob for a new row, deleting a blob no row names) run inside the writer's job: the writer is
/// single, so "no row names it, delete it" and "place it, name it" are ordered.
public struct SQLiteFileStore: FileStore {
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter
    private let ledger: StorageLedger

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, ledger: StorageLedger) {
        self.writer = writer
        self.writes = groupWriter
        self.ledger = ledger
    }

    // MARK: Uploads

    public func insertUpload(_ upload: FileUpload, maxOpenUploads: Int) async throws {
        let writes = self.writes
        let ledger = self.ledger
        try await writes.write { db in
            // Unexpired at the upload's own begin: an expired one the job has not removed yet does
            // not count (its reservation does, until removed).
            let open =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT count(*) FROM file_uploads WHERE user_id = ? AND expires_at > ?"),
                    arguments: [upload.userID, Timestamp.text(upload.createdAt)]) ?? 0
            guard open < maxOpenUploads else { throw FilesError.tooManyUploads(limit: maxOpenUploads) }
            try ledger.refusingGrowthPastQuota(userID: upload.userID, writes: writes, db: db) {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO file_uploads (id, user_id, name, media_type, size, sha256, received, created_at, expires_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    upload.id, upload.userID, upload.name, upload.mediaType, upload.size, upload.sha256, upload.received,
                    Timestamp.text(upload.createdAt), Timestamp.text(upload.expiresAt),
                ])
            }
        }
    }

    public func upload(id: String, userID: String) async throws -> FileUpload? {
        try await writer.read { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.uploadColumns) FROM file_uploads WHERE id = ? AND user_id = ?"), arguments: [id, userID]
            ).map(Self.upload(_:))
        }
    }

    public func advanceUpload(id: String, userID: String, from: Int64, to: Int64) async throws -> Bool {
        try await writes.write { db in
            try db.cachedStatement(sql: "UPDATE file_uploads SET received = ? WHERE id = ? AND user_id = ? AND received = ?").execute(
                arguments: [to, id, userID, from])
            return db.changesCount > 0
        }
    }

    public func deleteUpload(id: String, userID: String) async throws -> Bool {
        try await writes.write { db in
            try db.cachedStatement(sql: "DELETE FROM file_uploads WHERE id = ? AND user_id = ?").execute(arguments: [id, userID])
            return db.changesCount > 0
        }
    }

    public func expiredUploads(now: Date, limit: Int) async throws -> [FileUpload] {
        try await writer.read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.uploadColumns) FROM file_uploads WHERE expires_at < ? ORDER BY expires_at, id LIMIT ?"),
                arguments: [Timestamp.text(now), limit]
            ).map(Self.upload(_:))
        }
    }

    public func orphanStagings(_ stagingIDs: [String]) async throws -> [String] {
        try await writer.read { db in
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM file_uploads WHERE id = ?")
            return try stagingIDs.filter { try Int.fetchOne(statement, arguments: [$0]) == nil }
        }
    }

    // MARK: Files

    public func insertFile(
        _ file: FileMetadata, userID: String, fromUpload: String?, place: @escaping @Sendable () throws -> Void, event: FilesEvents.FileCreated
    ) async throws -> Int64 {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            // The upload's reservation goes before the file is charged, in the same check:
            // committing an upload never needs more room than it reserved.
            let seq = try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) { () -> Int64 in
                if let fromUpload {
                    try db.cachedStatement(sql: "DELETE FROM file_uploads WHERE id = ? AND user_id = ?").execute(arguments: [fromUpload, userID])
                    guard db.changesCount > 0 else { throw FilesError.notFound(kind: "upload", id: fromUpload) }
                }
                try db.cachedStatement(
                    sql: "INSERT INTO files (id, user_id, name, media_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                ).execute(arguments: [file.id, userID, file.name, file.mediaType, file.size, file.sha256, Timestamp.text(file.createdAt)])
                return db.lastInsertedRowID
            }
            // Last, after every check: a refused insert places nothing (an orphan blob would
            // wait for the next start's sweep).
            try place()
            try writes.record(event, in: db)
            return seq
        }
    }

    public func file(id: String, userID: String) async throws -> FileMetadata? {
        try await writer.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.fileColumns) FROM files WHERE id = ? AND user_id = ?"), arguments: [id, userID])
                .map { try Self.storedFile($0).file }
        }
    }

    public func files(ids: [String], userID: String) async throws -> [FileMetadata] {
        guard !ids.isEmpty else { return [] }
        return try await writer.read { db in
            let statement = try db.cachedStatement(sql: "SELECT \(Self.fileColumns) FROM files WHERE id = ? AND user_id = ?")
            return try ids.compactMap { id in try Row.fetchOne(statement, arguments: [id, userID]).map { try Self.storedFile($0).file } }
        }
    }

    public func list(_ query: FileQuery) async throws -> [StoredFile] {
        var conditions = ["user_id = ?"]
        var arguments: StatementArguments = [query.userID]
        if let before = query.beforeSeq {
            conditions.append("seq < ?")
            arguments += [before]
        }
        if let mediaType = query.mediaType {
            if mediaType.hasSuffix("/*") {
                // `image/*`: the top-level type, compared as a prefix (no LIKE: `_` and `%` are literal here).
                let prefix = String(mediaType.dropLast())
                conditions.append("substr(media_type, 1, ?) = ?")
                arguments += [prefix.utf8.count, prefix]
            } else {
                conditions.append("media_type = ?")
                arguments += [mediaType]
            }
        }
        arguments += [query.limit]
        let sql = "SELECT \(Self.fileColumns) FROM files WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq DESC LIMIT ?"
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map(Self.storedFile(_:))
        }
    }

    public func deleteFile(id: String, userID: String, event: FilesEvents.FileDeleted) async throws -> FileDeletion? {
        let writes = self.writes
        return try await writes.write { db in
            guard
                let file = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT \(Self.fileColumns) FROM files WHERE id = ? AND user_id = ?"), arguments: [id, userID]
                ).map({ try Self.storedFile($0).file })
            else { return nil }
            // The modules it leaves (ON DELETE CASCADE, 0021) change too: their module.updated
            // events (which also make modules.get's cached replies stale).
            let modules = try SQLiteAttachmentStore.modulesHolding(fileID: id, db: db)
            try db.cachedStatement(sql: "DELETE FROM files WHERE id = ?").execute(arguments: [id])
            try writes.record(event, in: db)
            for moduleID in modules {
                try writes.record(ModulesEvents.ModuleUpdated(userID: userID, moduleId: moduleID, fields: ["files"]), in: db)
            }
            let referenced =
                try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM files WHERE sha256 = ? LIMIT 1"), arguments: [file.sha256]) != nil
            return FileDeletion(file: file, unreferencedBlob: referenced ? nil : file.digest)
        }
    }

    // MARK: Blobs

    public func removeBlobIfUnreferenced(_ digest: BlobDigest, remove: @escaping @Sendable () throws -> Void) async throws -> Bool {
        let writes = self.writes
        return try await writes.write { db in
            guard try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM files WHERE sha256 = ? LIMIT 1"), arguments: [digest.hex]) == nil
            else { return false }
            try remove()
            return true
        }
    }

    public func unreferencedBlobs(_ digests: [BlobDigest]) async throws -> [BlobDigest] {
        try await writer.read { db in
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM files WHERE sha256 = ? LIMIT 1")
            return try digests.filter { try Int.fetchOne(statement, arguments: [$0.hex]) == nil }
        }
    }

    // MARK: Helpers

    private static let fileColumns = "seq, id, name, media_type, size, sha256, created_at"
    private static let uploadColumns = "id, user_id, name, media_type, size, sha256, received, created_at, expires_at"

    private static func storedFile(_ row: Row) throws -> StoredFile {
        StoredFile(
            seq: row["seq"],
            file: FileMetadata(
                id: row["id"], name: row["name"], mediaType: row["media_type"], size: row["size"], sha256: row["sha256"],
                createdAt: try Timestamp.date(row["created_at"])))
    }

    private static func upload(_ row: Row) throws -> FileUpload {
        FileUpload(
            id: row["id"], userID: row["user_id"], name: row["name"], mediaType: row["media_type"], size: row["size"], sha256: row["sha256"],
            received: row["received"], createdAt: try Timestamp.date(row["created_at"]), expiresAt: try Timestamp.date(row["expires_at"]))
    }
}
