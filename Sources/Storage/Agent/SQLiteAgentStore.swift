import Foundation
import GRDB
import Services

/// The agent domain's store on SQLite: table `agent_runs` (0010), beside the chats' tables, whose
/// messages it writes with the run (`SQLiteChatStore.insertMessage`): a run's start (chat, question,
/// run row, events) is one transaction, its end (answer, run row, events) another. Writes go through
/// the shared `GroupCommitWriter`, reads through the database's readers.
public struct SQLiteAgentStore: AgentStore {
    let reader: any DatabaseReader
    let writes: GroupCommitWriter
    private let ledger: StorageLedger

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, ledger: StorageLedger) {
        self.reader = writer
        self.writes = groupWriter
        self.ledger = ledger
    }

    /// On the path to the first token, so: raw statements, every check before the first write (no
    /// savepoint), and the question indexed for search by the next batch (`urgent`).
    public func start(_ start: AgentRunStart, userID: String) async throws -> Message? {
        let writes = self.writes
        let ledger = self.ledger
        return try await writes.write(isolation: .checksBeforeWrites, urgent: true) { db in
            // The quota before any write (no savepoint): the new chat's title and the question.
            let title = start.newChat.map { Int64($0.title.utf8.count) } ?? 0
            try ledger.check(adding: title + Int64(start.userMessage?.content.utf8.count ?? 0), userID: userID, writes: writes, db: db)
            // The question's files too, before the new chat is written: a throw after a write
            // would abort the whole batch (GroupCommitWriter.Isolation).
            var attached: [FileMetadata]?
            if let files = start.userMessage?.attachments, !files.isEmpty {
                attached = try SQLiteAttachmentStore.ownedFiles(files, userID: userID, db: db)
            }
            var events: [any DomainEvent] = []
            // The module of the run's chat, for the events.
            let chatModuleID: String?
            if let chat = start.newChat {
                try SQLiteChatStore.insertChat(chat, userID: userID, writes: writes, db: db)
                chatModuleID = chat.moduleID
                if let event = start.chatCreated { events.append(event) }
            } else {
                let chat = try writes.statement("SELECT module_id FROM chats WHERE id = ? AND user_id = ?", in: db)
                guard let moduleID = try chat.firstRow([start.run.chatId, userID], { $0.text(0) }) else {
                    throw ChatsError.notFound(kind: "chat", id: start.run.chatId)
                }
                chatModuleID = moduleID
            }
            var question: Message?
            if let message = start.userMessage {
                let inserted = try SQLiteChatStore.insertMessage(
                    message, userID: userID, ledger: ledger, checkedAttachments: attached, writes: writes, db: db)
                events.append(ChatsEvents.MessageCreated(userID: userID, message: inserted.message))
                question = inserted.message
            }
            let run = start.run
            try writes.statement(
                """
                INSERT INTO agent_runs (id, user_id, chat_id, user_message_id, status, provider, model, started_at, background, job_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, in: db
            ).run([
                run.id, userID, run.chatId, run.userMessageId, run.status.rawValue, run.provider, run.model, Timestamp.text(run.startedAt),
                run.jobId == nil ? 0 : 1, run.jobId,
            ])
            events.append(start.runStarted)
            // One statement for the start's events.
            try writes.record(events, chatModuleID: chatModuleID, in: db)
            return question
        }
    }

    public func finish(_ finish: AgentRunFinish, userID: String) async throws -> (run: AgentRun, answer: Message?, firstAnswer: Bool) {
        let writes = self.writes
        let ledger = self.ledger
        let steps = try Self.json(finish.steps)
        let searches = try Self.json(finish.searches)
        let result = try await writes.write { db -> Result in
            let run = finish.run
            guard
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM agent_runs WHERE id = ? AND user_id = ? AND status = 'running'"),
                    arguments: [run.id, userID]) != nil
            else { throw AgentError.notFound(kind: "run", id: run.id) }
            var answer: Message?
            var firstAnswer = false
            if let message = finish.answer {
                // Before the insert, in the same transaction: two answers finishing together cannot both be first.
                // First means no completed run in the chat before, and no answer in it other than those
                // of its runs that did not complete (a cancelled run's partial text, a failed run's): those
                // do not use up the title; an answer copied by a fork, or appended by hand, does.
                firstAnswer =
                    try Bool.fetchOne(
                        db.cachedStatement(sql: "SELECT 1 FROM agent_runs WHERE chat_id = ? AND status = 'completed' LIMIT 1"),
                        arguments: [run.chatId]) == nil
                    && Bool.fetchOne(
                        db.cachedStatement(
                            sql: """
                                SELECT 1 FROM messages WHERE chat_id = ? AND role = 'assistant' AND id NOT IN
                                    (SELECT assistant_message_id FROM agent_runs WHERE chat_id = ? AND assistant_message_id IS NOT NULL)
                                LIMIT 1
                                """), arguments: [run.chatId, run.chatId]) == nil
                // Counted, not refused: the run was allowed to start and its answer is paid for, so a
                // user passes the quota by at most the answers of the runs they have going.
                let inserted = try SQLiteChatStore.insertMessage(message, userID: userID, ledger: ledger, enforceQuota: false, writes: writes, db: db)
                try writes.record(
                    [ChatsEvents.MessageCreated(userID: userID, message: inserted.message)], chatModuleID: inserted.chatModuleID, in: db)
                answer = inserted.message
            }
            try db.cachedStatement(
                sql: """
                    UPDATE agent_runs SET assistant_message_id = ?, status = ?, model = ?, finish_reason = ?, prompt_tokens = ?,
                        completion_tokens = ?,
                        usage_estimated = ?, error_kind = ?, error_message = ?, first_token_at = ?, finished_at = ?, kept_messages = ?,
                        dropped_messages = ?, estimated_tokens = ?, searches = ?, steps = ?
                    WHERE id = ?
                    """
            ).execute(arguments: [
                answer?.id, run.status.rawValue, run.model, run.finishReason?.rawValue, run.usage?.promptTokens, run.usage?.completionTokens,
                run.usage?.estimated ?? false, run.error?.kind, run.error?.message, run.firstTokenAt.map(Timestamp.text),
                run.finishedAt.map(Timestamp.text), run.context?.keptMessages, run.context?.droppedMessages, run.context?.estimatedTokens,
                searches, steps, run.id,
            ])
            try writes.record(finish.event(answer), in: db)
            var stored = run
            stored.assistantMessageId = answer?.id
            return Result(run: stored, answer: answer, firstAnswer: firstAnswer)
        }
        return (result.run, result.answer, result.firstAnswer)
    }

    private struct Result: Sendable {
        var run: AgentRun
        var answer: Message?
        var firstAnswer: Bool
    }

    public func run(id: String, userID: String) async throws -> AgentRun? {
        try await reader.unsafeRead { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.columns) FROM agent_runs WHERE id = ? AND user_id = ?"), arguments: [id, userID])
                .map(Self.run)
        }
    }

    public func runs(_ query: AgentRunQuery) async throws -> [StoredAgentRun] {
        var conditions = ["user_id = ?"]
        var arguments: StatementArguments = [query.userID]
        if let chatID = query.chatID {
            conditions.append("chat_id = ?")
            arguments += [chatID]
        }
        if let before = query.beforeSeq {
            conditions.append("seq < ?")
            arguments += [before]
        }
        arguments += [query.limit]
        let sql = "SELECT seq, \(Self.columns) FROM agent_runs WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq DESC LIMIT ?"
        let finalArguments = arguments
        return try await reader.unsafeRead { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: finalArguments).map { StoredAgentRun(seq: $0["seq"], run: try Self.run($0)) }
        }
    }

    public func steps(answerIDs: [String], userID: String) async throws -> [String: [LLMMessage]] {
        guard !answerIDs.isEmpty else { return [:] }
        let placeholders = Array(repeating: "?", count: answerIDs.count).joined(separator: ", ")
        let sql =
            "SELECT assistant_message_id, steps FROM agent_runs WHERE user_id = ? AND steps != '[]' AND assistant_message_id IN (\(placeholders))"
        let arguments = StatementArguments([userID] + answerIDs)
        return try await reader.unsafeRead { db in
            var steps: [String: [LLMMessage]] = [:]
            for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
                steps[row[0]] = try JSONDecoder().decode([LLMMessage].self, from: Data((row[1] as String).utf8))
            }
            return steps
        }
    }

    public func generation(messageID: String, userID: String) async throws -> MessageGeneration? {
        try await reader.unsafeRead { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT \(Self.columns), steps FROM agent_runs WHERE assistant_message_id = ? AND user_id = ?"),
                    arguments: [messageID, userID])
            else { return nil }
            let run = try Self.run(row)
            let steps = try JSONDecoder().decode([LLMMessage].self, from: Data((row["steps"] as String).utf8))
            return MessageGeneration(
                runId: run.id, provider: run.provider, model: run.model, finishReason: run.finishReason, usage: run.usage, latencyMs: run.latencyMs,
                timeToFirstTokenMs: run.timeToFirstTokenMs, searches: try Self.searches(row), toolCalls: steps.flatMap(\.toolCalls))
        }
    }

    public func failInterruptedRuns(at date: Date) async throws -> Int {
        let writes = self.writes
        return try await writes.write { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT id, user_id, chat_id FROM agent_runs WHERE status = 'running' AND background = 0"))
            let update = try db.cachedStatement(
                sql: """
                    UPDATE agent_runs SET status = 'failed', error_kind = 'interrupted',
                        error_message = 'agentd stopped during the run', finished_at = ? WHERE id = ?
                    """)
            for row in rows {
                try update.execute(arguments: [Timestamp.text(date), row["id"] as String])
                try writes.record(
                    AgentEvents.RunFailed(userID: row["user_id"], runId: row["id"], chatId: row["chat_id"], errorKind: "interrupted"), in: db)
            }
            return rows.count
        }
    }

    public func beginAttempt(runID: String, userID: String, attempt: Int) async throws -> AgentRun? {
        try await writes.write { db in
            // `interrupted_partial` keeps the last attempt that had streamed something: an attempt stopped
            // before its first token leaves the earlier text in place.
            try db.cachedStatement(
                sql: """
                    UPDATE agent_runs SET attempt = ?, interrupted_partial = COALESCE(NULLIF(\(Self.livePartial), ''), interrupted_partial)
                    WHERE id = ? AND user_id = ? AND status = 'running' AND background = 1
                    """
            ).execute(arguments: [attempt, runID, userID])
            guard db.changesCount > 0 else { return nil }
            return try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.columns) FROM agent_runs WHERE id = ?"), arguments: [runID]).map(Self.run)
        }
    }

    public func runningBackgroundRunCount(userID: String) async throws -> Int {
        try await reader.unsafeRead { db in
            try Int.fetchOne(
                db.cachedStatement(sql: "SELECT COUNT(*) FROM agent_runs WHERE status = 'running' AND background = 1 AND user_id = ?"),
                arguments: [userID]) ?? 0
        }
    }

    public func runningBackgroundRuns() async throws -> [OwnedAgentRun] {
        try await reader.unsafeRead { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT user_id, \(Self.columns) FROM agent_runs WHERE status = 'running' AND background = 1 ORDER BY seq")
            ).map { OwnedAgentRun(userID: $0["user_id"], run: try Self.run($0)) }
        }
    }

    // MARK: Rows

    /// The text the running attempt has streamed so far, as stored while it runs (0016, every
    /// 250 ms and when an attempt stops: `agent.runs.watch`).
    private static let livePartial = "partial_text"

    private static let columns = """
        id, chat_id, user_message_id, assistant_message_id, status, provider, model, finish_reason, prompt_tokens, completion_tokens,
        usage_estimated, error_kind, error_message, started_at, first_token_at, finished_at, kept_messages, dropped_messages,
        estimated_tokens, searches, background, job_id, attempt, interrupted_partial
        """

    private static func run(_ row: Row) throws -> AgentRun {
        guard let status = AgentRunStatus(rawValue: row["status"]) else {
            throw DatabaseError(message: "agent_runs.status holds \(row["status"] as String)")
        }
        var usage: LLMUsage?
        if let prompt: Int = row["prompt_tokens"], let completion: Int = row["completion_tokens"] {
            usage = LLMUsage(promptTokens: prompt, completionTokens: completion, estimated: row["usage_estimated"])
        }
        var context: AgentContextReport?
        if let kept: Int = row["kept_messages"], let dropped: Int = row["dropped_messages"], let estimated: Int = row["estimated_tokens"] {
            context = AgentContextReport(keptMessages: kept, droppedMessages: dropped, estimatedTokens: estimated)
        }
        let error = (row["error_kind"] as String?).map { LLMErrorSummary(kind: $0, message: row["error_message"] ?? "") }
        return AgentRun(
            id: row["id"], chatId: row["chat_id"], userMessageId: row["user_message_id"], assistantMessageId: row["assistant_message_id"],
            status: status,
            provider: row["provider"], model: row["model"],
            finishReason: (row["finish_reason"] as String?).map { LLMFinishReason(rawValue: $0) ?? .other },
            usage: usage, error: error, context: context, searchCount: try searches(row).count, startedAt: try Timestamp.date(row["started_at"]),
            firstTokenAt: try (row["first_token_at"] as String?).map(Timestamp.date),
            finishedAt: try (row["finished_at"] as String?).map(Timestamp.date), jobId: row["job_id"],
            attempt: (row["background"] as Bool) ? row["attempt"] : nil, partial: row["interrupted_partial"])
    }

    private static func searches(_ row: Row) throws -> [WebSearchStep] {
        try JSONDecoder().decode([WebSearchStep].self, from: Data((row["searches"] as String).utf8))
    }

    private static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}
