import Foundation
import GRDB
import RPC
import Services

/// The audit log on SQLite: table `audit_entries` (0009).
public struct SQLiteAuditStore: AuditStore {
    private let writer: any DatabaseWriter

    public init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    public func record(_ event: Event) async throws {
        try await writer.write { db in
            try db.cachedStatement(sql: """
                    INSERT OR IGNORE INTO audit_entries (event_seq, user_id, action, outcome, occurred_at, data) VALUES (?, ?, ?, 'ok', ?, ?)
                    """).execute(arguments: [event.seq, event.userID, event.topic, Timestamp.text(event.occurredAt), event.data.text])
        }
    }

    public func record(call: AuditedCall) async throws {
        try await writer.write { db in
            try db.cachedStatement(sql: "INSERT INTO audit_entries (user_id, uid, action, outcome, occurred_at, data) VALUES (?, ?, ?, ?, ?, ?)")
                .execute(arguments: [call.userID, call.uid.map { Int64($0) }, call.action, call.outcome, Timestamp.text(call.occurredAt), call.data.text])
        }
    }

    public func records(userID: String, beforeID: Int64?, limit: Int) async throws -> [AuditRecord] {
        try await writer.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT id, action, outcome, occurred_at, uid, event_seq, data FROM audit_entries
                    WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?
                    """),
                arguments: [userID, beforeID ?? Int64.max, limit]
            ).map { row in
                let uid: Int64? = row[4]
                return AuditRecord(
                    id: row[0], action: row[1], outcome: row[2], occurredAt: try Timestamp.date(row[3]), uid: uid.map { UInt32($0) },
                    eventSeq: row[5], data: JSONFragment(unchecked: row[6]))
            }
        }
    }
}
