import Foundation
import GRDB
import Logging
import Services
import Storage
import Testing

/// Each user's stored bytes (`user_usage`, 0012) through the stores' own writes: the count always
/// equals the bytes the tables hold, a write past the quota is refused whole, removals give bytes
/// back, and an existing database is counted by the migration.
@Suite("Storage ledger")
struct StorageLedgerTests {
    static let date = Date(timeIntervalSince1970: 1_800_000_000.25)

    /// The stores on one in-memory database with users usr_1 and usr_2, through their protocols.
    struct Stores {
        let database: AgentDatabase
        let modules: any ModuleStore
        let chats: any ChatStore
        let prompts: any PromptStore
        let agent: any AgentStore
        let auth: any AuthStore
        let writes: GroupCommitWriter

        init(quota: StorageQuota) async throws {
            database = try AgentDatabase.inMemory()
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            _ = try await database.migrate(logger: logger)
            writes = GroupCommitWriter.testing(database.writer)
            let ledger = StorageLedger(quota: quota)
            modules = SQLiteModuleStore(writer: database.writer, groupWriter: writes, ledger: ledger)
            chats = SQLiteChatStore(writer: database.writer, groupWriter: writes, ledger: ledger)
            prompts = SQLitePromptStore(writer: database.writer, groupWriter: writes, ledger: ledger)
            agent = SQLiteAgentStore(writer: database.writer, groupWriter: writes, ledger: ledger)
            auth = SQLiteAuthStore(writer: database.writer, groupWriter: writes, quota: quota)
            for id in ["usr_1", "usr_2"] {
                let user = User(id: id, username: id, hasPassword: false, createdAt: StorageLedgerTests.date)
                try await auth.insertUser(StoredUser(user: user, passwordHash: nil), event: AuthEvents.UserRegistered(user: user))
            }
        }

        func stored(_ userID: String) async throws -> Int64 {
            try await auth.storageUsage(userID: userID).storedBytes
        }

        /// The count, after checking it against the tables.
        func checkedStored(_ userID: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int64 {
            let stored = try await self.stored(userID)
            let recounted = try await database.writer.read { db in try StorageLedger.recount(userID: userID, db: db) }
            #expect(stored == recounted, "the count drifted from the tables", sourceLocation: sourceLocation)
            return stored
        }

        func createChat(_ id: String, title: String, userID: String = "usr_1") async throws {
            _ = try await chats.insert(
                NewChat(id: id, moduleID: nil, title: title, createdAt: date), userID: userID,
                event: ChatsEvents.ChatCreated(userID: userID, chatId: id, moduleId: nil, title: title))
        }

        func append(_ id: String, chat: String, _ content: String, userID: String = "usr_1") async throws -> Message {
            try await chats.append(
                NewMessage(id: id, chatID: chat, placement: .afterActiveLeaf, role: .user, content: content, createdAt: date), userID: userID,
                event: { ChatsEvents.MessageCreated(userID: userID, message: $0) })
        }

        var date: Date { StorageLedgerTests.date }
    }

    static func module(_ id: String, title: String, description: String = "", content: String) -> Module {
        Module(id: id, title: title, description: description, content: content, tags: ["t"], createdAt: date, updatedAt: date)
    }

    static func prompt(_ id: String, name: String, body: String) -> Prompt {
        Prompt(
            id: id, name: name, description: "d", version: 1, latestVersion: 1, body: body, variables: ["user"], builtIn: false,
            createdAt: date, updatedAt: date, versionCreatedAt: date)
    }

    @Test("every write of text counts its UTF-8 bytes, updates count the difference, deletes (cascades too) give them back")
    func counting() async throws {
        let stores = try await Stores(quota: .unlimited)
        #expect(try await stores.checkedStored("usr_1") == 0)

        // Modules: title, description, content (tags do not count).
        _ = try await stores.modules.insert(
            Self.module("mod_1", title: "Tïtle", description: "dé", content: "contenu"), userID: "usr_1",
            event: ModulesEvents.ModuleCreated(userID: "usr_1", module: Self.module("mod_1", title: "", content: "")))
        #expect(try await stores.checkedStored("usr_1") == 6 + 3 + 7)
        _ = try await stores.modules.update(
            id: "mod_1", userID: "usr_1", changes: ModuleChanges(content: "c", updatedAt: Self.date),
            event: ModulesEvents.ModuleUpdated(userID: "usr_1", moduleId: "mod_1", fields: ["content"]))
        #expect(try await stores.checkedStored("usr_1") == 6 + 3 + 1)

        // Chats and messages, a fork, a rename.
        try await stores.createChat("cht_1", title: "chat")
        let first = try await stores.append("msg_1", chat: "cht_1", "héllo")
        _ = try await stores.append("msg_2", chat: "cht_1", "world")
        _ = try await stores.chats.rename(
            id: "cht_1", userID: "usr_1", title: "renamed", updatedAt: Self.date,
            event: ChatsEvents.ChatRenamed(userID: "usr_1", chatId: "cht_1", title: "renamed"))
        _ = try await stores.chats.insertFork(
            NewChat(id: "cht_2", moduleID: nil, title: "fork", createdAt: Self.date),
            messages: [
                Message(
                    id: "msg_3", chatId: "cht_2", parentId: nil, role: .user, content: first.content, depth: 1, createdAt: Self.date)
            ],
            userID: "usr_1", events: [])
        #expect(try await stores.checkedStored("usr_1") == 10 + 7 + 6 + 5 + 4 + 6)

        // Prompts and their versions.
        _ = try await stores.prompts.insert(
            Self.prompt("prm_1", name: "p", body: "Hi {{user}}"), userID: "usr_1",
            event: PromptsEvents.PromptCreated(userID: "usr_1", prompt: Self.prompt("prm_1", name: "p", body: "")))
        _ = try await stores.prompts.update(
            id: "prm_1", userID: "usr_1",
            edit: { _ in PromptChanges(content: PromptContent(body: "Yo {{user}}!", variables: ["user"]), updatedAt: Self.date) },
            event: { PromptsEvents.PromptUpdated(userID: "usr_1", prompt: $0) })
        let withPrompt = try await stores.checkedStored("usr_1")
        #expect(withPrompt == 38 + 1 + 1 + 11 + 8 + 12 + 8)

        // An agent run: its question counts at the start, its answer and error text at the end.
        let run = AgentRun(id: "run_1", chatId: "cht_1", userMessageId: "msg_4", status: .running, provider: "fake", model: nil, startedAt: Self.date)
        _ = try await stores.agent.start(
            AgentRunStart(
                newChat: nil, chatCreated: nil,
                userMessage: NewMessage(
                    id: "msg_4", chatID: "cht_1", placement: .afterActiveLeaf, role: .user, content: "question", createdAt: Self.date),
                run: run,
                runStarted: AgentEvents.RunStarted(
                    userID: "usr_1", runId: "run_1", chatId: "cht_1", userMessageId: "msg_4", provider: "fake", model: nil)),
            userID: "usr_1")
        var failed = run
        failed.status = .failed
        failed.error = LLMErrorSummary(kind: "stream", message: "broken")
        _ = try await stores.agent.finish(
            AgentRunFinish(
                run: failed,
                answer: NewMessage(
                    id: "msg_5", chatID: "cht_1", placement: .after(messageID: "msg_4"), role: .assistant, content: "partial", createdAt: Self.date),
                steps: [], searches: [],
                event: { _ in
                    AgentEvents.RunFailed(
                        userID: "usr_1", runId: "run_1", chatId: "cht_1",
                        errorKind: "stream")
                }),
            userID: "usr_1")
        #expect(try await stores.checkedStored("usr_1") == withPrompt + 8 + 7 + 6)

        // The other user is untouched.
        #expect(try await stores.checkedStored("usr_2") == 0)

        // Deletes give everything back: the chat with its messages and run, the fork, the prompt
        // with its versions, the module.
        _ = try await stores.chats.delete(id: "cht_1", userID: "usr_1", event: ChatsEvents.ChatDeleted(userID: "usr_1", chatId: "cht_1"))
        _ = try await stores.chats.delete(id: "cht_2", userID: "usr_1", event: ChatsEvents.ChatDeleted(userID: "usr_1", chatId: "cht_2"))
        _ = try await stores.prompts.delete(id: "prm_1", userID: "usr_1", event: PromptsEvents.PromptDeleted(userID: "usr_1", promptId: "prm_1"))
        #expect(try await stores.checkedStored("usr_1") == 10)
        _ = try await stores.modules.delete(id: "mod_1", userID: "usr_1", event: ModulesEvents.ModuleDeleted(userID: "usr_1", moduleId: "mod_1"))
        #expect(try await stores.checkedStored("usr_1") == 0)
    }

    @Test("a write past the quota throws QuotaExceededError {limit, actual} and stores nothing; shrinking passes over quota")
    func refusal() async throws {
        let stores = try await Stores(quota: StorageQuota(limitBytes: 100))
        try await stores.createChat("cht_1", title: "c")
        _ = try await stores.append("msg_1", chat: "cht_1", String(repeating: "a", count: 90))
        await #expect(throws: QuotaExceededError(limit: 100, actual: 1 + 90 + 10)) {
            try await stores.append("msg_2", chat: "cht_1", String(repeating: "b", count: 10))
        }
        #expect(try await stores.chats.message(id: "msg_2", userID: "usr_1") == nil)
        // Exactly at the quota is allowed.
        _ = try await stores.append("msg_3", chat: "cht_1", String(repeating: "c", count: 9))
        #expect(try await stores.checkedStored("usr_1") == 100)

        // Every kind of write that adds text is refused, and leaves nothing behind.
        await #expect(throws: QuotaExceededError(limit: 100, actual: 101)) {
            try await stores.createChat("cht_2", title: "x")
        }
        #expect(try await stores.chats.chat(id: "cht_2", userID: "usr_1") == nil)
        await #expect(throws: QuotaExceededError(limit: 100, actual: 102)) {
            _ = try await stores.chats.rename(
                id: "cht_1", userID: "usr_1", title: "ccc", updatedAt: Self.date,
                event: ChatsEvents.ChatRenamed(userID: "usr_1", chatId: "cht_1", title: "ccc"))
        }
        await #expect(throws: QuotaExceededError.self) {
            _ = try await stores.modules.insert(
                Self.module("mod_1", title: "m", content: ""), userID: "usr_1",
                event: ModulesEvents.ModuleCreated(userID: "usr_1", module: Self.module("mod_1", title: "m", content: "")))
        }
        #expect(try await stores.modules.module(id: "mod_1", userID: "usr_1") == nil)
        await #expect(throws: QuotaExceededError.self) {
            _ = try await stores.prompts.insert(
                Self.prompt("prm_1", name: "p", body: "b"), userID: "usr_1",
                event: PromptsEvents.PromptCreated(userID: "usr_1", prompt: Self.prompt("prm_1", name: "p", body: "b")))
        }
        await #expect(throws: QuotaExceededError.self) {
            _ = try await stores.agent.start(
                AgentRunStart(
                    newChat: NewChat(id: "cht_3", moduleID: nil, title: "t", createdAt: Self.date), chatCreated: nil,
                    userMessage: NewMessage(
                        id: "msg_9", chatID: "cht_3", placement: .afterActiveLeaf, role: .user, content: "q", createdAt: Self.date),
                    run: AgentRun(
                        id: "run_1", chatId: "cht_3", userMessageId: "msg_9", status: .running, provider: "fake", model: nil, startedAt: Self.date),
                    runStarted: AgentEvents.RunStarted(
                        userID: "usr_1", runId: "run_1", chatId: "cht_3", userMessageId: "msg_9", provider: "fake", model: nil)),
                userID: "usr_1")
        }
        #expect(try await stores.chats.chat(id: "cht_3", userID: "usr_1") == nil)
        #expect(try await stores.checkedStored("usr_1") == 100)

        // A smaller title passes while at the quota; the other user has their own room.
        _ = try await stores.chats.rename(
            id: "cht_1", userID: "usr_1", title: "", updatedAt: Self.date, event: ChatsEvents.ChatRenamed(userID: "usr_1", chatId: "cht_1", title: "")
        )
        #expect(try await stores.checkedStored("usr_1") == 99)
        try await stores.createChat("cht_4", title: "c", userID: "usr_2")
        _ = try await stores.append("msg_10", chat: "cht_4", String(repeating: "d", count: 99), userID: "usr_2")
        #expect(try await stores.checkedStored("usr_2") == 100)
    }

    @Test("appends in one group-commit batch: the one past the quota fails alone, the others commit, none overshoots")
    func batch() async throws {
        let stores = try await Stores(quota: StorageQuota(limitBytes: 1_000))
        try await stores.createChat("cht_1", title: "a")
        try await stores.createChat("cht_2", title: "b", userID: "usr_2")
        // 40 appends of 100 bytes at once per user: 9 fit (1 + 9 × 100 ≤ 1,000), whatever the batching.
        let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
            for index in 0..<40 {
                for (user, chat) in [("usr_1", "cht_1"), ("usr_2", "cht_2")] {
                    group.addTask {
                        do {
                            _ = try await stores.append("msg_\(user)_\(index)", chat: chat, String(repeating: "x", count: 100), userID: user)
                            return (user, true)
                        } catch {
                            #expect(error is QuotaExceededError, "\(error)")
                            return (user, false)
                        }
                    }
                }
            }
            var outcomes: [(String, Bool)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        for user in ["usr_1", "usr_2"] {
            #expect(outcomes.filter { $0.0 == user && $0.1 }.count == 9)
            #expect(try await stores.checkedStored(user) == 901)
        }
    }

    @Test(
        "one batch charges each user once, exactly: appends past the quota are refused with what the batch charged before them; an append or a fork that fails after its charge takes it back"
    )
    func chargesOfOneBatch() async throws {
        let stores = try await Stores(quota: StorageQuota(limitBytes: 1_000))
        try await stores.createChat("cht_1", title: "a")
        try await stores.createChat("cht_2", title: "b", userID: "usr_2")
        let fork = NewChat(id: "cht_f", moduleID: nil, title: "", createdAt: Self.date)
        // The jobs of one batch, in this order; each one's outcome (nil: stored).
        let jobs: [@Sendable () async throws -> Void] = [
            { _ = try await stores.append("msg_1", chat: "cht_1", String(repeating: "a", count: 300)) },
            { _ = try await stores.append("msg_2", chat: "cht_2", String(repeating: "b", count: 500), userID: "usr_2") },
            { _ = try await stores.append("msg_3", chat: "cht_1", String(repeating: "c", count: 400)) },
            // Passes the quota (801) and is charged, then its insert fails (msg_1 exists): alone, and
            // its charge with it, or the next would be refused at 1,101.
            { _ = try await stores.append("msg_1", chat: "cht_1", String(repeating: "d", count: 100)) },
            { _ = try await stores.append("msg_5", chat: "cht_1", String(repeating: "e", count: 300)) },
            // Exactly at the quota.
            { _ = try await stores.append("msg_6", chat: "cht_1", String(repeating: "f", count: 299)) },
            { _ = try await stores.append("msg_7", chat: "cht_1", "g") },
            // Charged 15 bytes, then refused in its savepoint (its second message's parent is unknown).
            {
                _ = try await stores.chats.insertFork(
                    fork,
                    messages: [
                        Message(id: "msg_f1", chatId: "cht_f", parentId: nil, role: .user, content: "0123456789", depth: 1, createdAt: Self.date),
                        Message(id: "msg_f2", chatId: "cht_f", parentId: "msg_none", role: .user, content: "01234", depth: 2, createdAt: Self.date),
                    ], userID: "usr_2", events: [])
            },
            { _ = try await stores.append("msg_9", chat: "cht_2", String(repeating: "h", count: 9), userID: "usr_2") },
        ]
        let meter = try await StatementMeter(stores.database.writer)
        let measured = try await meter.measureWrites {
            let gate = GroupCommitWriterTests.WriterGate(stores.database.writer)
            return try await withThrowingTaskGroup(of: (Int, (any Error)?).self) { group in
                for (index, job) in jobs.enumerated() {
                    group.addTask {
                        do {
                            try await job()
                            return (index, nil)
                        } catch {
                            return (index, error)
                        }
                    }
                    // Queued in this order, all behind the gate: one batch.
                    try await GroupCommitWriterTests.waitUntil { stores.writes.queuedCount == index + 1 }
                }
                gate.release()
                return try await group.reduce(into: [Int: (any Error)?]()) { $0[$1.0] = $1.1 }
            }
        }
        let outcomes = measured.result
        for stored in [0, 1, 2, 5, 8] { #expect(outcomes[stored]! == nil, "job \(stored): \(String(describing: outcomes[stored]!))") }
        #expect((outcomes[3]! as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT, "\(String(describing: outcomes[3]!))")
        #expect(outcomes[4]! as? QuotaExceededError == QuotaExceededError(limit: 1_000, actual: 1_001))
        #expect(outcomes[6]! as? QuotaExceededError == QuotaExceededError(limit: 1_000, actual: 1_001))
        #expect(outcomes[7]! as? ChatsError == ChatsError.notFound(kind: "message", id: "msg_none"), "\(String(describing: outcomes[7]!))")

        // What the tables hold: the count equals it, and nothing of a refused job is stored.
        #expect(try await stores.checkedStored("usr_1") == 1 + 300 + 400 + 299)
        #expect(try await stores.checkedStored("usr_2") == 1 + 500 + 9)
        #expect(try await stores.chats.message(id: "msg_5", userID: "usr_1") == nil)
        #expect(try await stores.chats.message(id: "msg_1", userID: "usr_1")?.content == String(repeating: "a", count: 300))
        #expect(try await stores.chats.chat(id: "cht_f", userID: "usr_2") == nil)
        // One UPDATE of the count per user, for the whole batch.
        let usageUpdates = measured.writes.filter { $0.hasPrefix("UPDATE user_usage") }
        #expect(usageUpdates.count == 2, "\(measured.writes)")
    }

    @Test("the migration counts what an existing database holds")
    func migration() async throws {
        let database = try AgentDatabase.inMemory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        try await Migrator(migrations: Migration.embedded.filter { $0.version < 12 }).migrate(database.writer, database: "memory", logger: logger)
        try await database.writer.write { db in
            for id in ["usr_1", "usr_2"] {
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)", arguments: [id, id, "2026-01-01T00:00:00.000Z"])
            }
            try db.execute(
                sql: """
                    INSERT INTO modules (id, user_id, title, description, content, created_at, updated_at) VALUES ('mod_1', 'usr_1', 'ab',
                        'c', 'é', '', '');
                    INSERT INTO chats (id, user_id, title, created_at, updated_at) VALUES ('cht_1', 'usr_1', 'chat', '', '');
                    INSERT INTO messages (id, chat_id, user_id, role, content, depth, created_at) VALUES ('msg_1', 'cht_1', 'usr_1',
                        'user', 'hello', 1, '');
                    INSERT INTO prompts (id, user_id, name, description, latest_version, created_at, updated_at) VALUES ('prm_1', 'usr_1',
                        'p', 'dd', 1, '', '');
                    INSERT INTO prompt_versions (prompt_id, version, body, variables, created_at) VALUES ('prm_1', 1, 'body', '[]', '');
                    INSERT INTO agent_runs (id, user_id, chat_id, user_message_id, status, provider, started_at, error_message, steps)
                        VALUES ('run_1', 'usr_1', 'cht_1', 'msg_1', 'failed', 'fake', '', 'oops', '[{}]');
                    """)
        }
        try await Migrator().migrate(database.writer, database: "memory", logger: logger)
        let counted = try await database.writer.read { db in
            (try StorageLedger.storedBytes(userID: "usr_1", db: db), try StorageLedger.storedBytes(userID: "usr_2", db: db))
        }
        #expect(counted.0 == 2 + 1 + 2 + 4 + 5 + 1 + 2 + 4 + 2 + 4 + 4)
        #expect(counted.1 == 0)
        // A user created after the migration gets a row to count in.
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_3', 'usr_3', '')")
        }
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM user_usage WHERE user_id = 'usr_3'") } == 1)
    }
}
