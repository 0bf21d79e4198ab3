import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The log level every handler consults, so that SIGHUP can change it for loggers already made.
final class LogLevelControl: Sendable {
    private let raw: Atomic<UInt8>

    init(_ level: Logger.Level) { raw = Atomic(Self.code(level)) }

    var level: Logger.Level {
        get { Logger.Level.allCases[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level)!)
    }
}

/// Wraps a handler so that its level is the shared `LogLevelControl`'s.
struct ControlledLogHandler<Wrapped: LogHandler>: LogHandler {
    var wrapped: Wrapped
    let control: LogLevelControl

    var logLevel: Logger.Level {
        get { control.level }
        set {}  // the control is the authority (configuration and SIGHUP set it)
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) { wrapped.log(event: event) }
}

/// SIGHUP: reads the configuration file and the environment again (flags stay as given), applies
/// what can change while serving, and says what needs a restart. Tells systemd `RELOADING=1` and
/// then `READY=1`.
final class ReloadService: Service, Sendable {
    let loader: ConfigurationLoader
    let base: DaemonConfiguration
    let logLevel: LogLevelControl
    let onReload: @Sendable (DaemonConfiguration) -> Void
    let logger: Logger
    /// The configuration in force; only this service changes it.
    let current: Mutex<DaemonConfiguration>

    init(
        loader: ConfigurationLoader, base: DaemonConfiguration, initial: DaemonConfiguration, logLevel: LogLevelControl,
        logger: Logger, onReload: @escaping @Sendable (DaemonConfiguration) -> Void
    ) {
        self.loader = loader
        self.base = base
        self.logLevel = logLevel
        self.logger = logger
        self.onReload = onReload
        self.current = Mutex(initial)
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        ServiceManager.notify("RELOADING=1\nSTATUS=reloading the configuration")
        defer { ServiceManager.notify("READY=1\nSTATUS=configuration reloaded") }
        let loaded: ConfigurationLoader.Loaded
        do {
            loaded = try loader.load(base: base)
        } catch {
            logger.error("reload failed; the configuration in force is unchanged", metadata: ["error": "\(error)"])
            return
        }
        let before = current.withLock { $0 }
        var next = before
        var applied: [String] = []
        var needsRestart: [String] = []
        for setting in Settings.all where setting.current(before) != setting.current(loaded.configuration) {
            if setting.reloadable {
                Self.copy(setting, from: loaded.configuration, into: &next)
                applied.append(setting.key)
            } else {
                needsRestart.append(setting.key)
            }
        }
        current.withLock { $0 = next }
        logLevel.level = next.logLevel
        onReload(next)
        logger.notice(
            "configuration reloaded",
            metadata: [
                "applied": "\(applied.isEmpty ? "nothing changed" : applied.joined(separator: ", "))",
                "needs_restart": "\(needsRestart.isEmpty ? "none" : needsRestart.joined(separator: ", "))",
            ])
    }

    /// Reloadable settings: the log level, the limits, and the provider blocks.
    private static func copy(_ setting: Setting, from source: DaemonConfiguration, into target: inout DaemonConfiguration) {
        switch setting.key {
        case "server.log_level": target.logLevel = source.logLevel
        default:
            if setting.key.hasPrefix("limits.") { target.limits = source.limits }
            if setting.key.hasPrefix("llm.") { target.llm = source.llm }
            if setting.key.hasPrefix("search.") { target.search = source.search }
        }
    }
}
