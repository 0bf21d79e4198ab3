import Foundation
import GRDB
import RPC
import Services

/// The audit log on SQLite: table `audit_log` (0008), keyed by the event's seq.
public struct SQLiteAuditStore: AuditStore {
    private let writer: any DatabaseWriter

    public init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    public func record(_ event: Event) async throws {
        try await writer.write { db in
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO audit_log (seq, user_id, action, occurred_at, data) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [event.seq, event.userID, event.topic, Timestamp.text(event.occurredAt), event.data.text])
        }
    }

    public func records(userID: String, beforeSeq: Int64?, limit: Int) async throws -> [AuditRecord] {
        try await writer.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT seq, action, occurred_at, data FROM audit_log WHERE user_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"),
                arguments: [userID, beforeSeq ?? Int64.max, limit]
            ).map { AuditRecord(seq: $0[0], action: $0[1], occurredAt: try Timestamp.date($0[2]), data: JSONFragment(unchecked: $0[3])) }
        }
    }
}
