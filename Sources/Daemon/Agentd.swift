import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import RPC
import ServiceLifecycle
import Storage

#if canImport(Glibc)
import Glibc
#endif

@main
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

    @Option(name: .long, help: ArgumentHelp("Unix socket to listen on.", discussion: "Default: $XDG_RUNTIME_DIR/agentd/agentd.sock, else /tmp/agentd-$UID/agentd.sock.", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("SQLite database file.", discussion: "Default: $XDG_DATA_HOME/agentd/agentd.sqlite, else ~/.local/share/agentd/agentd.sqlite.", valueName: "path"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("Configuration file (TOML).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("trusted-uid"), help: ArgumentHelp("A Unix uid recognised without a password, as the account linked to it (repeatable; the daemon's own uid always is).", valueName: "uid"))
    var trustedUIDs: [UInt32] = []

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning or error.", valueName: "level"))
    var logLevel: LogLevel = .info

    @OptionGroup(title: "Socket and limits")
    var tuning: Tuning

    mutating func run() async throws {
        let configuration: DaemonConfiguration
        do {
            configuration = try makeConfiguration()
        } catch let error as DaemonError {
            Self.fail(error)
        }
        let logger = Self.makeLogger(level: configuration.logLevel)
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
        let dependencies = Dependencies.live(configuration: configuration, database: database, logger: logger)
        let server = SocketServer(
            options: .init(
                path: configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup,
                activatedSocket: activatedSocket),
            dispatcher: dependencies.dispatcher, group: eventLoops, logger: logger,
            // READY=1 only now: the database is migrated and the socket listens.
            onListening: { ServiceManager.notify("READY=1\nSTATUS=listening") })
        let reporter = ServiceManagerReporter(
            eventLoops: eventLoops, watchdog: ServiceManager.watchdogInterval(), status: { server.status }, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server), .init(service: reporter)],
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

    private func makeConfiguration() throws -> DaemonConfiguration {
        var configuration = DaemonConfiguration(
            socketPath: socket ?? DaemonConfiguration.defaultSocketPath(),
            databasePath: database ?? DaemonConfiguration.defaultDatabasePath())
        if let config {
            // The configuration file's contents are read from the configuration issue on; a named
            // file that is missing is already an error, never silently ignored.
            guard access(config, R_OK) == 0 else { throw DaemonError("cannot read configuration file \(config): \(errnoDescription())") }
            configuration.configFile = config
        }
        configuration.logLevel = logLevel.level
        configuration.trustedUIDs = Set(trustedUIDs).union([getuid()])
        try tuning.apply(to: &configuration)
        return configuration
    }

    /// journald with structured fields when systemd connected stderr to the journal; otherwise
    /// readable lines on stderr.
    static func makeLogger(level: Logger.Level) -> Logger {
        let journal = JournalLogHandler.stderrIsJournal
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "agentd")
        logger.logLevel = level
        return logger
    }

    static func fail(_ error: DaemonError) -> Never {
        FileHandleOutput.standardError("agentd: \(error.description)\n")
        Glibc.exit(1)
    }
}

/// Socket and limit flags (each has a sane default; see `RPCLimits`).
struct Tuning: ParsableArguments {
    @Option(help: ArgumentHelp("Socket file mode, octal.", valueName: "mode"))
    var socketMode: String = "0600"
    @Option(help: ArgumentHelp("Group that owns the socket (with --socket-mode 0660).", valueName: "group"))
    var socketGroup: String?
    @Option(help: "Largest message in bytes.")
    var maxMessageBytes: Int = RPCLimits().maxMessageBytes
    @Option(help: "Deepest JSON nesting.")
    var maxJsonDepth: Int = RPCLimits().maxJSONDepth
    @Option(help: "Most calls in one batch.")
    var maxBatchLength: Int = RPCLimits().maxBatchLength
    @Option(help: "Calls in flight per connection before the server stops reading it.")
    var maxInFlight: Int = RPCLimits().maxInFlightPerConnection
    @Option(help: "Connections open at once.")
    var maxConnections: Int = RPCLimits().maxConnections
    @Option(help: "Connections open at once per peer uid.")
    var maxConnectionsPerUid: Int = RPCLimits().maxConnectionsPerUID
    @Option(help: "Default call timeout in milliseconds.")
    var requestTimeoutMs: Int = Int(RPCLimits().requestTimeout.components.seconds * 1000)
    @Option(help: "How long shutdown waits for calls in flight, in milliseconds.")
    var drainTimeoutMs: Int = Int(RPCLimits().drainTimeout.components.seconds * 1000)
    @Option(help: "Event-loop threads (default: the CPUs this process may run on).")
    var threads: Int?
    @Flag(help: ArgumentHelp("Register test-only methods (test.sleep).", visibility: .hidden))
    var enableTestMethods = false

    func apply(to configuration: inout DaemonConfiguration) throws {
        guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else {
            throw DaemonError("--socket-mode must be an octal file mode such as 0600, not \(socketMode)")
        }
        configuration.socketMode = mode
        configuration.socketGroup = socketGroup
        let positive: [(String, Int)] = [
            ("--max-message-bytes", maxMessageBytes), ("--max-json-depth", maxJsonDepth), ("--max-batch-length", maxBatchLength),
            ("--max-in-flight", maxInFlight), ("--max-connections", maxConnections),
            ("--max-connections-per-uid", maxConnectionsPerUid), ("--request-timeout-ms", requestTimeoutMs), ("--threads", threads ?? 1),
        ]
        for (flag, value) in positive where value < 1 {
            throw DaemonError("\(flag) must be at least 1, not \(value)")
        }
        guard drainTimeoutMs >= 0 else { throw DaemonError("--drain-timeout-ms must not be negative") }
        configuration.limits.maxMessageBytes = maxMessageBytes
        configuration.limits.maxJSONDepth = maxJsonDepth
        configuration.limits.maxBatchLength = maxBatchLength
        configuration.limits.maxInFlightPerConnection = maxInFlight
        configuration.limits.maxConnections = maxConnections
        configuration.limits.maxConnectionsPerUID = maxConnectionsPerUid
        configuration.limits.requestTimeout = .milliseconds(requestTimeoutMs)
        configuration.limits.drainTimeout = .milliseconds(drainTimeoutMs)
        configuration.enableTestMethods = enableTestMethods
        configuration.threads = threads ?? Processors.available()
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

/// `agentd openrpc`: prints the OpenRPC document (what `rpc.discover` returns), pretty-printed.
/// `make schema` writes it to schema/openrpc.json. The graph is built on an empty in-memory
/// database: printing the document never opens or creates a database file.
struct PrintOpenRPC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openrpc", abstract: "Print the OpenRPC document of every method.")

    func run() throws {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.enableTestMethods = false
        var logger = Logger(label: "agentd")
        logger.logLevel = .critical
        let dependencies = Dependencies.live(configuration: configuration, database: try AgentDatabase.inMemory(), logger: logger)
        let document = dependencies.dispatcher.openRPCDocument
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
