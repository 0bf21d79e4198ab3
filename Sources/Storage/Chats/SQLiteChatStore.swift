import Foundation
import GRDB
import Services

/// The chats domain's store on SQLite: tables `chats` and `messages` (0004).
///
/// Every write goes through one `GroupCommitWriter`, so concurrent appends (the hot write path:
/// every turn of every conversation) share transactions instead of paying a commit each. Each
/// write checks ownership inside its own savepoint, so a refused append never affects the others
/// committed with it. Reads use the database's readers; a read of one statement skips the
/// snapshot transaction (`unsafeRead`: one statement is consistent on its own, and the BEGIN/COMMIT
/// pair cost more than the query), a read of several statements takes one.
public struct SQLiteChatStore: ChatStore {
    let reader: any DatabaseReader
    private let writes: GroupCommitWriter
    private let ledger: StorageLedger

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, ledger: StorageLedger) {
        self.reader = writer
        self.writes = groupWriter
        self.ledger = ledger
    }

    // MARK: Chats

    public func insert(_ chat: NewChat, userID: String, event: ChatsEvents.ChatCreated) async throws -> Chat {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, db: db) { try Self.insertChat(chat, userID: userID, writes: writes, db: db) }
            try writes.record(event, in: db)
            return try Self.chat(id: chat.id, userID: userID, db: db)!
        }
    }

    public func chat(id: String, userID: String) async throws -> Chat? {
        try await reader.unsafeRead { db in try Self.chat(id: id, userID: userID, db: db) }
    }

    public func chats(_ query: ChatQuery) async throws -> [StoredChat] {
        var conditions = ["c.user_id = ?"]
        var arguments: StatementArguments = [query.userID]
        if let moduleID = query.moduleID {
            conditions.append("c.module_id = ?")
            arguments += [moduleID]
        }
        if let before = query.beforeSeq {
            conditions.append("c.seq < ?")
            arguments += [before]
        }
        arguments += [query.limit]
        let sql = """
            \(Self.chatSelect.replacingOccurrences(of: "SELECT ", with: "SELECT mo.title AS module_title, ", options: .anchored))
            LEFT JOIN modules mo ON mo.id = c.module_id
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY c.seq DESC LIMIT ?
            """
        let finalArguments = arguments
        return try await reader.unsafeRead { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map {
                StoredChat(seq: $0["seq"], chat: try Self.chat($0), moduleTitle: $0["module_title"])
            }
        }
    }

    public func rename(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat? {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, db: db) {
                try db.cachedStatement(sql: "UPDATE chats SET title = ?, updated_at = ? WHERE id = ? AND user_id = ?").execute(arguments: [title, Timestamp.text(updatedAt), id, userID])
            }
            guard db.changesCount > 0 else { return nil }
            try writes.record(event, in: db)
            return try Self.chat(id: id, userID: userID, db: db)
        }
    }

    public func delete(id: String, userID: String, event: ChatsEvents.ChatDeleted) async throws -> Bool {
        // The messages go with the chat (ON DELETE CASCADE).
        let writes = self.writes
        return try await writes.write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM chats WHERE id = ? AND user_id = ?"), arguments: [id, userID]) != nil else {
                return false
            }
            // Before the row goes, so that the event is filed under the chat's module.
            try writes.record(event, in: db)
            try db.cachedStatement(sql: "DELETE FROM chats WHERE id = ? AND user_id = ?").execute(arguments: [id, userID])
            return true
        }
    }

    // MARK: Messages

    public func message(id: String, userID: String) async throws -> Message? {
        try await reader.unsafeRead { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE id = ? AND user_id = ?"), arguments: [id, userID]).map(Self.message)
        }
    }

    public func activeBranch(chatID: String, userID: String, afterDepth: Int, limit: Int) async throws -> [Message]? {
        // A range of the stored branch (0013), so a page costs a page however long the branch. One
        // statement: the chat's row comes back alone (its message columns NULL) when it has no
        // message after `afterDepth`.
        try await reader.unsafeRead { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                    SELECT \(Self.messageColumns("m")) FROM chats c
                    LEFT JOIN chat_paths p ON p.chat_seq = c.seq AND p.depth > ?
                    LEFT JOIN messages m ON m.seq = p.message_seq
                    WHERE c.id = ? AND c.user_id = ? ORDER BY p.depth LIMIT ?
                    """),
                arguments: [afterDepth, chatID, userID, limit])
            guard let first = rows.first else { return nil }
            if first["id"] as String? == nil { return [] }
            return try rows.map(Self.message)
        }
    }

    public func path(to messageID: String, userID: String) async throws -> [Message]? {
        try await reader.unsafeRead { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                    WITH RECURSIVE path(id, parent_id) AS (
                        SELECT id, parent_id FROM messages WHERE id = ? AND user_id = ?
                        UNION ALL
                        SELECT m.id, m.parent_id FROM messages m JOIN path p ON m.id = p.parent_id
                    )
                    SELECT \(Self.messageColumns("m")) FROM path JOIN messages m ON m.id = path.id ORDER BY m.depth
                    """),
                arguments: [messageID, userID])
            return rows.isEmpty ? nil : try rows.map(Self.message)
        }
    }

    public func allMessages(chatID: String, userID: String) async throws -> [Message]? {
        try await reader.read { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM chats WHERE id = ? AND user_id = ?"), arguments: [chatID, userID]) != nil else {
                return nil
            }
            return try Row.fetchAll(db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE chat_id = ? ORDER BY depth, seq"), arguments: [chatID])
                .map(Self.message)
        }
    }

    public func append(_ message: NewMessage, userID: String, event: @escaping @Sendable (Message) -> ChatsEvents.MessageCreated) async throws -> Message {
        // The hottest write: raw statements (RawStatement); every check comes before the writes
        // (the quota's UPDATE changes nothing when it refuses), so the job needs no savepoint of
        // its own (GroupCommitWriter.Isolation).
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write(isolation: .checksBeforeWrites) { db in
            let appended = try Self.insertMessage(message, userID: userID, ledger: ledger, writes: writes, db: db)
            try writes.record([event(appended.message)], chatModuleID: appended.chatModuleID, in: db)
            return appended.message
        }
    }

    /// Inserts `message` where its placement says and makes it the chat's active leaf, in the
    /// caller's write job (`append`, and the agent's store, which stores a message with its run).
    /// Every check comes before the writes; the first write counts the message's bytes and is the
    /// quota check (`enforceQuota`: false counts them without a check, `StorageLedger.add`).
    ///
    /// Returns the message and its chat's module (for the message's event).
    ///
    /// - Throws: `ChatsError.notFound` for a chat, or a placement message, that is not the user's;
    ///   `QuotaExceededError`.
    static func insertMessage(
        _ message: NewMessage, userID: String, ledger: StorageLedger, enforceQuota: Bool = true, writes: GroupCommitWriter, db: Database
    ) throws -> (message: Message, chatModuleID: String?) {
        // The chat (ownership, module) and its active leaf with that leaf's depth, in one statement.
        let chat = try writes.statement(
            "SELECT c.active_message_id, m.depth, c.module_id, c.seq FROM chats c LEFT JOIN messages m ON m.id = c.active_message_id WHERE c.id = ? AND c.user_id = ?",
            in: db)
        guard let (activeLeaf, leafDepth, chatModuleID, chatSeq) = try chat.firstRow([message.chatID, userID], { ($0.text(0), $0.integer(1), $0.text(2), $0.integer(3)) }) else {
            throw ChatsError.notFound(kind: "chat", id: message.chatID)
        }

        let parentID: String?
        var depth = 1
        switch message.placement {
        case .afterActiveLeaf:
            parentID = activeLeaf
            if activeLeaf != nil { depth = Int(leafDepth) + 1 }
        case .after(let id), .siblingOf(let id):
            if case .siblingOf = message.placement {
                let sibling = try writes.statement("SELECT parent_id FROM messages WHERE id = ? AND chat_id = ?", in: db)
                guard let siblingParent = try sibling.firstRow([id, message.chatID], { $0.text(0) }) else {
                    throw ChatsError.notFound(kind: "message", id: id)
                }
                parentID = siblingParent
            } else {
                parentID = id
            }
            if let parentID {
                let parent = try writes.statement("SELECT depth FROM messages WHERE id = ? AND chat_id = ?", in: db)
                guard let parentDepth = try parent.firstRow([parentID, message.chatID], { $0.integer(0) }) else {
                    throw ChatsError.notFound(kind: "message", id: parentID)
                }
                depth = Int(parentDepth) + 1
            }
        }
        try ledger.add(Int64(message.content.utf8.count), userID: userID, enforce: enforceQuota, writes: writes, db: db)
        let created = Timestamp.text(message.createdAt)
        try writes.statement(
            "INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", in: db
        ).run([message.id, message.chatID, userID, parentID, message.role.rawValue, message.content, depth, created])
        let messageSeq = db.lastInsertedRowID
        try writes.statement("UPDATE chats SET active_message_id = ?, updated_at = ? WHERE id = ?", in: db)
            .run([message.id, created, message.chatID])
        // The stored branch (0013): after the leaf, one more row; elsewhere, the rows from the new
        // depth on go, and the new parent's line replaces the old one up to where they meet.
        if message.placement != .afterActiveLeaf {
            try writes.statement("DELETE FROM chat_paths WHERE chat_seq = ? AND depth >= ?", in: db).run([chatSeq, depth])
            if let parentID { try writes.statement(Self.fillPath, in: db).run([parentID, chatSeq]) }
        }
        try writes.statement("INSERT OR REPLACE INTO chat_paths (chat_seq, depth, message_seq) VALUES (?, ?, ?)", in: db)
            .run([chatSeq, depth, messageSeq])
        let inserted = Message(
            id: message.id, chatId: message.chatID, parentId: parentID, role: message.role, content: message.content, depth: depth,
            createdAt: message.createdAt)
        return (inserted, chatModuleID)
    }

    public func selectBranch(messageID: String, userID: String, updatedAt: Date) async throws -> Chat? {
        // A constant number of statements however long the branch: the leaf in one walk down, then
        // the stored branch rewritten only where it changes (one walk up from the new leaf, which
        // stops where it meets the old branch).
        let writes = self.writes
        return try await writes.write { db in
            guard let (chatID, chatSeq) = try writes.statement("SELECT m.chat_id, c.seq FROM messages m JOIN chats c ON c.id = m.chat_id WHERE m.id = ? AND m.user_id = ?", in: db)
                .firstRow([messageID, userID], { ($0.text(0)!, $0.integer(1)) })
            else { return nil }
            // Down from the message, by the newest child at each level. `max` makes SQLite keep one
            // row, the deepest (the walk's queue holds one row at a time): memory stays constant.
            let leaf = try writes.statement(
                """
                WITH RECURSIVE down(id, depth) AS (
                    SELECT id, depth FROM messages WHERE id = ?
                    UNION ALL
                    SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.seq DESC LIMIT 1), down.depth + 1 FROM down WHERE down.id IS NOT NULL
                )
                SELECT id, max(depth) FROM down WHERE id IS NOT NULL
                """, in: db
            ).firstRow([messageID], { ($0.text(0)!, $0.integer(1)) })!
            try writes.statement("DELETE FROM chat_paths WHERE chat_seq = ? AND depth > ?", in: db).run([chatSeq, leaf.1])
            try writes.statement(Self.fillPath, in: db).run([leaf.0, chatSeq])
            try db.cachedStatement(sql: "UPDATE chats SET active_message_id = ?, updated_at = ? WHERE seq = ?").execute(arguments: [leaf.0, Timestamp.text(updatedAt), chatSeq])
            return try Self.chat(id: chatID, userID: userID, db: db)
        }
    }

    /// Makes the stored branch of chat `?2` run through message `?1`: writes the rows of `?1` and
    /// its ancestors, up to the first one already stored at its depth (where the two lines meet).
    /// Rows deeper than `?1` are the caller's to remove.
    static let fillPath = """
        WITH RECURSIVE up(seq, parent_id, depth, stored) AS (
            SELECT seq, parent_id, depth, EXISTS (SELECT 1 FROM chat_paths WHERE chat_seq = ?2 AND depth = m.depth AND message_seq = m.seq)
            FROM messages m WHERE id = ?1
            UNION ALL
            SELECT m.seq, m.parent_id, m.depth, EXISTS (SELECT 1 FROM chat_paths WHERE chat_seq = ?2 AND depth = m.depth AND message_seq = m.seq)
            FROM up JOIN messages m ON m.id = up.parent_id WHERE NOT up.stored
        )
        INSERT OR REPLACE INTO chat_paths (chat_seq, depth, message_seq) SELECT ?2, depth, seq FROM up WHERE NOT stored
        """

    public func insertFork(_ chat: NewChat, messages: [Message], userID: String, events: [any DomainEvent]) async throws -> Chat {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, db: db) { try Self.insertChat(chat, userID: userID, writes: writes, db: db) }
            // Messages are counted by the store, not by a trigger (0012).
            try ledger.add(messages.reduce(0) { $0 + Int64($1.content.utf8.count) }, userID: userID, writes: writes, db: db)
            let insert = try db.cachedStatement(
                sql: "INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            for message in messages {
                try insert.execute(arguments: [
                    message.id, chat.id, userID, message.parentId, message.role.rawValue, message.content, message.depth, Timestamp.text(message.createdAt),
                ])
            }
            if let last = messages.last {
                try db.cachedStatement(sql: "UPDATE chats SET active_message_id = ? WHERE id = ?").execute(arguments: [last.id, chat.id])
                // The copies are one line: all of them are the stored branch.
                try db.cachedStatement(sql: """
                        INSERT INTO chat_paths (chat_seq, depth, message_seq)
                        SELECT c.seq, m.depth, m.seq FROM chats c JOIN messages m ON m.chat_id = c.id WHERE c.id = ?
                        """).execute(arguments: [chat.id])
            }
            try writes.record(events, in: db)
            return try Self.chat(id: chat.id, userID: userID, db: db)!
        }
    }

    // MARK: Rows

    static func insertChat(_ chat: NewChat, userID: String, writes: GroupCommitWriter, db: Database) throws {
        if let moduleID = chat.moduleID,
            try writes.statement("SELECT 1 FROM modules WHERE id = ? AND user_id = ?", in: db).firstRow([moduleID, userID], { _ in () }) == nil
        {
            throw ChatsError.notFound(kind: "module", id: moduleID)
        }
        let created = Timestamp.text(chat.createdAt)
        try writes.statement("INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", in: db)
            .run([chat.id, userID, chat.moduleID, chat.title, created, created])
    }

    /// A chat with its active leaf's depth (the branch's length) and start.
    private static let chatSelect = """
        SELECT c.seq, c.id, c.module_id, c.title, c.active_message_id, c.created_at, c.updated_at,
            m.role AS last_role, substr(m.content, 1, \(ChatsService.previewLength)) AS last_text, m.depth AS last_depth,
            m.created_at AS last_created_at
        FROM chats c LEFT JOIN messages m ON m.id = c.active_message_id
        """

    private static func chat(id: String, userID: String, db: Database) throws -> Chat? {
        try Row.fetchOne(db.cachedStatement(sql: "\(chatSelect) WHERE c.id = ? AND c.user_id = ?"), arguments: [id, userID]).map(chat)
    }

    private static func chat(_ row: Row) throws -> Chat {
        var preview: MessagePreview?
        if let id: String = row["active_message_id"], let roleText: String = row["last_role"], let created: String = row["last_created_at"] {
            preview = MessagePreview(id: id, role: try Self.role(roleText), text: row["last_text"], createdAt: try Timestamp.date(created))
        }
        return Chat(
            id: row["id"], moduleId: row["module_id"], title: row["title"], activeMessageId: row["active_message_id"],
            messageCount: row["last_depth"] ?? 0, lastMessage: preview,
            createdAt: try Timestamp.date(row["created_at"]), updatedAt: try Timestamp.date(row["updated_at"]))
    }

    private static let messageColumns = messageColumns(nil)

    static func messageColumns(_ table: String?) -> String {
        let prefix = table.map { "\($0)." } ?? ""
        return ["id", "chat_id", "parent_id", "role", "content", "depth", "created_at"].map { prefix + $0 }.joined(separator: ", ")
    }

    static func message(_ row: Row) throws -> Message {
        Message(
            id: row["id"], chatId: row["chat_id"], parentId: row["parent_id"], role: try role(row["role"]), content: row["content"],
            depth: row["depth"], createdAt: try Timestamp.date(row["created_at"]))
    }

    private static func role(_ text: String) throws -> MessageRole {
        guard let role = MessageRole(rawValue: text) else { throw DatabaseError(message: "messages.role holds \(text)") }
        return role
    }
}
