import Logging

/// Builds the configured provider — retries around each member, fallbacks in order — and the web
/// search client. The composition root calls it (again after a reload); no service builds a
/// provider itself.
///
/// ```swift
/// let factory = LLMProviderFactory(client: curl, logger: logger, metrics: LLMMetrics(factory: metricsFactory))
/// let provider = factory.makeProvider(configuration.llm)      // never nil: see UnconfiguredLLMProvider
/// let search = factory.makeWebSearchClient(configuration.search)   // nil without a Tavily key
/// ```
public struct LLMProviderFactory: Sendable {
    public let client: any HTTPClient
    public let clock: any WallClock
    /// Shared by every provider this factory builds, so a model's refused parameters are learnt once.
    public let drift: LLMParameterDrift
    public let metrics: LLMMetrics?
    public let logger: Logger?
    public let sleep: RetryingLLMProvider.Sleeper
    public let random: @Sendable () -> Double

    public init(
        client: any HTTPClient, clock: any WallClock = SystemClock(), drift: LLMParameterDrift = LLMParameterDrift(), metrics: LLMMetrics? = nil,
        logger: Logger? = nil, sleep: @escaping RetryingLLMProvider.Sleeper = { try await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.client = client
        self.clock = clock
        self.drift = drift
        self.metrics = metrics
        self.logger = logger
        self.sleep = sleep
        self.random = random
    }

    /// The provider for `configuration`: `UnconfiguredLLMProvider` when settings are missing (its
    /// `stream` fails at once with `.notConfigured` naming them), else the provider wrapped in
    /// `RetryingLLMProvider` (`max_retries`), and in `FallbackLLMProvider` when fallbacks are set.
    ///
    /// A fallback's provider defaults to the primary's; it inherits the primary's base URL and key
    /// when it has the same provider and no base URL of its own; an `openai-compatible` fallback
    /// with its own base URL sends no key; an `openai` one without a base URL uses OpenAI's.
    public func makeProvider(_ configuration: LLMConfiguration) -> any LLMProvider {
        let missing = configuration.missingSettings
        guard missing.isEmpty else { return UnconfiguredLLMProvider(configuration: configuration) }
        let policy = LLMRetryPolicy(maxRetries: configuration.maxRetries)
        let primary = retrying(
            OpenAIFamilyProvider(configuration: configuration, client: client, clock: clock, drift: drift, metrics: metrics, logger: logger), policy)
        guard !configuration.fallbacks.isEmpty else { return primary }
        var members = [FallbackLLMProvider.Member(primary)]
        for fallback in configuration.fallbacks {
            var member = configuration
            member.fallbacks = []
            member.model = fallback.model
            member.azureDeployment = nil
            let kind = fallback.provider ?? configuration.provider
            if kind != configuration.provider || fallback.baseURL != nil {
                member.provider = kind
                member.baseURL = fallback.baseURL
                if kind == .openAICompatible, fallback.baseURL != nil { member.apiKey = nil }
                if kind == .azure { member.azureAPIVersion = configuration.azureAPIVersion }
            }
            guard member.missingSettings.isEmpty else {
                logger?.warning("ignoring an incomplete LLM fallback", metadata: ["fallback": "\(fallback)", "missing": "\(member.missingSettings)"])
                continue
            }
            let provider = OpenAIFamilyProvider(configuration: member, client: client, clock: clock, drift: drift, metrics: metrics, logger: logger)
            members.append(FallbackLLMProvider.Member(retrying(provider, policy), model: fallback.model))
        }
        return members.count == 1 ? primary : FallbackLLMProvider(members, logger: logger)
    }

    /// Tavily, or nil when no key is configured (the agent then reports search as not configured,
    /// naming `WebSearchConfiguration.missingSettings`).
    public func makeWebSearchClient(_ configuration: WebSearchConfiguration) -> (any WebSearchClient)? {
        guard configuration.missingSettings.isEmpty else { return nil }
        return TavilyClient(configuration: configuration, client: client, clock: clock)
    }

    private func retrying(_ provider: any LLMProvider, _ policy: LLMRetryPolicy) -> any LLMProvider {
        policy.maxRetries == 0 ? provider : RetryingLLMProvider(provider, policy: policy, logger: logger, sleep: sleep, random: random)
    }
}

/// The provider when settings are missing: everything else in agentd works; the agent's call fails
/// at once with `.notConfigured` naming what to set.
public struct UnconfiguredLLMProvider: LLMProvider {
    public let configuration: LLMConfiguration

    public init(configuration: LLMConfiguration) {
        self.configuration = configuration
    }

    public var name: String { configuration.provider.rawValue }
    public var defaultModel: String? { configuration.model }
    public func contextWindow(model: String) -> Int { configuration.contextWindow ?? LLMContextWindows.window(for: model) }
    public func acceptsImages(model: String) -> Bool { LLMImageModels(patterns: configuration.imageModels).accepts(model) }

    /// Names every setting still to set: what the factory needed, and `llm.model` when none is
    /// configured (a request may name its own model, but a first-time user needs one default).
    public var error: LLMError {
        var missing = configuration.missingSettings
        if !configuration.hasDefaultModel { missing.append(configuration.modelSetting) }
        return LLMError(
            .notConfigured, "set " + missing.joined(separator: " and ") + " to use the \(configuration.provider.rawValue) provider", provider: name,
            missingSettings: missing)
    }

    public func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        AsyncThrowingStream { $0.finish(throwing: error) }
    }
}
