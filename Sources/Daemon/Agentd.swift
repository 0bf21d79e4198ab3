import ArgumentParser
import Logging
import Metrics
import NIOCore
import NIOPosix
import RPC
import ServiceLifecycle
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// The `agentd` executable's entry point (Sources/agentd/main.swift): Daemon is a library so that
/// the in-process test fixture can build the same graph, and a library has no `@main`.
public enum AgentdMain {
    public static func main() async {
        await Agentd.main()
    }
}

struct Agentd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentd",
        abstract: "The agentd daemon: an AI-assistant backend served over JSON-RPC 2.0 on a Unix socket.",
        discussion: """
            Runs in the foreground until SIGTERM or SIGINT, then drains calls in flight and exits 0.

            Examples:
              agentd                                   # default socket and database
              agentd --socket /tmp/a.sock --log-level debug
              echo '{"jsonrpc":"2.0","id":1,"method":"system.ping"}' | socat - UNIX-CONNECT:/tmp/a.sock
            """,
        version: AgentdVersion.current,
        subcommands: [PrintOpenRPC.self, Migrate.self]
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Unix socket to listen on.", discussion: "Default: $XDG_RUNTIME_DIR/agentd/agentd.sock, else /tmp/agentd-$UID/agentd.sock.",
            valueName: "path"))
    var socket: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "SQLite database file.", discussion: "Default: $XDG_DATA_HOME/agentd/agentd.sqlite, else ~/.local/share/agentd/agentd.sqlite.",
            valueName: "path"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("Configuration file (TOML).", valueName: "file"))
    var config: String?

    @Option(
        name: .customLong("trusted-uid"),
        help: ArgumentHelp(
            "A Unix uid recognised without a password, as the account linked to it (repeatable; the daemon's own uid always is).", valueName: "uid"))
    var trustedUIDs: [UInt32] = []

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning or error (default: info).", valueName: "level"))
    var logLevel: LogLevel?

    @Option(
        name: .customLong("metrics-listen"),
        help: ArgumentHelp(
            "Serve GET /metrics (Prometheus text) over HTTP on this address (default: off).",
            discussion: "Such as 127.0.0.1:9464; keep it on loopback: the metrics are not authenticated.", valueName: "host:port"))
    var metricsListen: String?

    @Flag(name: .long, help: "Print the effective configuration (secrets masked) and where each value came from, then exit.")
    var printConfig = false

    @OptionGroup(title: "Socket and limits")
    var tuning: Tuning

    mutating func run() async throws {
        let configuration: DaemonConfiguration
        let loaded: ConfigurationLoader.Loaded
        do {
            (configuration, loaded) = try makeConfiguration()
        } catch let error as DaemonError {
            Self.fail(error)
        }
        if printConfig {
            FileHandleOutput.standardOutput(ConfigurationLoader.describe(loaded))
            return
        }
        let logLevel = LogLevelControl(configuration.logLevel)
        let logger = Self.makeLogger(level: logLevel)
        Self.warnIfSecretsReadable(loaded, logger: logger)
        Self.raiseDescriptorLimit(for: configuration.limits.maxConnections, logger: logger)
        let activatedSocket: Int32?
        do {
            activatedSocket = try ServiceManager.activatedSocket()
        } catch let error as DaemonError {
            Self.fail(error)
        }
        // Before the socket exists: a client never reaches a daemon whose database is not ready.
        let database: AgentDatabase
        do {
            database = try await Dependencies.openDatabase(path: configuration.databasePath, logger: logger)
        } catch {
            Self.fail(error)
        }
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        // The process's one swift-metrics bootstrap (swift-metrics allows only one), here and not in
        // `Dependencies`, which tests build many times per process. agentd's own metrics are made
        // with `metrics.factory` explicitly (see `PrometheusMetrics`); the global serves libraries.
        let metrics = PrometheusMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let dependencies = Dependencies.live(configuration: configuration, database: database, metrics: metrics, logger: logger)
        // Runs a crash left `running` end as failed (`interrupted`) before any client can see them,
        // and before the workers start: foreground runs, and background runs whose job is gone.
        do {
            let interrupted = try await dependencies.agent.failInterruptedRuns()
            if interrupted > 0 { logger.notice("agent runs interrupted by the last stop marked failed", metadata: ["runs": "\(interrupted)"]) }
            // Files whose text extraction a stop interrupted or never enqueued (the job is queued
            // now and runs once the workers start).
            try await dependencies.fileTextJobs.enqueuePending()
        } catch {
            Self.fail(DaemonError(databaseError: error, path: configuration.databasePath))
        }
        // Before any upload can begin: what a crash left in the blob folder that no row owns (see
        // `BlobSweeper`). A failure is logged, not fatal: an orphan costs space, and the next start
        // tries again.
        do {
            try await dependencies.blobSweeper.sweep()
        } catch {
            logger.error("cannot sweep the blob store", metadata: ["folder": "\(configuration.blobFolder)", "error": "\(error)"])
        }
        // Before the socket listens: a metrics address that cannot be bound stops startup first.
        var metricsServer: MetricsHTTPServer?
        if let address = configuration.metricsListen {
            do {
                metricsServer = try await MetricsHTTPServer.bind(
                    address: address, limits: configuration.metricsLimits, exposition: metrics, group: eventLoops, logger: logger)
            } catch {
                Self.fail(error)
            }
        }
        let server = SocketServer(
            options: .init(
                path: configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup,
                explicitPath: configuration.socketPath != DaemonConfiguration.defaultSocketPath(), activatedSocket: activatedSocket,
                trustedUIDs: configuration.trustedUIDs),
            dispatcher: dependencies.dispatcher, group: eventLoops, logger: logger,
            // READY=1 only now: the database is migrated and the socket listens.
            onListening: { ServiceManager.notify("READY=1\nSTATUS=listening") })
        metrics.gauge("rpc_connections_open", help: "Connections open on the Unix socket.") { server.connectionCount }
        let reporter = ServiceManagerReporter(
            eventLoops: eventLoops, watchdog: ServiceManager.watchdogInterval(), status: { server.status }, logger: logger)
        let reload = ReloadService(
            loader: makeLoader(), base: Self.baseConfiguration(), initial: configuration, logLevel: logLevel, logger: logger,
            onReload: { reloaded in
                dependencies.dispatcher.limitsControl.update(reloaded.limits)
                dependencies.llm?.update(llm: reloaded.llm, search: reloaded.search)
            })
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server), .init(service: reporter), .init(service: reload),
            .init(service: EventsBackgroundService(consumers: configuration.holdEventConsumers ? [] : dependencies.eventConsumers)),
            // After the socket server: shut down before it, so running jobs are released while
            // the connections drain.
            .init(
                service: JobWorkersService(
                    workers: dependencies.jobWorkers, recurring: dependencies.recurringJobs,
                    shutdownTimeout: { dependencies.dispatcher.limits.drainTimeout }, logger: logger)),
        ]
        if let metricsServer { services.append(.init(service: metricsServer)) }
        do {
            // First, so shut down last (the group stops services in reverse order): its final
            // checkpoint comes after the socket server has drained the last writes.
            services.insert(.init(service: DatabaseCheckpointService(checkpointer: try WALCheckpointer(path: database.path), logger: logger)), at: 0)
        } catch {
            logger.warning("no checkpoint connection; the writer checkpoints the WAL itself", metadata: ["error": "\(error)"])
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        defer {
            eventLoops.shutdownGracefully { _ in }
            try? database.close()
        }
        do {
            try await group.run()
        } catch let error as DaemonError {
            Self.fail(error)
        } catch let error as IOError {
            Self.fail(DaemonError("\(error)"))
        }
    }

    /// The flags given on the command line, by setting key (flags > env > file > defaults).
    func flagValues() -> [String: ConfigValue] {
        var flags: [String: ConfigValue] = [:]
        flags["server.socket"] = socket.map(ConfigValue.string)
        flags["server.database"] = database.map(ConfigValue.string)
        flags["server.log_level"] = logLevel.map { .string($0.rawValue) }
        flags["server.metrics_listen"] = metricsListen.map(ConfigValue.string)
        if !trustedUIDs.isEmpty { flags["server.trusted_uids"] = .array(trustedUIDs.map { .integer(Int($0)) }) }
        return flags.merging(tuning.flagValues()) { $1 }
    }

    func makeLoader() -> ConfigurationLoader {
        ConfigurationLoader(flags: flagValues(), explicitFile: config)
    }

    /// Defaults that depend on the environment (XDG paths, CPUs).
    static func baseConfiguration() -> DaemonConfiguration {
        var base = DaemonConfiguration(
            socketPath: DaemonConfiguration.defaultSocketPath(), databasePath: DaemonConfiguration.defaultDatabasePath())
        base.threads = Processors.available()
        return base
    }

    private func makeConfiguration() throws -> (DaemonConfiguration, ConfigurationLoader.Loaded) {
        let loaded = try makeLoader().load(base: Self.baseConfiguration())
        var configuration = loaded.configuration
        configuration.configFile = loaded.file
        configuration.enableTestMethods = tuning.enableTestMethods
        configuration.holdEventConsumers = tuning.testHoldEventConsumers
        return (configuration, loaded)
    }

    /// journald with structured fields when systemd connected stderr to the journal; otherwise
    /// readable lines on stderr. Both escape control characters in what they write.
    static func makeLogger(level: LogLevelControl) -> Logger {
        let journal = JournalLogHandler.stderrIsJournal
        LoggingSystem.bootstrap { label in
            if journal {
                return ControlledLogHandler(wrapped: JournalLogHandler(label: label), control: level)
            }
            return ControlledLogHandler(wrapped: EscapingLogHandler(wrapped: StreamLogHandler.standardError(label: label)), control: level)
        }
        return Logger(label: "agentd")
    }

    /// A secret (an API key) read from a configuration file that users other than its owner can
    /// read is theirs too: say so at start (not fatal: the operator may share it on purpose).
    static func warnIfSecretsReadable(_ loaded: ConfigurationLoader.Loaded, logger: Logger) {
        var keysByFile: [String: [String]] = [:]
        for setting in Settings.all where setting.secret {
            if case .file(let path, _) = loaded.sources[setting.key] { keysByFile[path, default: []].append(setting.key) }
        }
        for (path, keys) in keysByFile.sorted(by: { $0.key < $1.key }) {
            var status = stat()
            guard stat(path, &status) == 0, status.st_mode & (S_IRGRP | S_IROTH) != 0 else { continue }
            logger.warning(
                "the configuration file \(path) holds a secret (\(keys.joined(separator: ", "))) and is readable by others (mode \(FileSystem.octal(status.st_mode & 0o7777))): chmod 600 it, or pass the key as a systemd credential or in the environment"
            )
        }
    }

    /// A descriptor per connection: raises the soft limit to the hard one (systemd's advice; the
    /// soft 1024 exists for select(), which agentd does not use), so that `max_connections` can be
    /// reached outside the unit too, and warns when even the hard limit is too low.
    static func raiseDescriptorLimit(for maxConnections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        // Room for the database, the metrics listener, LLM transfers and the event loops' own.
        if limit.rlim_cur != rlim_t.max, limit.rlim_cur < rlim_t(maxConnections + 64) {
            logger.warning(
                "the descriptor limit is \(limit.rlim_cur): max_connections \(maxConnections) cannot be reached; raise LimitNOFILE= or ulimit -n",
                metadata: ["limit": "\(limit.rlim_cur)"])
        }
    }

    static func fail(_ error: DaemonError) -> Never {
        FileHandleOutput.standardError("agentd: \(error.description)\n")
        Glibc.exit(1)
    }
}

/// Socket and limit flags (each has a sane default; see `RPCLimits`).
struct Tuning: ParsableArguments {
    @Option(help: ArgumentHelp("Socket file mode, octal (default: 0600).", valueName: "mode"))
    var socketMode: String?
    @Option(help: ArgumentHelp("Group that owns the socket (with --socket-mode 0660).", valueName: "group"))
    var socketGroup: String?
    @Option(help: "Largest message in bytes (default: 16777216).")
    var maxMessageBytes: Int?
    @Option(help: "Deepest JSON nesting (default: 64).")
    var maxJsonDepth: Int?
    @Option(help: "Most calls in one batch (default: 1000).")
    var maxBatchLength: Int?
    @Option(help: "Calls in flight per connection before the server stops reading it (default: 256).")
    var maxInFlight: Int?
    @Option(help: "Connections open at once (default: 4096).")
    var maxConnections: Int?
    @Option(help: "Connections open at once per peer uid (default: 1024).")
    var maxConnectionsPerUid: Int?
    @Option(help: "Most bytes in one reply: lists stop early, a larger item is refused (default: 16777216).")
    var replyBudgetBytes: Int?
    @Option(
        help:
            "Reply bytes a connection may leave unread before its calls stop and, after the frame timeout, it is closed; also the most one batch's reply holds (default: 16777216)."
    )
    var maxQueuedReplyBytesPerConnection: Int?
    @Option(help: "Reply bytes all connections may leave unread together (default: 268435456).")
    var maxQueuedReplyBytes: Int?
    @Option(help: "Default call timeout in milliseconds (default: 120000).")
    var requestTimeoutMs: Int?
    @Option(help: "How long shutdown waits for calls in flight, in milliseconds (default: 10000).")
    var drainTimeoutMs: Int?
    @Option(help: "How long a connection may hold an unfinished message before it is closed, in milliseconds; 0: never (default: 30000).")
    var frameTimeoutMs: Int?
    @Option(help: "Bytes of text each user may store (modules, chats, messages, prompts, runs); 0: no limit (default: 1073741824).")
    var storageQuotaBytes: Int?
    @Option(help: "Event-loop threads (default: the CPUs this process may run on).")
    var threads: Int?
    @Option(help: "Connections to the /metrics listener at once; the next gets 503 (default: 16).")
    var metricsMaxConnections: Int?
    @Option(help: "Closes a /metrics connection idle this long, in milliseconds (default: 30000).")
    var metricsIdleTimeoutMs: Int?
    @Flag(help: ArgumentHelp("Register test-only methods (test.sleep, test.jobs, test.chunk).", visibility: .hidden))
    var enableTestMethods = false
    @Flag(help: ArgumentHelp("Test only: do not run the in-process event consumers.", visibility: .hidden))
    var testHoldEventConsumers = false

    func flagValues() -> [String: ConfigValue] {
        var flags: [String: ConfigValue] = [:]
        flags["server.socket_mode"] = socketMode.map(ConfigValue.string)
        flags["server.socket_group"] = socketGroup.map(ConfigValue.string)
        flags["server.threads"] = threads.map(ConfigValue.integer)
        flags["server.metrics_max_connections"] = metricsMaxConnections.map(ConfigValue.integer)
        flags["server.metrics_idle_timeout_ms"] = metricsIdleTimeoutMs.map(ConfigValue.integer)
        flags["limits.max_message_bytes"] = maxMessageBytes.map(ConfigValue.integer)
        flags["limits.max_json_depth"] = maxJsonDepth.map(ConfigValue.integer)
        flags["limits.max_batch_length"] = maxBatchLength.map(ConfigValue.integer)
        flags["limits.max_in_flight"] = maxInFlight.map(ConfigValue.integer)
        flags["limits.max_connections"] = maxConnections.map(ConfigValue.integer)
        flags["limits.max_connections_per_uid"] = maxConnectionsPerUid.map(ConfigValue.integer)
        flags["limits.reply_budget_bytes"] = replyBudgetBytes.map(ConfigValue.integer)
        flags["limits.max_queued_reply_bytes_per_connection"] = maxQueuedReplyBytesPerConnection.map(ConfigValue.integer)
        flags["limits.max_queued_reply_bytes"] = maxQueuedReplyBytes.map(ConfigValue.integer)
        flags["limits.request_timeout_ms"] = requestTimeoutMs.map(ConfigValue.integer)
        flags["limits.drain_timeout_ms"] = drainTimeoutMs.map(ConfigValue.integer)
        flags["limits.frame_timeout_ms"] = frameTimeoutMs.map(ConfigValue.integer)
        flags["limits.storage_quota_bytes"] = storageQuotaBytes.map(ConfigValue.integer)
        return flags
    }
}

enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error

    var level: Logger.Level {
        switch self {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

/// `agentd openrpc --api-version N`: prints that API version's OpenRPC document (what `rpc.discover`
/// returns), pretty-printed. `make schema` writes them to schema/openrpc-vN.json, one per version
/// that `--list-versions` prints (so a new version needs no Makefile edit). The graph is built on an
/// empty in-memory database: printing a document never opens or creates a database file.
struct PrintOpenRPC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openrpc", abstract: "Print the OpenRPC document of an API version's methods.")

    @Option(name: .customLong("api-version"), help: "The API version (default: the newest).")
    var apiVersion: String?

    @Flag(name: .customLong("list-versions"), help: "Print the API versions served, oldest first, one a line, instead of a document.")
    var listVersions = false

    func validate() throws {
        if listVersions && apiVersion != nil { throw ValidationError("--list-versions takes no --api-version") }
    }

    func run() throws {
        if listVersions {
            FileHandleOutput.standardOutput(Dependencies.apiVersions.map { $0.name + "\n" }.joined())
            return
        }
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.enableTestMethods = false
        var logger = Logger(label: "agentd")
        logger.logLevel = .critical
        let dependencies = Dependencies.live(
            configuration: configuration, database: try AgentDatabase.inMemory(), metrics: PrometheusMetrics(), logger: logger)
        let version = apiVersion ?? Dependencies.apiVersions.last!.name
        guard let document = dependencies.dispatcher.openRPCDocuments[version] else {
            throw ValidationError("no API version \(version); there are \(Dependencies.apiVersions.map(\.name).joined(separator: ", "))")
        }
        FileHandleOutput.standardOutput(try document.prettyPrinted() + "\n")
    }
}

enum FileHandleOutput {
    static func standardError(_ text: String) { write(2, text) }
    static func standardOutput(_ text: String) { write(1, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
