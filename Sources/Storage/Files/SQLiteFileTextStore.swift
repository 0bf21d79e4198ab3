import Foundation
import GRDB
import Services

/// Extracted file texts on SQLite: table `file_texts` (0022), one row per file, added and removed
/// with it by the schema (trigger, ON DELETE CASCADE), indexed for search by triggers
/// (`files_fts`). Reads are single statements (`unsafeRead`); the one write goes through the
/// group-commit writer like every other.
public struct SQLiteFileTextStore: FileTextStore {
    private let reader: any DatabaseReader
    private let writes: GroupCommitWriter

    public init(reader: any DatabaseReader, groupWriter: GroupCommitWriter) {
        self.reader = reader
        self.writes = groupWriter
    }

    public func extractedText(fileID: String, userID: String) async throws -> ExtractedText? {
        try await reader.unsafeRead { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT t.state, t.text, t.truncated, t.error, t.extracted_at
                            FROM files f JOIN file_texts t ON t.file_seq = f.seq WHERE f.id = ? AND f.user_id = ?
                            """), arguments: [fileID, userID])
            else { return nil }
            let stateText: String = row["state"]
            guard let state = FileTextState(rawValue: stateText) else {
                throw DatabaseError(message: "file_texts.state \(stateText) of \(fileID) is none of \(FileTextState.allCases)")
            }
            let extractedAt: String? = row["extracted_at"]
            return ExtractedText(
                state: state, text: row["text"], truncated: row["truncated"], error: row["error"], extractedAt: try extractedAt.map(Timestamp.date))
        }
    }

    public func pendingText(fileID: String) async throws -> FileTextTask? {
        try await reader.unsafeRead { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT f.seq, f.id, f.user_id, f.media_type, f.size, f.sha256
                        FROM files f JOIN file_texts t ON t.file_seq = f.seq WHERE f.id = ? AND t.state = 'pending'
                        """), arguments: [fileID]
            ).map(Self.task)
        }
    }

    public func pendingTexts(afterSeq: Int64, limit: Int) async throws -> [FileTextTask] {
        try await reader.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT f.seq, f.id, f.user_id, f.media_type, f.size, f.sha256
                        FROM file_texts t JOIN files f ON f.seq = t.file_seq
                        WHERE t.state = 'pending' AND t.file_seq > ? ORDER BY t.file_seq LIMIT ?
                        """), arguments: [afterSeq, limit]
            ).map(Self.task)
        }
    }

    public func finishText(fileID: String, outcome: FileTextOutcome, at: Date, event: FileTextEvents.TextExtracted) async throws -> Bool {
        let (state, text, truncated, error): (FileTextState, String?, Bool, String?) =
            switch outcome {
            case .ready(let text, let truncated): (.ready, text, truncated, nil)
            case .failed(let reason): (.failed, nil, false, reason)
            }
        let writes = self.writes
        return try await writes.write { db in
            try db.cachedStatement(
                sql: """
                    UPDATE file_texts SET state = ?, text = ?, truncated = ?, error = ?, extracted_at = ?
                    WHERE state = 'pending' AND file_seq = (SELECT seq FROM files WHERE id = ?)
                    """
            ).execute(arguments: [state.rawValue, text, truncated, error, Timestamp.text(at), fileID])
            guard db.changesCount > 0 else { return false }
            try writes.record(event, in: db)
            return true
        }
    }

    private static func task(_ row: Row) throws -> FileTextTask {
        let sha256: String = row["sha256"]
        guard let digest = BlobDigest(hex: sha256) else { throw DatabaseError(message: "files.sha256 \(sha256) is not a SHA-256") }
        return FileTextTask(
            seq: row["seq"], fileID: row["id"], userID: row["user_id"], mediaType: row["media_type"], size: row["size"], digest: digest)
    }
}
