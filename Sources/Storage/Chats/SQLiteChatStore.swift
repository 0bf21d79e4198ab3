import Foundation
import GRDB
import Services

/// The chats domain's store on SQLite: tables `chats` and `messages` (0004), and each chat's active
/// branch as segments of chains (`chat_segments`, `chain_forks`, 0014).
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
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                try Self.insertChat(chat, userID: userID, writes: writes, db: db)
            }
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
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                try db.cachedStatement(sql: "UPDATE chats SET title = ?, updated_at = ?, title_set_by_user = 1 WHERE id = ? AND user_id = ?")
                    .execute(arguments: [title, Timestamp.text(updatedAt), id, userID])
            }
            guard db.changesCount > 0 else { return nil }
            try writes.record(event, in: db)
            return try Self.chat(id: id, userID: userID, db: db)
        }
    }

    public func retitle(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat? {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                // The condition and the change in one statement: a user's rename is never overwritten.
                try db.cachedStatement(sql: "UPDATE chats SET title = ?, updated_at = ? WHERE id = ? AND user_id = ? AND title_set_by_user = 0")
                    .execute(arguments: [title, Timestamp.text(updatedAt), id, userID])
            }
            guard db.changesCount > 0 else { return nil }
            try writes.record(event, in: db)
            return try Self.chat(id: id, userID: userID, db: db)
        }
    }

    public func titleSetByUser(chatID: String, userID: String) async throws -> Bool? {
        try await reader.unsafeRead { db in
            try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT title_set_by_user FROM chats WHERE id = ? AND user_id = ?"), arguments: [chatID, userID])
        }
    }

    public func delete(id: String, userID: String, event: ChatsEvents.ChatDeleted) async throws -> Bool {
        // The messages go with the chat (ON DELETE CASCADE).
        let writes = self.writes
        return try await writes.write { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM chats WHERE id = ? AND user_id = ?"), arguments: [id, userID]) != nil
            else {
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
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE id = ? AND user_id = ?"), arguments: [id, userID]
            ).map(Self.message).flatMap { try SQLiteAttachmentStore.fill($0, db: db) }
        }
    }

    public func activeBranch(chatID: String, userID: String, afterDepth: Int, limit: Int) async throws -> [Message]? {
        // The segments (0014) that overlap depths (afterDepth, upTo], each joined with its chain's
        // messages in that range: one statement, a page's work however long the branch (one lower
        // and one upper bound on depth, so that the index range starts at the page). The chat's
        // row comes back alone (its message columns NULL) when it has no message after `afterDepth`.
        let upTo = afterDepth.addingReportingOverflow(max(limit, 0)).overflow ? Int.max : afterDepth + max(limit, 0)
        return try await reader.unsafeRead { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT \(Self.messageColumns("m")) FROM chats c
                        LEFT JOIN chat_segments s ON s.chat_seq = c.seq AND s.start_depth <= ?2
                            AND s.start_depth >= coalesce((SELECT max(f.start_depth) FROM chat_segments f WHERE f.chat_seq = c.seq
                                AND f.start_depth <= ?1 + 1), 0)
                        LEFT JOIN messages m ON m.chain_seq = s.chain_seq AND m.depth > max(?1, s.start_depth - 1)
                            AND m.depth <= min(?2, coalesce((SELECT min(n.start_depth) - 1 FROM chat_segments n
                                WHERE n.chat_seq = c.seq AND n.start_depth > s.start_depth), ?2))
                        WHERE c.id = ?3 AND c.user_id = ?4 ORDER BY s.start_depth, m.depth
                        """),
                arguments: [afterDepth, upTo, chatID, userID])
            guard !rows.isEmpty else { return nil }
            var messages = try rows.compactMap { row in row["id"] as String? == nil ? nil : try Self.message(row) }
            try SQLiteAttachmentStore.fill(&messages, db: db)
            return messages
        }
    }

    public func path(to messageID: String, userID: String) async throws -> [Message]? {
        try await reader.unsafeRead { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        WITH RECURSIVE path(id, parent_id) AS (
                            SELECT id, parent_id FROM messages WHERE id = ? AND user_id = ?
                            UNION ALL
                            SELECT m.id, m.parent_id FROM messages m JOIN path p ON m.id = p.parent_id
                        )
                        SELECT \(Self.messageColumns("m")) FROM path JOIN messages m ON m.id = path.id ORDER BY m.depth
                        """),
                arguments: [messageID, userID])
            guard !rows.isEmpty else { return nil }
            var messages = try rows.map(Self.message)
            try SQLiteAttachmentStore.fill(&messages, db: db)
            return messages
        }
    }

    public func allMessages(chatID: String, userID: String) async throws -> [Message]? {
        try await reader.read { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM chats WHERE id = ? AND user_id = ?"), arguments: [chatID, userID]) != nil
            else {
                return nil
            }
            var messages = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT \(Self.messageColumns) FROM messages WHERE chat_id = ? ORDER BY depth, seq"), arguments: [chatID]
            )
            .map(Self.message)
            try SQLiteAttachmentStore.fill(&messages, db: db)
            return messages
        }
    }

    public func append(_ message: NewMessage, userID: String, event: @escaping @Sendable (Message) -> ChatsEvents.MessageCreated) async throws
        -> Message
    {
        // The hottest write: raw statements (RawStatement); every check comes before the writes
        // (the quota's charge is written with the batch, and taken back when the job fails), so
        // the job needs no savepoint of its own (GroupCommitWriter.Isolation).
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
    /// Every check comes before the writes, the last of them the quota's: the message's bytes are
    /// charged to the batch, which writes them to `user_usage` before it commits (`enforceQuota`:
    /// false charges them without a check, `StorageLedger.add`).
    ///
    /// After the active leaf (the hot path) the message continues the leaf's chain (0014: the leaf
    /// has no child) and the stored branch's last segment grows by itself: the message's row and
    /// the chat's leaf are the only writes. Elsewhere, the branch is cut at the parent and the new
    /// chain added when the parent is on it, and rebuilt up from the message when not.
    ///
    /// `checkedAttachments`: the message's files, when the caller has read them already (before a
    /// write of its own).
    ///
    /// Returns the message and its chat's module (for the message's event).
    ///
    /// - Throws: `ChatsError.notFound` for a chat, or a placement message, that is not the user's;
    ///   `FilesError.notFound` for an attachment that is not one of the user's files;
    ///   `QuotaExceededError`.
    static func insertMessage(
        _ message: NewMessage, userID: String, ledger: StorageLedger, enforceQuota: Bool = true, checkedAttachments: [FileMetadata]? = nil,
        writes: GroupCommitWriter, db: Database
    ) throws -> (message: Message, chatModuleID: String?) {
        // The chat (ownership, module) and its active leaf with that leaf's depth and chain, and the
        // user's stored bytes for the quota's check (nothing is written before it), in one statement.
        let chat = try writes.statement(
            """
            SELECT c.active_message_id, m.depth, c.module_id, c.seq, m.chain_seq, u.bytes FROM chats c
            LEFT JOIN messages m ON m.id = c.active_message_id LEFT JOIN user_usage u ON u.user_id = c.user_id
            WHERE c.id = ? AND c.user_id = ?
            """,
            in: db)
        guard
            let (activeLeaf, leafDepth, chatModuleID, chatSeq, leafChain, storedBytes) = try chat.firstRow(
                [message.chatID, userID],
                {
                    ($0.text(0), $0.integer(1), $0.text(2), $0.integer(3), $0.integer(4), $0.integer(5))
                })
        else {
            throw ChatsError.notFound(kind: "chat", id: message.chatID)
        }

        let parentID: String?
        var depth = 1
        // The chain the message continues (its parent's, when it is the parent's first child);
        // nil: it starts one. With the parent's chain when it has one.
        var continuedChain: Int64?
        var parentChain: Int64?
        switch message.placement {
        case .afterActiveLeaf:
            parentID = activeLeaf
            if activeLeaf != nil {
                depth = Int(leafDepth) + 1
                continuedChain = leafChain
                parentChain = leafChain
            }
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
                let parent = try writes.statement(
                    "SELECT depth, chain_seq, EXISTS (SELECT 1 FROM messages c WHERE c.parent_id = p.id) FROM messages p WHERE id = ? AND chat_id = ?",
                    in: db)
                guard
                    let (parentDepth, chain, hasChild) = try parent.firstRow(
                        [parentID, message.chatID], { ($0.integer(0), $0.integer(1), $0.integer(2) != 0) })
                else {
                    throw ChatsError.notFound(kind: "message", id: parentID)
                }
                depth = Int(parentDepth) + 1
                parentChain = chain
                if !hasChild { continuedChain = chain }
            }
        }
        // The files, before any write (a message without any costs nothing here). Their bytes are
        // charged already, as files: attaching one adds nothing to the quota.
        let attached =
            message.attachments.isEmpty ? [] : try checkedAttachments ?? SQLiteAttachmentStore.ownedFiles(message.attachments, userID: userID, db: db)
        try ledger.add(Int64(message.content.utf8.count), userID: userID, enforce: enforceQuota, stored: storedBytes, writes: writes, db: db)
        let created = Timestamp.text(message.createdAt)
        try writes.statement(
            """
            INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at, chain_seq, attachment_count)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            in: db
        ).run([message.id, message.chatID, userID, parentID, message.role.rawValue, message.content, depth, created, continuedChain, attached.count])
        let messageSeq = db.lastInsertedRowID
        if !attached.isEmpty { try SQLiteAttachmentStore.attach(message.attachments, toMessage: message.id, db: db) }
        // A new chain counts in the chat's branch_version: a select planned before it is planned again.
        try writes.statement("UPDATE chats SET active_message_id = ?, updated_at = ?, branch_version = branch_version + ? WHERE seq = ?", in: db)
            .run([message.id, created, continuedChain == nil ? 1 : 0, chatSeq])
        if continuedChain == nil {
            try writes.statement("UPDATE messages SET chain_seq = seq WHERE seq = ?", in: db).run([messageSeq])
            if let parentChain {
                try writes.statement("INSERT INTO chain_forks (child_chain_seq, parent_chain_seq, parent_depth) VALUES (?, ?, ?)", in: db)
                    .run([messageSeq, parentChain, depth - 1])
            }
        }
        if message.placement != .afterActiveLeaf || activeLeaf == nil {
            let chain = continuedChain ?? messageSeq
            if let parentChain, try writes.statement(Self.chainAtDepth, in: db).firstRow([chatSeq, depth - 1], { $0.integer(0) }) == parentChain {
                // The parent is on the branch: the branch is cut after it, and goes on in the
                // message's chain (nothing to add when the message continues it).
                try writes.statement("DELETE FROM chat_segments WHERE chat_seq = ? AND start_depth >= ?", in: db).run([chatSeq, depth])
                if continuedChain == nil {
                    try writes.statement("INSERT INTO chat_segments (chat_seq, start_depth, chain_seq) VALUES (?, ?, ?)", in: db).run([
                        chatSeq, depth, chain,
                    ])
                }
            } else {
                // A root, or an answer off the branch: the path up from the message's chain, one
                // query per fork on it.
                try Self.storeBranch(Self.segments(upTo: chain, db: db), chatSeq: chatSeq, db: db)
            }
        }
        let inserted = Message(
            id: message.id, chatId: message.chatID, parentId: parentID, role: message.role, content: message.content, depth: depth,
            createdAt: message.createdAt, attachments: attached.isEmpty ? nil : attached)
        return (inserted, chatModuleID)
    }

    /// The chain of chat `?1`'s branch at depth `?2` (for a depth past the leaf: the last one).
    private static let chainAtDepth = "SELECT chain_seq FROM chat_segments WHERE chat_seq = ? AND start_depth <= ? ORDER BY start_depth DESC LIMIT 1"

    public func selectBranch(messageID: String, userID: String, updatedAt: Date) async throws -> Chat? {
        try await selectBranch(messageID: messageID, userID: userID, updatedAt: updatedAt, afterPlanning: nil)
    }

    /// `afterPlanning`: runs between each plan and its check in the writer (tests: a write there
    /// makes the plan stale).
    func selectBranch(
        messageID: String, userID: String, updatedAt: Date, afterPlanning: (@Sendable () async throws -> Void)?
    ) async throws -> Chat? {
        // The walk down to the new leaf and up to the root takes one query per fork on the branch,
        // which an adversarial tree (a fork at every level) makes one per message. So it is done on
        // a read snapshot, outside the single writer; the writer only checks that it still holds and
        // writes the segments (a handful of rows).
        //
        // Why checking branch_version is enough: the planned segments depend only on the tree (the
        // path up never changes; the walk down changes only when a child becomes the newest at a
        // message on it, i.e. when a chain is added, which bumps branch_version). A message added
        // since without a new chain continues a chain at its end, where the chain's message had no
        // child: within the planned walk that can only be the end of its last chain, the
        // open-ended segment, so the segments still hold and the leaf is read in the writer (the
        // end of the last chain). Selects do not bump it: each plans from the tree alone, and the
        // later one wins, as it would one after the other.
        let writes = self.writes
        let updated = Timestamp.text(updatedAt)
        for _ in 0..<Self.selectAttempts {
            guard let plan = try await reader.read({ db in try Self.planSelect(messageID: messageID, userID: userID, db: db) }) else { return nil }
            try await afterPlanning?()
            let outcome: SelectOutcome = try await writes.write { db in
                guard
                    let version = try Int64.fetchOne(
                        db.cachedStatement(sql: "SELECT branch_version FROM chats WHERE seq = ?"), arguments: [plan.chatSeq])
                else { return .selected(nil) }
                guard version == plan.version else { return .stale }
                try Self.storeBranch(plan.segments, chatSeq: plan.chatSeq, updatedAt: updated, db: db)
                return .selected(try Self.chat(id: plan.chatID, userID: userID, db: db))
            }
            if case .selected(let chat) = outcome { return chat }
        }
        // The chat's tree kept changing under the plans (its owner forking as fast as it selects):
        // walked inside the writer, at that owner's expense.
        return try await writes.write { db in
            guard let plan = try Self.planSelect(messageID: messageID, userID: userID, db: db) else { return nil }
            try Self.storeBranch(plan.segments, chatSeq: plan.chatSeq, updatedAt: updated, db: db)
            return try Self.chat(id: plan.chatID, userID: userID, db: db)
        }
    }

    /// How often a select is planned on a snapshot before it is done inside the writer.
    static let selectAttempts = 3

    private enum SelectOutcome: Sendable {
        case selected(Chat?)
        case stale
    }

    /// A part of a chat's active branch: from `start` (a depth) until the next segment's start, or
    /// to the chain's end for the last, the messages of chain `chain`.
    struct Segment: Equatable, Sendable {
        var start: Int
        var chain: Int64
    }

    /// What selecting `messageID` makes the active branch of its chat, from `db`'s snapshot.
    private struct SelectPlan: Sendable {
        var chatID: String
        var chatSeq: Int64
        var version: Int64
        var segments: [Segment]
    }

    private static func planSelect(messageID: String, userID: String, db: Database) throws -> SelectPlan? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT m.chain_seq, m.depth, m.chat_id, c.seq, c.branch_version FROM messages m JOIN chats c ON c.id = m.chat_id
                        WHERE m.id = ? AND m.user_id = ?
                        """),
                arguments: [messageID, userID])
        else { return nil }
        guard let chain: Int64 = row[0] else { throw DatabaseError(message: "message \(messageID) has no chain (0014)") }
        let segments = try segments(upTo: chain, db: db) + segments(downFrom: chain, depth: row[1], db: db)
        return SelectPlan(chatID: row[2], chatSeq: row[3], version: row[4], segments: segments)
    }

    /// The path from the root to (any message of) chain `chain`, as segments, root first: up from
    /// the chain, one query per fork.
    static func segments(upTo chain: Int64, db: Database) throws -> [Segment] {
        let fork = try db.cachedStatement(sql: "SELECT parent_chain_seq, parent_depth FROM chain_forks WHERE child_chain_seq = ?")
        var segments: [Segment] = []
        var chain = chain
        // Each parent chain is older (a smaller seq) than its child: the walk ends.
        while let row = try Row.fetchOne(fork, arguments: [chain]) {
            let parentDepth: Int = row[1]
            segments.append(Segment(start: parentDepth + 1, chain: chain))
            chain = row[0]
        }
        segments.append(Segment(start: 1, chain: chain))
        return segments.reversed()
    }

    /// Down from depth `depth` of chain `chain` by the newest child at each level: the segments it
    /// adds (none when it stays in the chain to its end). Within a chain the newest child is the
    /// chain's own next message until a fork point, where it is the newest fork (forks are
    /// younger than the chain's own child): one query per fork taken.
    static func segments(downFrom chain: Int64, depth: Int, db: Database) throws -> [Segment] {
        let nextFork = try db.cachedStatement(
            sql: """
                SELECT f.parent_depth, (SELECT max(g.child_chain_seq) FROM chain_forks g WHERE g.parent_chain_seq = f.parent_chain_seq
                    AND g.parent_depth = f.parent_depth)
                FROM chain_forks f WHERE f.parent_chain_seq = ? AND f.parent_depth >= ? ORDER BY f.parent_depth LIMIT 1
                """)
        var segments: [Segment] = []
        var chain = chain
        var depth = depth
        while let row = try Row.fetchOne(nextFork, arguments: [chain, depth]) {
            let forkDepth: Int = row[0]
            chain = row[1]
            depth = forkDepth + 1
            segments.append(Segment(start: depth, chain: chain))
        }
        return segments
    }

    /// Makes `segments` chat `chatSeq`'s stored branch and the end of the last one its active leaf
    /// (`updatedAt`: and its update time). Rows: the chat's segments, and the chat's.
    static func storeBranch(_ segments: [Segment], chatSeq: Int64, updatedAt: String? = nil, db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM chat_segments WHERE chat_seq = ?").execute(arguments: [chatSeq])
        let insert = try db.cachedStatement(sql: "INSERT INTO chat_segments (chat_seq, start_depth, chain_seq) VALUES (?, ?, ?)")
        for segment in segments {
            try insert.execute(arguments: [chatSeq, segment.start, segment.chain])
        }
        guard let last = segments.last else { return }
        try db.cachedStatement(
            sql: """
                UPDATE chats SET active_message_id = (SELECT id FROM messages WHERE chain_seq = ?1 ORDER BY depth DESC LIMIT 1),
                    updated_at = coalesce(?2, updated_at) WHERE seq = ?3
                """
        ).execute(arguments: [last.chain, updatedAt, chatSeq])
    }

    public func insertFork(_ chat: NewChat, messages: [Message], userID: String, events: [any DomainEvent]) async throws -> Chat {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write { db in
            try ledger.refusingGrowthPastQuota(userID: userID, writes: writes, db: db) {
                try Self.insertChat(chat, userID: userID, writes: writes, db: db)
            }
            // Messages are counted by the store, not by a trigger (0012).
            try ledger.add(messages.reduce(0) { $0 + Int64($1.content.utf8.count) }, userID: userID, writes: writes, db: db)
            let insert = try db.cachedStatement(
                sql:
                    "INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at, chain_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
            let countAttachments = try db.cachedStatement(sql: "UPDATE messages SET attachment_count = ? WHERE id = ?")
            // The copies are a path (each the child of the one before), so one chain; their chains
            // are worked out as an append's would be all the same.
            var placed: [String: (chain: Int64, depth: Int, hasChild: Bool)] = [:]
            var lastChain: Int64?
            for message in messages {
                var chain: Int64?
                var parentChain: Int64?
                if let parentID = message.parentId {
                    guard let parent = placed[parentID] else { throw ChatsError.notFound(kind: "message", id: parentID) }
                    parentChain = parent.chain
                    if !parent.hasChild { chain = parent.chain }
                    placed[parentID]?.hasChild = true
                }
                try insert.execute(arguments: [
                    message.id, chat.id, userID, message.parentId, message.role.rawValue, message.content, message.depth,
                    Timestamp.text(message.createdAt), chain,
                ])
                // The copy keeps the original's files (those still there).
                if let files = message.attachments, !files.isEmpty {
                    let count = try SQLiteAttachmentStore.attachRemaining(files.map(\.id), toMessage: message.id, userID: userID, db: db)
                    try countAttachments.execute(arguments: [count, message.id])
                }
                if chain == nil {
                    let seq = db.lastInsertedRowID
                    chain = seq
                    try db.cachedStatement(sql: "UPDATE messages SET chain_seq = seq WHERE seq = ?").execute(arguments: [seq])
                    if let parentChain {
                        try db.cachedStatement(sql: "INSERT INTO chain_forks (child_chain_seq, parent_chain_seq, parent_depth) VALUES (?, ?, ?)")
                            .execute(arguments: [seq, parentChain, message.depth - 1])
                    }
                }
                placed[message.id] = (chain!, message.depth, false)
                lastChain = chain
            }
            if let lastChain {
                let chatSeq = try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM chats WHERE id = ?"), arguments: [chat.id])!
                try Self.storeBranch(Self.segments(upTo: lastChain, db: db), chatSeq: chatSeq, db: db)
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
        try writes.statement(
            "INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at, title_set_by_user) VALUES (?, ?, ?, ?, ?, ?, ?)", in: db
        ).run([chat.id, userID, chat.moduleID, chat.title, created, created, chat.titleSetByUser ? 1 : 0])
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
        return ["id", "chat_id", "parent_id", "role", "content", "depth", "created_at", "attachment_count"].map { prefix + $0 }.joined(
            separator: ", ")
    }

    /// A row of `messageColumns`. A message appended with files has `attachments` `[]`, to be
    /// filled in by `SQLiteAttachmentStore.fill` (which every read of messages calls).
    static func message(_ row: Row) throws -> Message {
        let attachmentCount: Int = row["attachment_count"] ?? 0
        return Message(
            id: row["id"], chatId: row["chat_id"], parentId: row["parent_id"], role: try role(row["role"]), content: row["content"],
            depth: row["depth"], createdAt: try Timestamp.date(row["created_at"]), attachments: attachmentCount > 0 ? [] : nil)
    }

    private static func role(_ text: String) throws -> MessageRole {
        guard let role = MessageRole(rawValue: text) else { throw DatabaseError(message: "messages.role holds \(text)") }
        return role
    }
}
