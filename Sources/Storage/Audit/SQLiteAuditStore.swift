import Foundation
import GRDB
import RPC
import Services

/// The audit log on SQLite: table `audit_entries` (0009, 0011). Entries are written through the
/// shared `GroupCommitWriter`: a burst of audited calls (a flood of refused logins) shares its
/// transactions instead of paying a commit each.
public struct SQLiteAuditStore: AuditStore {
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter) {
        self.writer = writer
        self.writes = groupWriter
    }

    public func record(_ event: Event) async throws {
        try await writes.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO audit_entries (event_seq, user_id, action, outcome, occurred_at, data) VALUES (?, ?, ?, 'ok', ?, ?)
                    """
            ).execute(arguments: [event.seq, event.userID, event.topic, Timestamp.text(event.occurredAt), event.data.text])
        }
    }

    public func record(call: AuditedCall) async throws {
        try await writes.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO audit_entries (user_id, uid, action, outcome, occurred_at, data, coalesce_key) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (coalesce_key) WHERE coalesce_key IS NOT NULL DO UPDATE SET count = count + 1
                    """
            )
            .execute(arguments: [
                call.userID, call.uid.map { Int64($0) }, call.action, call.outcome, Timestamp.text(call.occurredAt), call.data.text, call.coalesceKey,
            ])
        }
    }

    /// In a transaction of its own, not in a group-commit batch: a large prune must not hold up
    /// the writes batched with it.
    public func prune(before: Date, keepLast: Int) async throws -> Int {
        try await writer.write { db in
            try db.cachedStatement(sql: "DELETE FROM audit_entries WHERE occurred_at < ?").execute(arguments: [Timestamp.text(before)])
            var deleted = db.changesCount
            try db.cachedStatement(sql: "DELETE FROM audit_entries WHERE id <= (SELECT id FROM audit_entries ORDER BY id DESC LIMIT 1 OFFSET ?)")
                .execute(arguments: [keepLast])
            deleted += db.changesCount
            return deleted
        }
    }

    public func records(userID: String, beforeID: Int64?, limit: Int) async throws -> [AuditRecord] {
        try await writer.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id, action, outcome, occurred_at, uid, event_seq, data, count FROM audit_entries
                        WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?
                        """),
                arguments: [userID, beforeID ?? Int64.max, limit]
            ).map { row in
                let uid: Int64? = row[4]
                return AuditRecord(
                    id: row[0], action: row[1], outcome: row[2], occurredAt: try Timestamp.date(row[3]), uid: uid.map { UInt32($0) },
                    eventSeq: row[5], data: JSONFragment(unchecked: row[6]), count: row[7])
            }
        }
    }
}
