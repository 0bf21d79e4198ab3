import Foundation
import Logging
import RPC
import RPCClient
import Services

#if canImport(Glibc)
import Glibc
#endif

/// Where an effective value came from, for `--print-config` and reload messages.
enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case defaultValue
    case file(String, line: Int)
    case environment(String)
    case credential(String)
    case flag(String)

    var description: String {
        switch self {
        case .defaultValue: "default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let name): "environment \(name)"
        case .credential(let name): "systemd credential \(name)"
        case .flag(let name): "flag \(name)"
        }
    }
}

/// One configuration setting: its key in the file, its environment variables and flag, how its
/// value is checked and applied, whether it is secret, and whether SIGHUP may change it.
struct Setting: Sendable {
    enum Kind: Sendable {
        case string
        case integer(minimum: Int)
        case octalMode
        case logLevel
        case uidList
        case stringList
        case choice([String])
        /// `true`/`false` (a TOML boolean, or that text from the environment).
        case boolean
        /// `HOST:PORT` (`[IPv6]:PORT`), or empty for off.
        case listenAddress
        /// LLM fallbacks: an array of inline tables `{provider?, base_url?, model}` or of strings
        /// `model` / `provider:model` / `provider:model@base_url` (the environment's comma list).
        case fallbackList
        /// Model names, or prefixes ending in `*` (`llm.image_models`); the environment's comma list.
        case modelPatternList
    }

    let key: String
    let flag: String?
    let environment: [String]
    let credential: String?
    /// When the order of `environment` depends on what is already configured (the provider's own
    /// key variable first): given the configuration so far, the variables to try in order.
    let environmentOrder: (@Sendable (DaemonConfiguration) -> [String])?
    let kind: Kind
    let secret: Bool
    let reloadable: Bool
    let apply: @Sendable (inout DaemonConfiguration, ConfigValue) -> Void
    let current: @Sendable (DaemonConfiguration) -> String?

    init(
        _ key: String, flag: String? = nil, environment: [String] = [], credential: String? = nil,
        environmentOrder: (@Sendable (DaemonConfiguration) -> [String])? = nil, kind: Kind, secret: Bool = false, reloadable: Bool = false,
        apply: @escaping @Sendable (inout DaemonConfiguration, ConfigValue) -> Void,
        current: @escaping @Sendable (DaemonConfiguration) -> String?
    ) {
        self.key = key
        self.flag = flag
        self.environment = environment
        self.credential = credential
        self.environmentOrder = environmentOrder
        self.kind = kind
        self.secret = secret
        self.reloadable = reloadable
        self.apply = apply
        self.current = current
    }

    /// Checks `value` (from the file, or text from the environment) and returns it normalised.
    func check(_ value: ConfigValue) -> Result<ConfigValue, SettingProblem> {
        switch kind {
        case .string:
            guard case .string = value else { return .failure(.init("must be a string, got \(value.kindName)")) }
            return .success(value)
        case .integer(let minimum):
            var number: Int?
            if case .integer(let integer) = value { number = integer }
            if case .string(let text) = value { number = Int(text) }
            guard let number else { return .failure(.init("must be an integer, got \(value.kindName)")) }
            guard number >= minimum else { return .failure(.init("must be at least \(minimum), got \(number)")) }
            return .success(.integer(number))
        case .octalMode:
            guard case .string(let text) = value, let mode = Int(text, radix: 8), (0...0o777).contains(mode) else {
                return .failure(.init("must be an octal file mode in quotes, such as \"0600\""))
            }
            return .success(.integer(mode))
        case .logLevel:
            guard case .string(let text) = value, LogLevel(rawValue: text) != nil else {
                return .failure(.init("must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            return .success(value)
        case .boolean:
            switch value {
            case .bool: return .success(value)
            case .string("true"): return .success(.bool(true))
            case .string("false"): return .success(.bool(false))
            default: return .failure(.init("must be true or false, got \(value)"))
            }
        case .choice(let choices):
            guard case .string(let text) = value, choices.contains(text) else {
                return .failure(.init("must be one of \(choices.joined(separator: ", "))"))
            }
            return .success(value)
        case .listenAddress:
            guard case .string(let text) = value, text.isEmpty || ListenAddress(parsing: text) != nil else {
                return .failure(
                    .init(#"must be HOST:PORT, such as "127.0.0.1:9464" ([::1]:9464 for IPv6; port 0 to 65535, 0: any free port), got \#(value)"#))
            }
            return .success(value)
        case .uidList:
            let items: [ConfigValue]
            switch value {
            case .array(let values): items = values
            case .string(let text): items = text.split(separator: ",").map { .string($0.trimmed()) }
            case .integer: items = [value]
            default: return .failure(.init("must be an array of uids"))
            }
            var uids: [ConfigValue] = []
            for item in items {
                switch item {
                case .integer(let uid) where uid >= 0: uids.append(.integer(uid))
                case .string(let text) where UInt32(text) != nil: uids.append(.integer(Int(text)!))
                default: return .failure(.init("must be an array of uids (non-negative integers), got \(item)"))
                }
            }
            return .success(.array(uids))
        case .stringList:
            switch value {
            case .array(let values) where values.allSatisfy({ if case .string = $0 { true } else { false } }):
                return .success(value)
            case .string(let text):
                return .success(.array(text.split(separator: ",").map { .string($0.trimmed()) }))
            default:
                return .failure(.init("must be an array of strings"))
            }
        case .modelPatternList:
            let items: [String]
            switch value {
            case .array(let values) where values.allSatisfy({ if case .string = $0 { true } else { false } }): items = values.map(\.string)
            case .string(let text): items = text.split(separator: ",").map { $0.trimmed() }
            default: return .failure(.init("must be an array of model names (a trailing * for a prefix)"))
            }
            if let problem = items.lazy.compactMap(LLMImageModels.problem(in:)).first { return .failure(.init("has \(problem)")) }
            return .success(.array(items.map(ConfigValue.string)))
        case .fallbackList:
            let items: [ConfigValue]
            switch value {
            case .array(let values): items = values
            case .string(let text): items = text.split(separator: ",").map { .string($0.trimmed()) }
            default: return .failure(.init(#"must be an array of {provider?, base_url?, model} tables or "provider:model@base_url" strings"#))
            }
            var checked: [ConfigValue] = []
            for item in items {
                switch Self.fallback(item) {
                case .success(let fallback): checked.append(.string(fallback.description))
                case .failure(let problem): return .failure(problem)
                }
            }
            return .success(.array(checked))
        }
    }

    /// One fallback, from a string or an inline table.
    static func fallback(_ value: ConfigValue) -> Result<LLMConfiguration.Fallback, SettingProblem> {
        let providers = LLMConfiguration.ProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
        switch value {
        case .string(let text):
            guard let fallback = LLMConfiguration.Fallback(parsing: text) else {
                return .failure(.init(#"has an invalid fallback "\#(text)": use "model", "provider:model" or "provider:model@base_url""#))
            }
            return .success(fallback)
        case .table(let members):
            var fallback = LLMConfiguration.Fallback(model: "")
            for (key, member) in members {
                guard case .string(let text) = member, !text.isEmpty else { return .failure(.init("fallback \(key) must be a non-empty string")) }
                switch key {
                case "model": fallback.model = text
                case "base_url": fallback.baseURL = text
                case "provider":
                    guard let kind = LLMConfiguration.ProviderKind(rawValue: text) else {
                        return .failure(.init("fallback provider must be one of \(providers), got \"\(text)\""))
                    }
                    fallback.provider = kind
                default: return .failure(.init("fallback has an unknown key \(key) (known: provider, base_url, model)"))
                }
            }
            guard !fallback.model.isEmpty else { return .failure(.init("fallback needs a model")) }
            if fallback.baseURL != nil, fallback.provider == nil {
                return .failure(.init("fallback with a base_url needs a provider"))
            }
            return .success(fallback)
        default:
            return .failure(.init("fallback must be a table or a string, got \(value.kindName)"))
        }
    }

    /// The effective value as `--print-config` shows it (secrets masked).
    func shown(_ configuration: DaemonConfiguration) -> String {
        guard let value = current(configuration) else { return "(unset)" }
        return secret ? Self.mask(value) : value
    }

    static func mask(_ secret: String) -> String {
        secret.isEmpty ? "(empty)" : "**** (set, \(secret.utf8.count) characters)"
    }
}

struct SettingProblem: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

extension ConfigValue {
    var string: String {
        if case .string(let value) = self { return value }
        return description
    }

    var integer: Int {
        if case .integer(let value) = self { return value }
        return 0
    }

    var bool: Bool {
        if case .bool(let value) = self { return value }
        return false
    }

    var strings: [String] {
        if case .array(let values) = self { return values.map(\.string) }
        return []
    }

    var integers: [Int] {
        if case .array(let values) = self { return values.map(\.integer) }
        return []
    }
}

/// Every setting agentd has. The table is the single place that names a key, its variables and
/// its flag; `--print-config`, validation and reload all read it.
enum Settings {
    static let all: [Setting] =
        [
            Setting(
                "server.socket", flag: "--socket", environment: [AgentdSocket.environmentVariable], kind: .string,
                apply: { $0.socketPath = $1.string }, current: { $0.socketPath }),
            Setting(
                "server.socket_mode", flag: "--socket-mode", environment: ["AGENTD_SOCKET_MODE"], kind: .octalMode,
                apply: { $0.socketMode = mode_t($1.integer) }, current: { "0" + String($0.socketMode, radix: 8) }),
            Setting(
                "server.socket_group", flag: "--socket-group", environment: ["AGENTD_SOCKET_GROUP"], kind: .string,
                apply: { $0.socketGroup = $1.string }, current: { $0.socketGroup }),
            Setting(
                "server.database", flag: "--database", environment: ["AGENTD_DATABASE"], kind: .string,
                apply: { $0.databasePath = $1.string }, current: { $0.databasePath }),
            // Unset: `blobs` beside the database (`DaemonConfiguration.blobFolder`).
            Setting(
                "files.blob_dir", environment: ["AGENTD_FILES_BLOB_DIR"], kind: .string,
                apply: { $0.blobDirectory = $1.string }, current: { $0.blobDirectory }),
            Setting(
                "server.log_level", flag: "--log-level", environment: ["AGENTD_LOG_LEVEL"], kind: .logLevel, reloadable: true,
                apply: { $0.logLevel = LogLevel(rawValue: $1.string)!.level }, current: { "\($0.logLevel)" }),
            Setting(
                "server.metrics_listen", flag: "--metrics-listen", environment: ["AGENTD_METRICS_LISTEN"], kind: .listenAddress,
                apply: { $0.metricsListen = ListenAddress(parsing: $1.string) }, current: { $0.metricsListen?.description }),
            Setting(
                "server.metrics_max_connections", flag: "--metrics-max-connections", environment: ["AGENTD_METRICS_MAX_CONNECTIONS"],
                kind: .integer(minimum: 1),
                apply: { $0.metricsLimits.maxConnections = $1.integer }, current: { String($0.metricsLimits.maxConnections) }),
            Setting(
                "server.metrics_idle_timeout_ms", flag: "--metrics-idle-timeout-ms", environment: ["AGENTD_METRICS_IDLE_TIMEOUT_MS"],
                kind: .integer(minimum: 1),
                apply: { $0.metricsLimits.idleTimeout = .milliseconds($1.integer) }, current: { String(milliseconds($0.metricsLimits.idleTimeout)) }),
            Setting(
                "server.threads", flag: "--threads", environment: ["AGENTD_THREADS"], kind: .integer(minimum: 1),
                apply: { $0.threads = $1.integer }, current: { String($0.threads) }),
            Setting(
                "server.trusted_uids", flag: "--trusted-uid", environment: ["AGENTD_TRUSTED_UIDS"], kind: .uidList,
                apply: { $0.trustedUIDs = Set($1.integers.map { UInt32($0) }).union([getuid()]) },
                current: { "[" + $0.trustedUIDs.sorted().map(String.init).joined(separator: ", ") + "]" }),
            Setting(
                "limits.rate_limiting", environment: ["AGENTD_RATE_LIMITING"], kind: .choice(["on", "off"]), reloadable: true,
                apply: { $0.limits.rateLimiting = $1.string == "on" }, current: { $0.limits.rateLimiting ? "on" : "off" }),
            Setting(
                "limits.rate_exempt_own_uid", environment: ["AGENTD_RATE_EXEMPT_OWN_UID"], kind: .choice(["on", "off"]), reloadable: true,
                apply: { $0.limits.rateExemptUIDs = $1.string == "on" ? [getuid()] : [] },
                current: { $0.limits.rateExemptUIDs.isEmpty ? "off" : "on" }),
            // A call costs 1 token plus 1 per this many bytes of params (RPCRateClass.cost).
            Setting(
                "limits.rate_bytes_per_token", environment: ["AGENTD_RATE_BYTES_PER_TOKEN"], kind: .integer(minimum: 0), reloadable: true,
                apply: { $0.limits.rateBytesPerToken = $1.integer }, current: { String($0.limits.rateBytesPerToken) }),
            Setting(
                "limits.rate_register_per_minute", environment: ["AGENTD_RATE_REGISTER_PER_MINUTE"], kind: .integer(minimum: 1), reloadable: true,
                apply: { $0.limits.rateClasses["register"]?.perSecond = Double($1.integer) / 60 },
                current: { $0.limits.rateClasses["register"].map { String(Int(($0.perSecond * 60).rounded())) } }),
            Setting(
                "limits.rate_register_burst", environment: ["AGENTD_RATE_REGISTER_BURST"], kind: .integer(minimum: 1), reloadable: true,
                apply: { $0.limits.rateClasses["register"]?.burst = $1.integer },
                current: { $0.limits.rateClasses["register"].map { String($0.burst) } }),
        ] + perSecondRateClasses.map(\.rawValue).flatMap(rateSettings) + [
            limit("max_message_bytes", "--max-message-bytes", minimum: 1, \.maxMessageBytes),
            Setting(
                "limits.max_unauthenticated_message_bytes", environment: ["AGENTD_MAX_UNAUTHENTICATED_MESSAGE_BYTES"], kind: .integer(minimum: 1024),
                reloadable: true, apply: { $0.limits.maxUnauthenticatedMessageBytes = $1.integer },
                current: { String($0.limits.maxUnauthenticatedMessageBytes) }),
            limit("max_json_depth", "--max-json-depth", minimum: 1, \.maxJSONDepth),
            limit("max_batch_length", "--max-batch-length", minimum: 1, \.maxBatchLength),
            limit("max_in_flight", "--max-in-flight", minimum: 1, \.maxInFlightPerConnection),
            limit("max_connections", "--max-connections", minimum: 1, \.maxConnections),
            limit("max_connections_per_uid", "--max-connections-per-uid", minimum: 1, \.maxConnectionsPerUID),
            // At least 64 KiB: any chat (title and preview are short) fits alone, whatever its text.
            Setting(
                "limits.reply_budget_bytes", flag: "--reply-budget-bytes", environment: ["AGENTD_REPLY_BUDGET_BYTES"], kind: .integer(minimum: 65536),
                apply: { $0.replyBudget = ReplyBudget(bytes: $1.integer) }, current: { String($0.replyBudget.bytes) }),
            limit(
                "max_queued_reply_bytes_per_connection", "--max-queued-reply-bytes-per-connection", minimum: 65536, \.maxQueuedReplyBytesPerConnection
            ),
            limit("max_queued_reply_bytes", "--max-queued-reply-bytes", minimum: 65536, \.maxQueuedReplyBytes),
            Setting(
                "limits.request_timeout_ms", flag: "--request-timeout-ms", environment: ["AGENTD_REQUEST_TIMEOUT_MS"], kind: .integer(minimum: 1),
                reloadable: true,
                apply: { $0.limits.requestTimeout = .milliseconds($1.integer) }, current: { String(milliseconds($0.limits.requestTimeout)) }),
            Setting(
                "limits.drain_timeout_ms", flag: "--drain-timeout-ms", environment: ["AGENTD_DRAIN_TIMEOUT_MS"], kind: .integer(minimum: 0),
                reloadable: true,
                apply: { $0.limits.drainTimeout = .milliseconds($1.integer) }, current: { String(milliseconds($0.limits.drainTimeout)) }),
            Setting(
                "limits.frame_timeout_ms", flag: "--frame-timeout-ms", environment: ["AGENTD_FRAME_TIMEOUT_MS"], kind: .integer(minimum: 0),
                reloadable: true,
                apply: { $0.limits.frameTimeout = .milliseconds($1.integer) }, current: { String(milliseconds($0.limits.frameTimeout)) }),
            // Not reloadable: the stores enforce it from their start.
            Setting(
                "limits.storage_quota_bytes", flag: "--storage-quota-bytes", environment: ["AGENTD_STORAGE_QUOTA_BYTES"], kind: .integer(minimum: 0),
                apply: { $0.storageQuota = StorageQuota(limitBytes: Int64($1.integer)) }, current: { String($0.storageQuota.limitBytes) }),
            Setting(
                "llm.provider", environment: ["AGENTD_LLM_PROVIDER"], kind: .choice(LLMConfiguration.ProviderKind.allCases.map(\.rawValue)),
                reloadable: true,
                apply: { $0.llm.provider = LLMConfiguration.ProviderKind(rawValue: $1.string)! }, current: { $0.llm.provider.rawValue }),
            Setting(
                "llm.base_url", environment: ["AGENTD_LLM_BASE_URL"], kind: .string, reloadable: true,
                apply: { $0.llm.baseURL = $1.string }, current: { $0.llm.baseURL }),
            // The provider's own variable first: AZURE_OPENAI_API_KEY before OPENAI_API_KEY for azure.
            Setting(
                "llm.api_key", environment: ["AGENTD_LLM_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"], credential: "llm-api-key",
                environmentOrder: {
                    $0.llm.provider == .azure
                        ? ["AGENTD_LLM_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"]
                        : ["AGENTD_LLM_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"]
                },
                kind: .string, secret: true, reloadable: true, apply: { $0.llm.apiKey = $1.string }, current: { $0.llm.apiKey }),
            Setting(
                "llm.model", environment: ["AGENTD_LLM_MODEL"], kind: .string, reloadable: true,
                apply: { $0.llm.model = $1.string }, current: { $0.llm.model }),
            Setting(
                "llm.azure_deployment", environment: ["AGENTD_LLM_AZURE_DEPLOYMENT"], kind: .string, reloadable: true,
                apply: { $0.llm.azureDeployment = $1.string }, current: { $0.llm.azureDeployment }),
            Setting(
                "llm.azure_api_version", environment: ["AGENTD_LLM_AZURE_API_VERSION"], kind: .string, reloadable: true,
                apply: { $0.llm.azureAPIVersion = $1.string }, current: { $0.llm.azureAPIVersion }),
            Setting(
                "llm.timeout_seconds", environment: ["AGENTD_LLM_TIMEOUT_SECONDS"], kind: .integer(minimum: 1), reloadable: true,
                apply: { $0.llm.timeoutSeconds = $1.integer }, current: { String($0.llm.timeoutSeconds) }),
            Setting(
                "llm.max_retries", environment: ["AGENTD_LLM_MAX_RETRIES"], kind: .integer(minimum: 0), reloadable: true,
                apply: { $0.llm.maxRetries = $1.integer }, current: { String($0.llm.maxRetries) }),
            Setting(
                "llm.fallbacks", environment: ["AGENTD_LLM_FALLBACKS"], kind: .fallbackList, reloadable: true,
                apply: { $0.llm.fallbacks = $1.strings.compactMap(LLMConfiguration.Fallback.init(parsing:)) },
                current: { "[" + $0.llm.fallbacks.map(\.description).joined(separator: ", ") + "]" }),
            Setting(
                "llm.context_window", environment: ["AGENTD_LLM_CONTEXT_WINDOW"], kind: .integer(minimum: 256), reloadable: true,
                apply: { $0.llm.contextWindow = $1.integer }, current: { $0.llm.contextWindow.map(String.init) }),
            Setting(
                "llm.image_models", environment: ["AGENTD_LLM_IMAGE_MODELS"], kind: .modelPatternList, reloadable: true,
                apply: { $0.llm.imageModels = $1.strings }, current: { "[" + $0.llm.imageModels.joined(separator: ", ") + "]" }),
            // Not reloadable: the agent is built with or without its title jobs.
            Setting(
                "agent.auto_title", environment: ["AGENTD_AGENT_AUTO_TITLE"], kind: .boolean,
                apply: { $0.autoTitle = $1.bool }, current: { $0.autoTitleEnabled ? "true" : "false" }),
            Setting(
                "search.tavily_api_key", environment: ["AGENTD_TAVILY_API_KEY", "TAVILY_API_KEY"], credential: "tavily-api-key",
                kind: .string, secret: true, reloadable: true, apply: { $0.search.tavilyAPIKey = $1.string }, current: { $0.search.tavilyAPIKey }),
            Setting(
                "cache.enabled", environment: ["AGENTD_CACHE"], kind: .choice(["on", "off"]),
                apply: { $0.cache.enabled = $1.string == "on" }, current: { $0.cache.enabled ? "on" : "off" }),
            Setting(
                "cache.max_entries", environment: ["AGENTD_CACHE_MAX_ENTRIES"], kind: .integer(minimum: 1),
                apply: { $0.cache.maxEntries = $1.integer }, current: { String($0.cache.maxEntries) }),
            Setting(
                "cache.max_bytes", environment: ["AGENTD_CACHE_MAX_BYTES"], kind: .integer(minimum: 65536),
                apply: { $0.cache.maxBytes = $1.integer }, current: { String($0.cache.maxBytes) }),
            Setting(
                "events.queue_capacity", environment: ["AGENTD_EVENTS_QUEUE_CAPACITY"], kind: .integer(minimum: 1),
                apply: { $0.events.queueCapacity = $1.integer }, current: { String($0.events.queueCapacity) }),
            Setting(
                "events.max_subscriptions_per_connection", environment: ["AGENTD_EVENTS_MAX_SUBSCRIPTIONS_PER_CONNECTION"],
                kind: .integer(minimum: 1),
                apply: { $0.events.maxSubscriptionsPerConnection = $1.integer }, current: { String($0.events.maxSubscriptionsPerConnection) }),
            Setting(
                "events.retention_days", environment: ["AGENTD_EVENTS_RETENTION_DAYS"], kind: .integer(minimum: 1),
                apply: { $0.events.retentionAge = TimeInterval($1.integer) * 24 * 3600 },
                current: { String(Int($0.events.retentionAge / (24 * 3600))) }),
            Setting(
                "events.retention_count", environment: ["AGENTD_EVENTS_RETENTION_COUNT"], kind: .integer(minimum: 1),
                apply: { $0.events.retentionCount = $1.integer }, current: { String($0.events.retentionCount) }),
            Setting(
                "auth.session_lifetime_seconds", environment: ["AGENTD_AUTH_SESSION_LIFETIME_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.auth.sessionLifetime = TimeInterval($1.integer) }, current: { String(Int($0.auth.sessionLifetime)) }),
            Setting(
                "auth.allow_registration", environment: ["AGENTD_AUTH_ALLOW_REGISTRATION"], kind: .boolean,
                apply: { $0.auth.allowRegistration = $1.bool }, current: { $0.auth.allowRegistration ? "true" : "false" }),
            Setting(
                "auth.hash_threads", environment: ["AGENTD_AUTH_HASH_THREADS"], kind: .integer(minimum: 0),
                apply: { $0.passwordHashing.threads = $1.integer }, current: { String($0.passwordHashing.threads) }),
            Setting(
                "auth.max_waiting_hashes", environment: ["AGENTD_AUTH_MAX_WAITING_HASHES"], kind: .integer(minimum: 0),
                apply: { $0.passwordHashing.maxWaiting = $1.integer }, current: { String($0.passwordHashing.maxWaiting) }),
            Setting(
                "audit.retention_days", environment: ["AGENTD_AUDIT_RETENTION_DAYS"], kind: .integer(minimum: 1),
                apply: { $0.audit.retentionAge = TimeInterval($1.integer) * 24 * 3600 }, current: { String(Int($0.audit.retentionAge / (24 * 3600))) }
            ),
            Setting(
                "audit.retention_count", environment: ["AGENTD_AUDIT_RETENTION_COUNT"], kind: .integer(minimum: 1),
                apply: { $0.audit.retentionCount = $1.integer }, current: { String($0.audit.retentionCount) }),
            Setting(
                "search.tavily_base_url", environment: ["AGENTD_TAVILY_BASE_URL"], kind: .string, reloadable: true,
                apply: { $0.search.tavilyBaseURL = $1.string }, current: { $0.search.tavilyBaseURL }),
            Setting(
                "events.prune_interval_seconds", environment: ["AGENTD_EVENTS_PRUNE_INTERVAL_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.jobs.eventsPruneInterval = .seconds($1.integer) }, current: { String($0.jobs.eventsPruneInterval.components.seconds) }),
            Setting(
                "audit.prune_interval_seconds", environment: ["AGENTD_AUDIT_PRUNE_INTERVAL_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.jobs.auditPruneInterval = .seconds($1.integer) }, current: { String($0.jobs.auditPruneInterval.components.seconds) }),
            Setting(
                "jobs.retention_days", environment: ["AGENTD_JOBS_RETENTION_DAYS"], kind: .integer(minimum: 1),
                apply: { $0.jobs.retentionAge = TimeInterval($1.integer) * 24 * 3600 }, current: { String(Int($0.jobs.retentionAge / (24 * 3600))) }),
            Setting(
                "jobs.prune_interval_seconds", environment: ["AGENTD_JOBS_PRUNE_INTERVAL_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.jobs.pruneInterval = .seconds($1.integer) }, current: { String($0.jobs.pruneInterval.components.seconds) }),
            // Not reloadable: the files service is built with them.
            Setting(
                "files.max_file_bytes", environment: ["AGENTD_FILES_MAX_FILE_BYTES"], kind: .integer(minimum: 1),
                apply: { $0.files.maxFileBytes = Int64($1.integer) }, current: { String($0.files.maxFileBytes) }),
            Setting(
                "files.max_open_uploads", environment: ["AGENTD_FILES_MAX_OPEN_UPLOADS"], kind: .integer(minimum: 1),
                apply: { $0.files.maxOpenUploads = $1.integer }, current: { String($0.files.maxOpenUploads) }),
            Setting(
                "files.upload_ttl_seconds", environment: ["AGENTD_FILES_UPLOAD_TTL_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.files.uploadTTL = TimeInterval($1.integer) }, current: { String(Int($0.files.uploadTTL)) }),
            Setting(
                "files.uploads_expire_interval_seconds", environment: ["AGENTD_FILES_UPLOADS_EXPIRE_INTERVAL_SECONDS"], kind: .integer(minimum: 1),
                apply: { $0.files.expireInterval = .seconds($1.integer) }, current: { String($0.files.expireInterval.components.seconds) }),
            Setting(
                "files.blob_delete_delay_seconds", environment: ["AGENTD_FILES_BLOB_DELETE_DELAY_SECONDS"], kind: .integer(minimum: 0),
                apply: { $0.files.blobDeleteDelay = .seconds($1.integer) }, current: { String($0.files.blobDeleteDelay.components.seconds) }),
            Setting(
                "jobs.poll_interval_ms", environment: ["AGENTD_JOBS_POLL_INTERVAL_MS"], kind: .integer(minimum: 10),
                apply: { $0.jobs.pollInterval = .milliseconds($1.integer) }, current: { String(milliseconds($0.jobs.pollInterval)) }),
        ] + JobsSettings.kinds.map(jobConcurrencySetting)

    static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    /// `jobs.concurrency.<kind>`: unset, the kind's own concurrency (`JobKindPolicy.concurrency`).
    private static func jobConcurrencySetting(_ kind: String) -> Setting {
        let key = JobsSettings.concurrencyKey(kind: kind)
        return Setting(
            key, environment: ["AGENTD_" + key.replacingOccurrences(of: ".", with: "_").uppercased()], kind: .integer(minimum: 1),
            apply: { $0.jobs.concurrency[kind] = $1.integer }, current: { $0.jobs.concurrency[kind].map(String.init) })
    }

    private static func limit(_ name: String, _ flag: String, minimum: Int, _ path: WritableKeyPath<RPCLimits, Int> & Sendable) -> Setting {
        Setting(
            "limits." + name, flag: flag, environment: ["AGENTD_" + name.uppercased()], kind: .integer(minimum: minimum), reloadable: true,
            apply: { $0.limits[keyPath: path] = $1.integer }, current: { String($0.limits[keyPath: path]) })
    }

    /// The rate classes set per second (`limits.rate_<class>_per_second`); `register` is set per
    /// minute (`limits.rate_register_per_minute`), and `exempt` is never limited.
    private static let perSecondRateClasses: [RPCRateClassName] = [.read, .write, .expensive, .auth, .agent, .upload]

    /// `limits.rate_<class>_per_second` and `limits.rate_<class>_burst`.
    private static func rateSettings(_ name: String) -> [Setting] {
        let defaults = RPCLimits.defaultRateClasses[name]!
        @Sendable func update(_ configuration: inout DaemonConfiguration, _ change: (inout RPCRateClass) -> Void) {
            var rateClass = configuration.limits.rateClasses[name] ?? defaults
            change(&rateClass)
            configuration.limits.rateClasses[name] = rateClass
        }
        return [
            Setting(
                "limits.rate_\(name)_per_second", environment: ["AGENTD_RATE_\(name.uppercased())_PER_SECOND"], kind: .integer(minimum: 1),
                reloadable: true,
                apply: { configuration, value in update(&configuration) { $0.perSecond = Double(value.integer) } },
                current: { String(Int($0.limits.rateClasses[name]?.perSecond ?? defaults.perSecond)) }),
            Setting(
                "limits.rate_\(name)_burst", environment: ["AGENTD_RATE_\(name.uppercased())_BURST"], kind: .integer(minimum: 1), reloadable: true,
                apply: { configuration, value in update(&configuration) { $0.burst = value.integer } },
                current: { String($0.limits.rateClasses[name]?.burst ?? defaults.burst) }),
        ]
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// Builds the effective configuration: defaults, then the file, then the environment and systemd
/// credentials, then flags (flags > env > file > defaults). Remembers where each value came from.
struct ConfigurationLoader {
    /// Values given as flags, by setting key.
    var flags: [String: ConfigValue] = [:]
    /// `--config`, when given: must exist. Otherwise the user's file, then /etc's, when present.
    var explicitFile: String?
    var environment: [String: String] = ProcessInfo.processInfo.environment

    struct Loaded {
        var configuration: DaemonConfiguration
        var sources: [String: SettingSource]
        var file: String?
    }

    /// The configuration file to read, if any.
    func configFile() throws -> String? {
        if let explicitFile {
            guard access(explicitFile, R_OK) == 0 else {
                throw DaemonError("cannot read configuration file \(explicitFile): \(errnoDescription())")
            }
            return explicitFile
        }
        let user =
            (environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? FileSystem.homeDirectory() + "/.config")
            + "/agentd/agentd.toml"
        for candidate in [user, "/etc/agentd/agentd.toml"] where access(candidate, F_OK) == 0 {
            return candidate
        }
        return nil
    }

    func load(base: DaemonConfiguration) throws -> Loaded {
        var configuration = base
        var sources: [String: SettingSource] = [:]
        for setting in Settings.all { sources[setting.key] = .defaultValue }

        func apply(_ setting: Setting, _ value: ConfigValue, from source: SettingSource, what: String) throws {
            switch setting.check(value) {
            case .success(let checked):
                setting.apply(&configuration, checked)
                sources[setting.key] = source
            case .failure(let problem):
                throw DaemonError("\(what): \(setting.key) \(problem.reason)")
            }
        }

        let file = try configFile()
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw DaemonError("cannot read configuration file \(file): \(error.localizedDescription)")
            }
            let entries: [TOMLReader.Entry]
            do {
                entries = try TOMLReader.read(text)
            } catch {
                throw DaemonError("\(file): \(error)")
            }
            for entry in entries {
                guard let setting = Settings.byKey[entry.key] else {
                    let known = Settings.all.map(\.key).filter { $0.hasPrefix(entry.key.split(separator: ".").first.map(String.init) ?? "") }
                    throw DaemonError(
                        "\(file):\(entry.line): unknown key \(entry.key)" + (known.isEmpty ? "" : " (known here: \(known.joined(separator: ", ")))"))
                }
                try apply(setting, entry.value, from: .file(file, line: entry.line), what: "\(file):\(entry.line)")
            }
        }
        let credentials = environment["CREDENTIALS_DIRECTORY"]
        for setting in Settings.all {
            // The first variable named wins (AGENTD_LLM_API_KEY before OPENAI_API_KEY).
            if let name = (setting.environmentOrder?(configuration) ?? setting.environment).first(where: {
                environment[$0].map { !$0.isEmpty } ?? false
            }) {
                try apply(setting, .string(environment[name]!), from: .environment(name), what: "environment \(name)")
            }
            // An empty credential file means "not configured" (make install creates them empty so that
            // the unit's LoadCredential= lines always find their file).
            if let credential = setting.credential, let directory = credentials,
                let secret = try? String(contentsOfFile: directory + "/" + credential, encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines), !secret.isEmpty
            {
                try apply(setting, .string(secret), from: .credential(credential), what: "credential \(credential)")
            }
        }
        for setting in Settings.all {
            if let value = flags[setting.key] {
                try apply(setting, value, from: .flag(setting.flag ?? setting.key), what: "flag \(setting.flag ?? setting.key)")
            }
        }
        return Loaded(configuration: configuration, sources: sources, file: file)
    }

    /// `agentd --print-config`: every setting, its effective value (secrets masked) and its source.
    static func describe(_ loaded: Loaded) -> String {
        var lines = ["# effective configuration" + (loaded.file.map { " (file: \($0))" } ?? " (no configuration file)")]
        let width = Settings.all.map { $0.key.count }.max() ?? 0
        for setting in Settings.all {
            let padded = setting.key.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append("\(padded) = \(setting.shown(loaded.configuration))    # \(loaded.sources[setting.key] ?? .defaultValue)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
