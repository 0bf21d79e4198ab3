import Foundation
import GRDB
import RPC
import Services

/// The events domain's store on SQLite: the outbox table `events`, the consumers' cursors and the
/// retention mark (0008). Events are inserted by `EventOutbox` in the domains' transactions; this
/// store reads them back, moves cursors and prunes.
public struct SQLiteEventStore: EventStore {
    /// Rows deleted per transaction when pruning, so a large prune never holds the write lock long.
    static let pruneChunk = 10_000

    private let writer: any DatabaseWriter

    public init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    public func events(_ query: EventQuery) async throws -> [Event] {
        try await writer.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.columns) FROM events WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
                arguments: [query.userID, query.afterSeq, query.limit]
            ).map(Self.event)
        }
    }

    public func events(topics: [String], afterSeq: Int64, limit: Int) async throws -> [Event] {
        if topics.isEmpty { return [] }
        let placeholders = Array(repeating: "?", count: topics.count).joined(separator: ", ")
        let sql = "SELECT \(Self.columns) FROM events WHERE topic IN (\(placeholders)) AND seq > ? ORDER BY seq LIMIT ?"
        var arguments = StatementArguments(topics.sorted())
        arguments += [afterSeq, limit]
        let finalArguments = arguments
        return try await writer.unsafeRead { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map(Self.event)
        }
    }

    public func latestSeq() async throws -> Int64 {
        try await writer.unsafeRead { db in try Self.latestSeq(db) }
    }

    /// The newest seq ever given (also when that event was pruned): AUTOINCREMENT's counter.
    public static func latestSeq(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'")) ?? 0
    }

    public func prunedThrough() async throws -> Int64 {
        try await writer.unsafeRead { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT pruned_through FROM event_retention WHERE id = 1")) ?? 0
        }
    }

    public func consumerPosition(name: String) async throws -> Int64 {
        try await writer.unsafeRead { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM event_consumers WHERE name = ?"), arguments: [name]) ?? 0
        }
    }

    public func setConsumerPosition(name: String, seq: Int64) async throws {
        try await writer.write { db in
            try db.cachedStatement(
                sql: "INSERT INTO event_consumers (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq)"
            )
            .execute(arguments: [name, seq])
        }
    }

    public func prune(before cutoff: Date, keepLast: Int, keepAfter: Int64) async throws -> PruneResult {
        let (latest, pruned, oldEnough) = try await writer.read { db in
            let latest = try Self.latestSeq(db)
            let pruned = try Int64.fetchOne(db, sql: "SELECT pruned_through FROM event_retention WHERE id = 1") ?? 0
            // Seqs follow commit order, so the events older than the cutoff are (but for clock
            // steps) a prefix: the newest of them bounds what age retention removes.
            let oldEnough = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events WHERE occurred_at < ?", arguments: [Timestamp.text(cutoff)]) ?? 0
            return (latest, pruned, oldEnough)
        }
        let byCount = latest - Int64(keepLast)
        let through = min(max(byCount, oldEnough), keepAfter)
        guard through > pruned else { return PruneResult(deleted: 0, prunedThrough: pruned) }
        var deleted = 0
        var done = pruned
        while done < through {
            let upTo = min(through, done + Int64(Self.pruneChunk))
            deleted += try await writer.write { db in
                try db.execute(sql: "DELETE FROM events WHERE seq <= ?", arguments: [upTo])
                let count = db.changesCount
                try db.execute(sql: "UPDATE event_retention SET pruned_through = max(pruned_through, ?) WHERE id = 1", arguments: [upTo])
                return count
            }
            done = upTo
        }
        return PruneResult(deleted: deleted, prunedThrough: through)
    }

    // MARK: Rows

    private static let columns = "seq, topic, user_id, chat_id, module_id, occurred_at, data"

    private static func event(_ row: Row) throws -> Event {
        Event(
            seq: row[0], topic: row[1], userID: row[2], chatID: row[3], moduleID: row[4], occurredAt: try Timestamp.date(row[5]),
            data: JSONFragment(unchecked: row[6]))
    }
}
