import Foundation
import Logging
import RPC
import RPCClient
import Services

#if canImport(Glibc)
import Glibc
#endif

/// Everything the daemon needs to start: defaults, then the configuration file, the environment,
/// systemd credentials and flags (see `ConfigurationLoader`).
///
/// Public (with the fields a test fixture sets) for AgentdTesting's `InProcessDaemon`.
public struct DaemonConfiguration: Sendable {
    var socketPath: String
    var socketMode: mode_t = 0o600
    var socketGroup: String?
    var databasePath: String
    /// Where file contents live (`files.blob_dir`); nil: `blobs` beside the database (`blobFolder`).
    var blobDirectory: String?
    var configFile: String?
    var logLevel: Logger.Level = .info
    /// The daemon's own uid is never rate limited unless `limits.rate_exempt_own_uid` is off.
    public var limits: RPCLimits = {
        var limits = RPCLimits()
        limits.rateExemptUIDs = [getuid()]
        return limits
    }()
    /// The most bytes one reply may hold (`limits.reply_budget_bytes`): lists stop early, a larger
    /// single item answers `-32006`. Given to the services when the graph is built (a restart
    /// changes it, not SIGHUP).
    public var replyBudget = ReplyBudget()
    /// Bytes of text each user may store (`limits.storage_quota_bytes`, 0: no limit).
    public var storageQuota = StorageQuota()
    public var enableTestMethods = false
    var threads = 1
    /// Where the `/metrics` HTTP listener binds (`--metrics-listen`); nil: no listener (the
    /// default). `system.metrics` answers the same text either way.
    var metricsListen: ListenAddress?
    /// The `/metrics` listener's connection cap and idle timeout.
    var metricsLimits = MetricsHTTPServer.Limits()
    /// Unix uids recognised without a password (`--trusted-uid`, plus the daemon's own uid).
    public var trustedUIDs: Set<UInt32> = [getuid()]
    /// The `[llm]` settings, as `LLMProviderFactory.makeProvider` takes them.
    var llm = LLMConfiguration()
    /// The `[search]` settings, as `LLMProviderFactory.makeWebSearchClient` takes them.
    var search = WebSearchConfiguration()
    /// `agent.auto_title`: a chat's first answer enqueues a `chat.title` job. nil: the default,
    /// on when the provider is configured (`autoTitleEnabled`).
    public var autoTitle: Bool?
    public var events = EventsService.Settings()
    /// Session lifetime and registration (`auth.*`); the trusted uids are `trustedUIDs`.
    public var auth = AuthService.Settings()
    /// The password hasher's threads and how many hashes may wait for them (`auth.hash_threads`,
    /// `auth.max_waiting_hashes`).
    var passwordHashing = PasswordHashingPool.Settings()
    public var audit = AuditService.Settings()
    var cache = CacheSettings()
    /// The job workers and the recurring jobs (`jobs.*`, `events.prune_interval_seconds`,
    /// `audit.prune_interval_seconds`).
    public var jobs = JobsSettings()
    /// Uploads and files (`files.*`): the largest file, open uploads per user, an upload's lifetime.
    public var files = FilesService.Settings()
    /// Test-only (`--test-hold-event-consumers`): in-process consumers do not run, so a test can
    /// stop the daemon between an event's commit and its dispatch.
    var holdEventConsumers = false

    /// `$XDG_RUNTIME_DIR/agentd/agentd.sock`, else `/tmp/agentd-$UID/agentd.sock`.
    /// The same rule `agentctl` uses to find the daemon (`AgentdSocket`).
    static func defaultSocketPath() -> String {
        AgentdSocket.defaultPath()
    }

    /// The `DiskBlobStore`'s folder: `files.blob_dir`, else `blobs` in the database's folder
    /// (`$XDG_DATA_HOME/agentd/blobs` by default), so that the two are backed up together.
    var blobFolder: String {
        if let blobDirectory { return blobDirectory }
        guard let slash = databasePath.lastIndex(of: "/") else { return "blobs" }
        return databasePath[..<slash] + "/blobs"
    }

    /// `$XDG_DATA_HOME/agentd/agentd.sqlite`, else `~/.local/share/agentd/agentd.sqlite`.
    static func defaultDatabasePath() -> String {
        if let data = FileSystem.environment("XDG_DATA_HOME") {
            return data + "/agentd/agentd.sqlite"
        }
        return FileSystem.homeDirectory() + "/.local/share/agentd/agentd.sqlite"
    }
}

extension DaemonConfiguration {
    /// Whether chats get titles from the model: `agent.auto_title`, else whether `[llm]` is usable
    /// (read when the daemon starts: a provider configured later by SIGHUP needs a restart, or
    /// `agent.auto_title = true`).
    var autoTitleEnabled: Bool { autoTitle ?? llm.missingSettings.isEmpty }

    /// The defaults, on this socket and database (the memberwise initializer stays internal).
    public init(socketPath: String, databasePath: String) {
        self.socketPath = socketPath
        self.databasePath = databasePath
    }
}

/// The result cache (`RPCCacheMiddleware`): on by default, bounded by entries and bytes.
struct CacheSettings: Sendable {
    var enabled = true
    var maxEntries = 10_000
    var maxBytes = 64 << 20
}

/// The job workers' settings and the recurring jobs' intervals. Not reloadable.
public struct JobsSettings: Sendable {
    /// The kinds with a `jobs.concurrency.<kind>` setting (the dot written `_`): every kind the
    /// daemon registers a handler for (`Dependencies`) must be here.
    static let kinds = ["agent.run", "chat.title", "events.prune", "audit.prune", "jobs.prune", "files.uploads_expire", "files.blob_delete"]

    /// Attempts at once per kind in this process, overriding the kind's own (`jobs.concurrency.*`).
    public var concurrency: [String: Int] = [:]
    /// The longest the workers go without looking at the queue when nothing woke them
    /// (`jobs.poll_interval_ms`): for jobs enqueued by another process and leases of workers that died.
    public var pollInterval: Duration = .seconds(5)
    /// How often `events.prune` and `audit.prune` are enqueued (`events.prune_interval_seconds`,
    /// `audit.prune_interval_seconds`).
    public var eventsPruneInterval: Duration = .seconds(600)
    public var auditPruneInterval: Duration = .seconds(600)
    /// How long a finished job is kept before `jobs.prune` deletes it (`jobs.retention_days`): a
    /// user's failed job can be retried until then.
    public var retentionAge: TimeInterval = 7 * 24 * 3600
    /// How often `jobs.prune` is enqueued (`jobs.prune_interval_seconds`). Hourly: retention is
    /// counted in days, and each occurrence is itself a job kept for `retentionAge`.
    public var pruneInterval: Duration = .seconds(3600)

    public init() {}

    /// `jobs.concurrency.agent_run` for `agent.run`.
    static func concurrencyKey(kind: String) -> String {
        "jobs.concurrency." + kind.replacingOccurrences(of: ".", with: "_")
    }
}
