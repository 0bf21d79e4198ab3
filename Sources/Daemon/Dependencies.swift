import CurlHTTP
import Foundation
import Logging
import NIOPosix
import RPC
import Services
import Storage

/// The composition root: the one place that picks implementations and wires the object graph.
/// `agentd openrpc` and tests build the same graph through `Dependencies.live`, with their own
/// configuration and an in-memory database (`AgentDatabase.inMemory()`).
///
/// Public for the in-process test fixture (AgentdTesting's `InProcessDaemon`), which builds the
/// graph through `testing`; nothing else outside this module uses it.
public struct Dependencies: Sendable {
    public let dispatcher: RPCDispatcher
    public let auth: AuthService
    public let modules: ModulesService
    public let chats: ChatsService
    public let prompts: PromptsService
    public let search: SearchService
    public let events: EventsService
    public let audit: AuditService
    public let agent: AgentService
    public let jobs: JobsService
    /// The files attached to messages and modules (`SQLiteAttachmentStore`), as the agent reads them.
    public let attachments: any AttachmentStore
    public let files: FilesService
    /// The text extracted from files (PDFs by pdftotext), which the agent reads (`FileTextSource`)
    /// and search indexes (`SQLiteFileTextStore`, table `file_texts`).
    public let fileTexts: any FileTextStore
    /// Enqueues `files.extract_text`: on each `file.created` (a bus listener), and for every text
    /// still pending at start (`Agentd.run` calls `enqueuePending`).
    public let fileTextJobs: FileTexts
    /// Committed events go here (from the outbox) and on to subscriptions and consumers.
    public let eventBus: EventBus
    /// The in-process event consumers (audit, …); the daemon runs them (`EventsBackgroundService`).
    public let eventConsumers: [EventConsumerRunner]
    /// The durable queue of background work (`SQLiteJobQueue`).
    public let jobQueue: any JobQueue
    /// Where file contents live: `DiskBlobStore` at `files.blob_dir` (beside the database by
    /// default), or the collaborators' (tests).
    public let blobStore: any BlobStore
    /// Removes what a crash left in `blobStore` that no row owns; the daemon runs it before it
    /// serves (`Agentd.run`).
    public let blobSweeper: BlobSweeper
    /// How services enqueue: the queue, then a wake of `jobWorkers`.
    public let jobScheduler: JobScheduler
    /// Every kind of job this graph runs (`jobWorkers` runs these): `chat.title` when
    /// `agent.auto_title` is on, `bench.noop` with the test methods.
    public let jobHandlers: [any JobHandler]
    /// Runs the registered job kinds; the daemon runs it (`JobWorkersService`), and it is the
    /// `JobCanceller` of `jobs.cancel`.
    public let jobWorkers: JobWorkers
    /// Retention (`events.prune`, `audit.prune`, `jobs.prune`) enqueued every interval; the daemon runs it.
    public let recurringJobs: RecurringJobs
    /// Where every metric of this graph is made and rendered (`system.metrics`, `/metrics`).
    let metrics: PrometheusMetrics
    /// Opened and migrated before the graph is built (`openDatabase`); the domains' SQLite stores are
    /// built on its `writer`.
    public let database: AgentDatabase
    /// The daemon's provider and web search, rebuilt on reload; nil in tests (fakes instead).
    var llm: ReloadableLLM? = nil

    /// The API versions, oldest first. Version 1 is what clients get without `session.hello`; every
    /// method is in both, and 2 changes `chats.list` (items name their module), `chats.messages.get`,
    /// `auth.whoami` and `audit.list`, and deprecates `system.version`.
    static let apiVersions = [RPCAPIVersion("1"), RPCAPIVersion("2")]

    static let server = RPCServerDescription(
        name: "agentd", version: AgentdVersion.current, apiVersions: apiVersions.map(\.name),
        capabilities: ["batches", "content-length-framing", "$/cancelRequest", "events.subscribe"])

    /// The collaborators every domain shares. `live` for the daemon; tests pass fakes (a fixed
    /// clock, a fast hasher).
    public struct Collaborators: Sendable {
        public var clock: any WallClock
        public var ids: any IDGenerator
        public var hasher: any PasswordHasher
        public var accounts: any UnixAccountDirectory
        /// The agent's model. Tests pass a scripted fake.
        public var llmProvider: any LLMProvider = UnconfiguredLLMProvider(configuration: LLMConfiguration())
        /// The agent's web search; nil when no Tavily key is configured (`webSearch: true` then
        /// answers `-32050`).
        public var webSearch: (any WebSearchClient)? = nil
        /// Seconds on a monotonic clock, for the rate limits' token buckets (`RPCTokenBuckets`):
        /// tests pass a clock they move by hand, so a budget refills only when the test says so.
        public var rateLimitClock: @Sendable () -> Double = RPCTokenBuckets.monotonicSeconds
        /// The queue of background work; nil: the daemon's own (`SQLiteJobQueue` on the database).
        /// Tests pass an in-memory one to drive jobs by hand.
        public var jobQueue: (any JobQueue)? = nil
        /// How the job workers and the recurring jobs wait (heartbeats, backoff, the poll): tests
        /// may pass one they release by hand, with `clock`.
        public var jobSleeper: any JobSleeper = TaskSleeper()
        /// Waits between two stores of a streaming run's partial answer (`Task.sleep`): tests pass
        /// a timer they fire by hand.
        public var agentPartialTimer: AgentPartialTimer = { try await Task.sleep(for: $0) }
        /// Where file contents live; nil: the daemon's own (`DiskBlobStore` at the configuration's
        /// `blobFolder`; in `testing`, a temporary folder made when first written). The in-process
        /// daemon passes an `InMemoryBlobStore`.
        public var blobStore: (any BlobStore)? = nil

        public init(
            clock: any WallClock, ids: any IDGenerator, hasher: any PasswordHasher, accounts: any UnixAccountDirectory,
            llmProvider: any LLMProvider = UnconfiguredLLMProvider(configuration: LLMConfiguration()), webSearch: (any WebSearchClient)? = nil,
            rateLimitClock: @escaping @Sendable () -> Double = RPCTokenBuckets.monotonicSeconds, jobQueue: (any JobQueue)? = nil,
            jobSleeper: any JobSleeper = TaskSleeper(), agentPartialTimer: @escaping AgentPartialTimer = { try await Task.sleep(for: $0) },
            blobStore: (any BlobStore)? = nil
        ) {
            self.jobQueue = jobQueue
            self.blobStore = blobStore
            self.agentPartialTimer = agentPartialTimer
            self.clock = clock
            self.ids = ids
            self.hasher = hasher
            self.accounts = accounts
            self.llmProvider = llmProvider
            self.webSearch = webSearch
            self.rateLimitClock = rateLimitClock
            self.jobSleeper = jobSleeper
        }

        /// The daemon's: the system clock, time-ordered ids, the slow KDF on threads of its own at a
        /// lower CPU priority (`PasswordHashingPool`: a burst of logins must not take the cores from
        /// the event loops), `/etc/passwd`, and the configured provider and web search over one
        /// libcurl client (`CurlHTTPClient`, proxies from the environment).
        static func live(llm: ReloadableLLM, passwordHashing: PasswordHashingPool.Settings) -> Collaborators {
            Collaborators(
                clock: SystemClock(), ids: TimeOrderedIDGenerator(clock: SystemClock()),
                hasher: PBKDF2PasswordHasher(threadPool: PasswordHashingPool(settings: passwordHashing)),
                accounts: PasswdDirectory(threadPool: .singleton),
                llmProvider: llm.provider, webSearch: llm.webSearch)
        }
    }

    /// - Parameter metrics: the registry the daemon bootstrapped swift-metrics with (`Agentd.run`);
    ///   `agentd openrpc` passes a fresh one.
    static func live(configuration: DaemonConfiguration, database: AgentDatabase, metrics: PrometheusMetrics, logger: Logger) -> Dependencies {
        // One libcurl client (its own driver thread, proxies from the environment) for every
        // provider and the web search.
        // No metrics for the providers: the agent records `LLMMetrics` once per model request, with
        // a model label clients cannot multiply (recording here too counted every request twice).
        let factory = LLMProviderFactory(client: CurlHTTPClient(logger: logger), logger: logger)
        let llm = ReloadableLLM(factory: factory, llm: configuration.llm, search: configuration.search)
        var dependencies = make(
            configuration: configuration, database: database,
            collaborators: .live(llm: llm, passwordHashing: configuration.passwordHashing), metrics: metrics,
            handlerExecution: .connectionEventLoop, logger: logger)
        dependencies.llm = llm
        return dependencies
    }

    /// The test twin of `live`: the same graph on a migrated in-memory database, with fakes, and
    /// its own metrics registry (never swift-metrics' global, which a process bootstraps once).
    public static func testing(configuration: DaemonConfiguration, collaborators: Collaborators, logger: Logger = quietLogger) async throws
        -> Dependencies
    {
        let database = try AgentDatabase.inMemory()
        _ = try await database.migrate(logger: logger)
        var collaborators = collaborators
        if collaborators.blobStore == nil {
            // Never the configured folder (a test's configuration names no real database): a
            // folder of its own, made only if a test stores a file.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("agentd-blobs-\(UUID().uuidString)").path
            collaborators.blobStore = DiskBlobStore(root: folder)
        }
        return make(
            configuration: configuration, database: database, collaborators: collaborators, metrics: PrometheusMetrics(),
            handlerExecution: .globalPool,
            logger: logger)
    }

    /// Every domain's events: the topics clients may subscribe to, and what invalidates the result cache.
    static let eventTypes: [any DomainEvent.Type] =
        AuthEvents.all + ModulesEvents.all + ChatsEvents.all + PromptsEvents.all + AgentEvents.all
        + JobsEvents.all + FilesEvents.all + FileTextEvents.all

    private static let staleCacheTagsByTopic: [String: @Sendable (Event) -> [String]] = Dictionary(
        uniqueKeysWithValues: eventTypes.map { type in (type.topic, { @Sendable event in type.staleCacheTags(of: event) }) })

    /// The result-cache tags a committed event makes stale, as its type declares them
    /// (`DomainEvent.staleCacheTags(of:)`).
    static func staleCacheTags(of event: Event) -> [String] {
        staleCacheTagsByTopic[event.topic]?(event) ?? []
    }

    /// What the bus hook reads of a `job.cancelled` or `job.failed` event.
    private struct EndedJob: Decodable {
        var jobId: String
        var kind: String
    }

    public static var quietLogger: Logger {
        var logger = Logger(label: "agentd-test")
        logger.logLevel = .critical
        return logger
    }

    /// `handlerExecution`: the daemon runs handler tasks on their connection's event loop (fewer
    /// thread wake-ups per call, BENCHMARKS.md); the in-process tests' testing event loop runs jobs
    /// only when told, so their graph uses the global pool.
    static func make(
        configuration: DaemonConfiguration, database: AgentDatabase, collaborators: Collaborators, metrics: PrometheusMetrics,
        handlerExecution: RPCHandlerExecution, logger: Logger
    ) -> Dependencies {
        let system = SystemService(server: server, clock: ContinuousClock(), metrics: metrics)
        // Events: the outbox writes a change's events in its transaction and hands them, once
        // committed, to the bus, which fans them out to subscriptions and wakes the consumers.
        let eventStore = SQLiteEventStore(writer: database.writer)
        let latestSeq = (try? database.writer.read { try SQLiteEventStore.latestSeq($0) }) ?? 0
        let bus = EventBus(lastSeq: latestSeq, logger: logger)
        let outbox = EventOutbox(clock: collaborators.clock, publish: bus.committed)
        // Every write with an event goes through this one writer: concurrent writes share
        // transactions (one commit per batch, not per append), and new messages are added to the
        // search index before a commit at most every 20 ms (a search catches the index up first).
        let groupWriter = GroupCommitWriter(
            writer: database.writer, outbox: outbox, beforeCommitInterval: .milliseconds(20), beforeCommit: SQLiteSearchIndex.indexNewMessages)
        // Background work: one durable queue. Services that enqueue take `jobScheduler`, which
        // wakes this process's workers at once (the workers are built below, with their handlers).
        // A test may pass its own queue.
        let jobQueue: any JobQueue =
            collaborators.jobQueue ?? SQLiteJobQueue(writer: database.writer, groupWriter: groupWriter, clock: collaborators.clock)
        let jobSignal = JobWakeSignal()
        let jobScheduler = JobScheduler(queue: jobQueue, signal: jobSignal)
        // File contents: beside the database unless `files.blob_dir` says otherwise. Nothing is
        // created on disk before the first write.
        let blobStore: any BlobStore = collaborators.blobStore ?? DiskBlobStore(root: configuration.blobFolder)
        var authSettings = configuration.auth
        authSettings.trustedUIDs = configuration.trustedUIDs
        // Every store that writes a user's text counts it against the quota, in the write's transaction.
        let ledger = StorageLedger(quota: configuration.storageQuota)
        let auth = AuthService(
            store: SQLiteAuthStore(writer: database.writer, groupWriter: groupWriter, quota: ledger.quota), hasher: collaborators.hasher,
            clock: collaborators.clock, ids: collaborators.ids, accounts: collaborators.accounts, settings: authSettings)
        let modules = ModulesService(
            store: SQLiteModuleStore(writer: database.writer, groupWriter: groupWriter, ledger: ledger), clock: collaborators.clock,
            ids: collaborators.ids,
            replyBudget: configuration.replyBudget)
        let chatStore = SQLiteChatStore(writer: database.writer, groupWriter: groupWriter, ledger: ledger)
        let agentStore = SQLiteAgentStore(writer: database.writer, groupWriter: groupWriter, ledger: ledger)
        // Messages' and modules' files: written by the chats and modules stores, read here.
        let attachments = SQLiteAttachmentStore(reader: database.writer)
        let fileStore = SQLiteFileStore(writer: database.writer, groupWriter: groupWriter, ledger: ledger)
        let fileTexts = SQLiteFileTextStore(reader: database.writer, groupWriter: groupWriter)
        let chats = ChatsService(
            store: chatStore, clock: collaborators.clock, ids: collaborators.ids, generations: agentStore, replyBudget: configuration.replyBudget)
        let prompts = PromptsService(
            store: SQLitePromptStore(writer: database.writer, groupWriter: groupWriter, ledger: ledger), clock: collaborators.clock,
            ids: collaborators.ids,
            replyBudget: configuration.replyBudget)
        // Chat titles: the agent enqueues after a chat's first answer; the job renames the chat.
        let titles = configuration.autoTitleEnabled ? ChatTitles(scheduler: jobScheduler, clock: collaborators.clock, ids: collaborators.ids) : nil
        let agent = AgentService(
            store: agentStore, chats: chatStore, prompts: prompts, modules: modules, provider: collaborators.llmProvider,
            webSearch: collaborators.webSearch,
            clock: collaborators.clock, ids: collaborators.ids, metrics: LLMMetrics(factory: metrics.factory), logger: logger,
            replyBudget: configuration.replyBudget, watchCapacity: configuration.events.queueCapacity,
            watchesPerConnection: configuration.events.maxSubscriptionsPerConnection,
            partialTimer: collaborators.agentPartialTimer, jobs: jobScheduler, titles: titles,
            // The files the agent reads: blob reads block, on NIO's thread pool.
            files: StoredAgentFiles(
                attachments: attachments, chats: chatStore, files: fileStore, blobs: blobStore, texts: fileTexts, runner: NIOThreadPool.singleton))
        let search = SearchService(index: SQLiteSearchIndex(reader: database.writer, indexer: groupWriter), replyBudget: configuration.replyBudget)
        // File texts: the database marks a new file's text pending in the file's transaction; the
        // job is enqueued once that commits (and at start for what is still pending).
        let fileTextJobs = FileTexts(scheduler: jobScheduler, store: fileTexts, clock: collaborators.clock, ids: collaborators.ids, logger: logger)
        bus.onCommit { committed in fileTextJobs.filesCreated(committed) }
        // In-process consumers, by topic: each in its own task with its own cursor.
        let auditStore = SQLiteAuditStore(writer: database.writer, groupWriter: groupWriter)
        let consumers: [any EventConsumer] = [AuditConsumer(store: auditStore)]
        let eventConsumers = consumers.map { EventConsumerRunner(consumer: $0, store: eventStore, bus: bus, logger: logger) }
        let topics = Self.eventTypes.map { $0.topic }
        let events = EventsService(
            store: eventStore, bus: bus, ids: collaborators.ids, clock: collaborators.clock, topics: topics, consumers: consumers,
            sessions: auth, settings: configuration.events, replyBudget: configuration.replyBudget)
        // An agent.run job that ended without its run (cancelled while queued, failed by the
        // workers without an attempt) ends the run too.
        bus.onCommit { committed in
            for event in committed where event.topic == JobsEvents.Cancelled.topic || event.topic == JobsEvents.Failed.topic {
                guard let ended = try? event.data.decode(EndedJob.self), ended.kind == AgentRunJob.kind else { continue }
                let userID = event.userID
                Task { await agent.jobEnded(jobID: ended.jobId, userID: userID) }
            }
        }
        // A revoked session's subscriptions end (the check reads the database: off the writer).
        bus.onCommit { committed in
            for event in committed where event.topic == AuthEvents.SessionsRevoked.topic {
                let userID = event.userID
                Task { await events.endRevokedSubscriptions(userID: userID) }
            }
        }
        // A run that ends without running here (a queued background run cancelled) ends the
        // watches waiting for it (a check in memory at each commit; the run is read in a task).
        bus.onCommit { committed in agent.runsEnded(committed) }
        // Files: metadata in the database, bytes in the blob store, blocking file I/O on NIO's
        // thread pool. The chunk size follows the message limit read at start (a SIGHUP that
        // lowers it applies to uploads begun after a restart). File contents no file references
        // any more: `files.blob_delete` deletes them (the files service enqueues it through
        // `BlobReleaser`), the start-up sweep what a crash left.
        let blobSweeper = BlobSweeper(files: fileStore, blobs: blobStore, logger: logger)
        let blobReleaser = BlobReleaser(
            scheduler: jobScheduler, clock: collaborators.clock, ids: collaborators.ids, delay: configuration.files.blobDeleteDelay)
        let files = FilesService(
            store: fileStore, blobs: blobStore, runner: NIOThreadPool.singleton, clock: collaborators.clock, ids: collaborators.ids,
            settings: configuration.files, chunkSize: FilesService.chunkSize(maxMessageBytes: configuration.limits.maxMessageBytes),
            ownUID: getuid(), replyBudget: configuration.replyBudget,
            releaseBlob: { digest, releasedBy in _ = try await blobReleaser.release(digest, releasedBy: releasedBy) })
        let uploadsExpire = UploadsExpireJob(files: files, logger: logger)
        let audit = AuditService(store: auditStore, clock: collaborators.clock, settings: configuration.audit, replyBudget: configuration.replyBudget)
        // The job kinds this daemon runs: one line each (and a `JobsSettings.kinds` entry for its
        // `jobs.concurrency.*` setting). See docs/ARCHITECTURE.md, "Background jobs".
        let eventsPrune = EventsPruneJob(events: events, logger: logger)
        let auditPrune = AuditPruneJob(audit: audit, logger: logger)
        let jobsPrune = JobsPruneJob(queue: jobQueue, clock: collaborators.clock, retention: configuration.jobs.retentionAge, logger: logger)
        // bench/jobs.sh's no-op kind (`test.jobs`): only with the test methods, so no setting.
        let noopRecorder = configuration.enableTestMethods ? NoopJobRecorder() : nil
        var jobHandlers: [any JobHandler] = [
            AgentRunJob(service: agent),
            eventsPrune,
            auditPrune,
            jobsPrune,
            BlobDeleteJob(files: fileStore, blobs: blobStore),
            uploadsExpire,
            // pdftotext and the blob reads block: a thread of NIO's blocking pool, one file at a time.
            FileTextJob(
                store: fileTexts, blobs: blobStore, extractor: PdftotextExtractor(), runner: NIOThreadPool.singleton, clock: collaborators.clock,
                logger: logger),
        ]
        if titles != nil { jobHandlers.append(ChatTitleJob(chats: chatStore, provider: collaborators.llmProvider, clock: collaborators.clock)) }
        if let noopRecorder { jobHandlers.append(NoopJob(recorder: noopRecorder)) }
        let (jobWorkers, recurringJobs) = makeWorkers(
            configuration: configuration, queue: jobQueue, signal: jobSignal, scheduler: jobScheduler, handlers: jobHandlers,
            recurring: [
                RecurringJob(eventsPrune, every: configuration.jobs.eventsPruneInterval),
                RecurringJob(auditPrune, every: configuration.jobs.auditPruneInterval),
                RecurringJob(jobsPrune, every: configuration.jobs.pruneInterval),
                RecurringJob(uploadsExpire, every: configuration.files.expireInterval),
            ], collaborators: collaborators, logger: logger)
        // jobs.cancel stops an attempt running here at once; jobs.retry wakes the workers.
        let jobs = JobsService(
            queue: jobQueue, clock: collaborators.clock, canceller: jobWorkers, signal: jobSignal, replyBudget: configuration.replyBudget)
        // The result cache is invalidated by the events, at commit, before the writer is answered.
        let resultCache = RPCResultCache(maxEntries: configuration.cache.maxEntries, maxBytes: configuration.cache.maxBytes)
        bus.onCommit { events in
            for event in events {
                for tag in Self.staleCacheTags(of: event) { resultCache.invalidate(tag: tag) }
            }
        }

        var router = RPCRouter(versions: apiVersions, handlerExecution: handlerExecution)
        SystemRoutes(service: system, auth: auth, includeTestMethods: configuration.enableTestMethods).register(on: &router)
        if let noopRecorder {
            // bench/jobs.sh: no-op jobs through this scheduler and these workers.
            let benchmark = JobsBenchmark(scheduler: jobScheduler, recorder: noopRecorder, clock: collaborators.clock, ids: collaborators.ids)
            JobsTestRoutes(benchmark: benchmark, auth: auth).register(on: &router)
        }
        AuthRoutes(service: auth).register(on: &router)
        ModulesRoutes(service: modules, auth: auth).register(on: &router)
        ChatsRoutes(service: chats, auth: auth).register(on: &router)
        PromptsRoutes(service: prompts, auth: auth).register(on: &router)
        SearchRoutes(service: search, auth: auth).register(on: &router)
        EventsRoutes(service: events, auth: auth).register(on: &router)
        AuditRoutes(service: audit, auth: auth).register(on: &router)
        AgentRoutes(service: agent, auth: auth).register(on: &router)
        JobsRoutes(service: jobs, auth: auth).register(on: &router)
        FilesRoutes(service: files, auth: auth).register(on: &router)
        router.describe(RPCConnectionHandler.ShuttingDown.self)

        // One limits control for the dispatcher, the timeout and the server: SIGHUP replaces it.
        let limits = RPCLimitsControl(configuration.limits)
        // Order matters: metrics see every call (also ones refused further in), logging sees the
        // final outcome, the timeout wraps only the handler.
        let middleware: [any RPCMiddleware] = [
            RPCMetricsMiddleware(methodNames: router.routes.keys + ["rpc.discover", "session.hello"], factory: metrics.factory),
            RPCLoggingMiddleware(),
            // Per caller: the peer's uid (one budget for all its connections and accounts) and, for
            // a connection signed in with a password or token, that account too; a batch counts
            // as its length. The daemon's own uid is exempt (`limits.rate_exempt_own_uid`).
            RPCRateLimitMiddleware(
                buckets: RPCTokenBuckets(now: collaborators.rateLimitClock), limits: limits,
                caller: { context in
                    RPCRateCaller(
                        uid: "uid:\(context.connection.peer?.uid ?? UInt32.max)", account: AuthService.signedInUserID(on: context.connection))
                }),
            // Hot reads of one item from memory, for connections recognised by their uid (a
            // session must be checked again on each call, which costs what a hit saves).
            RPCCacheMiddleware(
                cache: resultCache, router: router, caller: { AuthService.peerUserID(on: $0.connection) },
                enabled: { configuration.cache.enabled }),
            // Logins, logouts, password changes and refused sessions, written before the reply.
            SecurityAuditMiddleware(store: auditStore, auth: auth, clock: collaborators.clock),
            // Before the handlers run: a pipelined auth.authenticate binds before the calls after it.
            AuthBindingOrderMiddleware(),
            RPCTimeoutMiddleware(limits: limits),
        ]
        let dispatcher = RPCDispatcher(router: router, middleware: middleware, limits: limits, server: server, logger: logger)
        // Gauges read at each render (the socket's connections are added by `Agentd.run`, which
        // builds the server).
        metrics.gauge("rpc_calls_in_flight", help: "Calls dispatched and not answered yet, on every connection.") {
            dispatcher.callsInFlight.load(ordering: .relaxed)
        }
        metrics.gauge("rpc_reply_bytes_queued", help: "Reply bytes written and not yet taken by the clients' sockets, on every connection.") {
            dispatcher.replyBytesQueued.load(ordering: .relaxed)
        }
        metrics.gauge("events_subscriptions_active", help: "Live events.subscribe subscriptions.") { bus.subscriptionCount }
        metrics.gauge("storage_write_queue_depth", help: "Writes waiting for the next group-commit transaction.") { groupWriter.queuedCount }
        return Dependencies(
            dispatcher: dispatcher, auth: auth, modules: modules, chats: chats, prompts: prompts, search: search, events: events, audit: audit,
            agent: agent, jobs: jobs, attachments: attachments, files: files, fileTexts: fileTexts, fileTextJobs: fileTextJobs, eventBus: bus,
            eventConsumers: eventConsumers, jobQueue: jobQueue, blobStore: blobStore, blobSweeper: blobSweeper, jobScheduler: jobScheduler,
            jobHandlers: jobHandlers, jobWorkers: jobWorkers, recurringJobs: recurringJobs, metrics: metrics, database: database)
    }

    /// The job workers over `handlers`, and the recurring jobs (retention) they run.
    static func makeWorkers(
        configuration: DaemonConfiguration, queue: any JobQueue, signal: JobWakeSignal, scheduler: JobScheduler, handlers: [any JobHandler],
        recurring: [RecurringJob], collaborators: Collaborators, logger: Logger
    ) -> (workers: JobWorkers, recurring: RecurringJobs) {
        let workers = JobWorkers(
            queue: queue, handlers: handlers, signal: signal, workerID: JobWorkers.makeWorkerID(host: FileSystem.hostName()),
            clock: collaborators.clock,
            sleeper: collaborators.jobSleeper,
            settings: JobWorkers.Settings(concurrency: configuration.jobs.concurrency, pollInterval: configuration.jobs.pollInterval), logger: logger)
        let recurringJobs = RecurringJobs(
            jobs: recurring, scheduler: scheduler, ids: collaborators.ids, clock: collaborators.clock, sleeper: collaborators.jobSleeper,
            logger: logger)
        return (workers, recurringJobs)
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
