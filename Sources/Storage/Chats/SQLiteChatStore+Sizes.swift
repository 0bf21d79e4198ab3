import GRDB
import Services

/// Reads bounded by bytes: what `chats.export` checks against the reply budget, and the part of a
/// branch the agent's context window can hold. Each sums content lengths inside SQLite
/// (`length(CAST(content AS BLOB))`: bytes, not characters), so no message is read into memory
/// to be counted.
extension SQLiteChatStore {
    public func contentSize(chatID: String, userID: String, scope: ChatContentScope) async throws -> ChatContentSize? {
        try await reader.read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT active_message_id FROM chats WHERE id = ? AND user_id = ?"), arguments: [chatID, userID])
            else {
                return nil
            }
            let sized: Row?
            switch scope {
            case .all:
                sized = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT count(*), coalesce(sum(length(CAST(content AS BLOB))), 0) FROM messages WHERE chat_id = ?"),
                    arguments: [chatID])
            case .activeBranch:
                guard let leaf: String = row[0] else { return ChatContentSize(messages: 0, bytes: 0) }
                sized = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            WITH RECURSIVE path(id, parent_id, bytes) AS (
                                SELECT id, parent_id, length(CAST(content AS BLOB)) FROM messages WHERE id = ?
                                UNION ALL
                                SELECT m.id, m.parent_id, length(CAST(m.content AS BLOB)) FROM messages m JOIN path p ON m.id = p.parent_id
                            )
                            SELECT count(*), coalesce(sum(bytes), 0) FROM path
                            """),
                    arguments: [leaf])
            }
            return ChatContentSize(messages: sized?[0] ?? 0, bytes: sized?[1] ?? 0)
        }
    }

    public func pathTail(to messageID: String, userID: String, maxContentBytes: Int) async throws -> [Message]? {
        // Up from the message while the total so far is within the budget: the row that passes it
        // is walked to (one step past) but not returned, except the message itself.
        try await reader.unsafeRead { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        WITH RECURSIVE tail(id, parent_id, total) AS (
                            SELECT id, parent_id, length(CAST(content AS BLOB)) FROM messages WHERE id = ? AND user_id = ?
                            UNION ALL
                            SELECT m.id, m.parent_id, t.total + length(CAST(m.content AS BLOB)) FROM messages m JOIN tail t ON m.id = t.parent_id
                            WHERE t.total <= ?
                        )
                        SELECT \(Self.messageColumns("m")) FROM tail JOIN messages m ON m.id = tail.id
                        WHERE tail.total <= ? OR tail.id = ? ORDER BY m.depth
                        """),
                arguments: [messageID, userID, maxContentBytes, maxContentBytes, messageID])
            guard !rows.isEmpty else { return nil }
            var messages = try rows.map(Self.message)
            try SQLiteAttachmentStore.fill(&messages, db: db)
            return messages
        }
    }
}
