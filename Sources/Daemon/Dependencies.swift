import Logging
import NIOPosix
import RPC
import Services
import Storage

/// The composition root: the one place that picks implementations and wires the object graph.
/// `agentd openrpc` and tests build the same graph through `Dependencies.live`, with their own
/// configuration and an in-memory database (`AgentDatabase.inMemory()`).
struct Dependencies: Sendable {
    let dispatcher: RPCDispatcher
    let auth: AuthService
    let modules: ModulesService
    let chats: ChatsService
    let prompts: PromptsService
    let search: SearchService
    let events: EventsService
    let audit: AuditService
    /// Committed events go here (from the outbox) and on to subscriptions and consumers.
    let eventBus: EventBus
    /// The in-process event consumers (audit, …); the daemon runs them (`EventsBackgroundService`).
    let eventConsumers: [EventConsumerRunner]
    /// Opened and migrated before the graph is built (`openDatabase`); the domains' SQLite stores are
    /// built on its `writer`.
    let database: AgentDatabase

    static let server = RPCServerDescription(name: "agentd", version: AgentdVersion.current, apiVersions: ["1"])

    /// The collaborators every domain shares. `live` for the daemon; tests pass fakes (a fixed
    /// clock, a fast hasher).
    struct Collaborators: Sendable {
        var clock: any WallClock
        var ids: any IDGenerator
        var hasher: any PasswordHasher
        var accounts: any UnixAccountDirectory

        static func live() -> Collaborators {
            Collaborators(
                clock: SystemClock(), ids: RandomIDGenerator(),
                hasher: PBKDF2PasswordHasher(threadPool: .singleton),
                accounts: PasswdDirectory(threadPool: .singleton))
        }
    }

    static func live(configuration: DaemonConfiguration, database: AgentDatabase, logger: Logger) -> Dependencies {
        make(configuration: configuration, database: database, collaborators: .live(), handlerExecution: .connectionEventLoop, logger: logger)
    }

    /// The test twin of `live`: the same graph on a migrated in-memory database, with fakes.
    static func testing(configuration: DaemonConfiguration, collaborators: Collaborators, logger: Logger = quietLogger) async throws -> Dependencies {
        let database = try AgentDatabase.inMemory()
        _ = try await database.migrate(logger: logger)
        return make(configuration: configuration, database: database, collaborators: collaborators, handlerExecution: .globalPool, logger: logger)
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "agentd-test")
        logger.logLevel = .critical
        return logger
    }

    /// `handlerExecution`: the daemon runs handler tasks on their connection's event loop (fewer
    /// thread wake-ups per call, BENCHMARKS.md); the in-process tests' testing event loop runs jobs
    /// only when told, so their graph uses the global pool.
    static func make(
        configuration: DaemonConfiguration, database: AgentDatabase, collaborators: Collaborators, handlerExecution: RPCHandlerExecution,
        logger: Logger
    ) -> Dependencies {
        let system = SystemService(server: server, clock: ContinuousClock())
        // Events: the outbox writes a change's events in its transaction and hands them, once
        // committed, to the bus, which fans them out to subscriptions and wakes the consumers.
        let eventStore = SQLiteEventStore(writer: database.writer)
        let latestSeq = (try? database.writer.read { try SQLiteEventStore.latestSeq($0) }) ?? 0
        let bus = EventBus(lastSeq: latestSeq, logger: logger)
        let outbox = EventOutbox(clock: collaborators.clock, publish: bus.committed)
        // Every write with an event goes through this one writer: concurrent writes share
        // transactions (one commit per batch, not per append), and new messages are added to the
        // search index once per batch, before its commit.
        let groupWriter = GroupCommitWriter(writer: database.writer, outbox: outbox, beforeCommit: SQLiteSearchIndex.indexNewMessages)
        let auth = AuthService(
            store: SQLiteAuthStore(writer: database.writer, groupWriter: groupWriter), hasher: collaborators.hasher, clock: collaborators.clock,
            ids: collaborators.ids, accounts: collaborators.accounts, settings: .init(trustedUIDs: configuration.trustedUIDs))
        let modules = ModulesService(
            store: SQLiteModuleStore(writer: database.writer, groupWriter: groupWriter), clock: collaborators.clock, ids: collaborators.ids)
        let chats = ChatsService(
            store: SQLiteChatStore(writer: database.writer, groupWriter: groupWriter), clock: collaborators.clock, ids: collaborators.ids)
        let prompts = PromptsService(
            store: SQLitePromptStore(writer: database.writer, groupWriter: groupWriter), clock: collaborators.clock, ids: collaborators.ids)
        let search = SearchService(index: SQLiteSearchIndex(reader: database.writer))
        // In-process consumers, by topic: each in its own task with its own cursor.
        let auditStore = SQLiteAuditStore(writer: database.writer)
        let consumers: [any EventConsumer] = [AuditConsumer(store: auditStore)]
        let eventConsumers = consumers.map { EventConsumerRunner(consumer: $0, store: eventStore, bus: bus, logger: logger) }
        let topics = (AuthEvents.all + ModulesEvents.all + ChatsEvents.all + PromptsEvents.all).map { $0.topic }
        let events = EventsService(
            store: eventStore, bus: bus, ids: collaborators.ids, clock: collaborators.clock, topics: topics, consumers: consumers,
            settings: configuration.events)
        let audit = AuditService(store: auditStore)

        var router = RPCRouter(handlerExecution: handlerExecution)
        SystemRoutes(service: system, includeTestMethods: configuration.enableTestMethods).register(on: &router)
        AuthRoutes(service: auth).register(on: &router)
        ModulesRoutes(service: modules, auth: auth).register(on: &router)
        ChatsRoutes(service: chats, auth: auth).register(on: &router)
        PromptsRoutes(service: prompts, auth: auth).register(on: &router)
        SearchRoutes(service: search, auth: auth).register(on: &router)
        EventsRoutes(service: events, auth: auth).register(on: &router)
        AuditRoutes(service: audit, auth: auth).register(on: &router)
        router.describe(RPCConnectionHandler.ShuttingDown.self)

        // One limits control for the dispatcher, the timeout and the server: SIGHUP replaces it.
        let limits = RPCLimitsControl(configuration.limits)
        // Order matters: metrics see every call (also ones refused further in), logging sees the
        // final outcome, the timeout wraps only the handler.
        let middleware: [any RPCMiddleware] = [
            RPCMetricsMiddleware(methodNames: router.routes.keys + ["rpc.discover"]),
            RPCLoggingMiddleware(),
            // Before the handlers run: a pipelined auth.authenticate binds before the calls after it.
            AuthBindingOrderMiddleware(),
            RPCTimeoutMiddleware(limits: limits),
        ]
        let dispatcher = RPCDispatcher(router: router, middleware: middleware, limits: limits, server: server, logger: logger)
        return Dependencies(
            dispatcher: dispatcher, auth: auth, modules: modules, chats: chats, prompts: prompts, search: search, events: events, audit: audit,
            eventBus: bus, eventConsumers: eventConsumers, database: database)
    }

    /// Opens the database file (creating it and its folders when missing) and applies the pending
    /// migrations; logs `database ready` with its path and schema version.
    ///
    /// - Throws: a `DaemonError` whose message names the file: it cannot be opened, it was written
    ///   by a newer agentd, an applied migration changed, or a migration failed.
    static func openDatabase(path: String, logger: Logger) async throws(DaemonError) -> AgentDatabase {
        do {
            let database = try AgentDatabase.open(path: path)
            let applied = try await database.migrate(logger: logger)
            for migration in applied {
                logger.notice("applied migration", metadata: ["database": "\(path)", "migration": "\(migration.fileName)"])
            }
            let status = try await database.migrationStatus()
            logger.info("database ready", metadata: ["database": "\(path)", "schema_version": "\(status.schemaVersion)"])
            return database
        } catch {
            throw DaemonError(databaseError: error, path: path)
        }
    }
}

extension DaemonError {
    /// The storage layer's errors already name the file; anything else (SQLite failing under a
    /// read) gets the path prepended.
    init(databaseError error: any Error, path: String) {
        switch error {
        case let error as AgentDatabaseError: self.init(error.description)
        case let error as MigrationError: self.init(error.description)
        default: self.init("database \(path): \(error)")
        }
    }
}

enum AgentdVersion {
    static let current = "0.1.0"
}
