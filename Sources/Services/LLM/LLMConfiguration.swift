import Foundation

/// The configured provider (`[llm]` in agentd.toml, `AGENTD_LLM_*`), as `LLMProviderFactory` reads
/// it. Its `description` masks the key, so logging the value never leaks it.
public struct LLMConfiguration: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum ProviderKind: String, Sendable, Equatable, CaseIterable {
        case openai
        case azure
        case openAICompatible = "openai-compatible"
    }

    /// Another provider or model tried, in order, when the primary fails before its first delta.
    public struct Fallback: Sendable, Equatable, CustomStringConvertible {
        /// nil: the primary's provider.
        public var provider: ProviderKind?
        /// nil: the primary's base URL when the provider is the same, else the provider's default.
        public var baseURL: String?
        public var model: String

        public init(provider: ProviderKind? = nil, baseURL: String? = nil, model: String) {
            self.provider = provider
            self.baseURL = baseURL
            self.model = model
        }

        /// `model`, `provider:model` or `provider:model@base_url` (the form of `AGENTD_LLM_FALLBACKS`
        /// items and of strings in `llm.fallbacks`).
        public init?(parsing text: String) {
            var rest = Substring(text.trimmingCharacters(in: .whitespaces))
            var provider: ProviderKind?
            if let colon = rest.firstIndex(of: ":"), let kind = ProviderKind(rawValue: String(rest[..<colon])) {
                provider = kind
                rest = rest[rest.index(after: colon)...]
            }
            var baseURL: String?
            if provider != nil, let at = rest.firstIndex(of: "@") {
                baseURL = String(rest[rest.index(after: at)...])
                rest = rest[..<at]
            }
            guard !rest.isEmpty, baseURL.map({ !$0.isEmpty }) ?? true else { return nil }
            self.init(provider: provider, baseURL: baseURL, model: String(rest))
        }

        public var description: String {
            guard let provider else { return model }
            return provider.rawValue + ":" + model + (baseURL.map { "@" + $0 } ?? "")
        }
    }

    public var provider: ProviderKind
    /// OpenAI: defaults to `https://api.openai.com/v1`. Azure: the resource endpoint
    /// (`https://NAME.openai.azure.com`, or its `/openai/v1` form). OpenAI-compatible: the server's
    /// base, such as `http://localhost:11434/v1`.
    public var baseURL: String?
    public var apiKey: String?
    /// The model used when a request names none. With Azure's classic form, the deployment.
    public var model: String?
    /// Azure classic form (`/openai/deployments/{deployment}/…?api-version=…`); when unset, the
    /// `/openai/v1/` form is used and `model` names the deployment.
    public var azureDeployment: String?
    /// Azure classic form; defaults to `LLMConfiguration.defaultAzureAPIVersion` when a deployment is set.
    public var azureAPIVersion: String?
    public var timeoutSeconds: Int
    public var maxRetries: Int
    public var fallbacks: [Fallback]
    /// Overrides the table of well-known models (`LLMContextWindows`) for every model.
    public var contextWindow: Int?
    /// The models that take images (`llm.image_models`: names, or prefixes ending in `*`).
    public var imageModels: [String]

    public static let defaultOpenAIBaseURL = "https://api.openai.com/v1"
    public static let defaultAzureAPIVersion = "2024-10-21"

    public init(
        provider: ProviderKind = .openai, baseURL: String? = nil, apiKey: String? = nil, model: String? = nil, azureDeployment: String? = nil,
        azureAPIVersion: String? = nil, timeoutSeconds: Int = 120, maxRetries: Int = 2, fallbacks: [Fallback] = [], contextWindow: Int? = nil,
        imageModels: [String] = LLMImageModels.defaultPatterns
    ) {
        self.imageModels = imageModels
        self.provider = provider
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.model = model
        self.azureDeployment = azureDeployment
        self.azureAPIVersion = azureAPIVersion
        self.timeoutSeconds = timeoutSeconds
        self.maxRetries = maxRetries
        self.fallbacks = fallbacks
        self.contextWindow = contextWindow
    }

    /// The setting that names the default model, as a `notConfigured` error names it.
    public var modelSetting: String {
        provider == .azure ? "llm.azure_deployment or llm.model (AGENTD_LLM_MODEL)" : "llm.model (AGENTD_LLM_MODEL)"
    }

    /// True when requests that name no model still have one (the model, or Azure's deployment).
    public var hasDefaultModel: Bool {
        !model.isBlank || (provider == .azure && !azureDeployment.isBlank)
    }

    /// The settings still needed before a provider can be called, as the `notConfigured` error
    /// names them; empty when the configuration is usable.
    public var missingSettings: [String] {
        var missing: [String] = []
        switch provider {
        case .openai:
            if apiKey.isBlank { missing.append("llm.api_key (AGENTD_LLM_API_KEY or OPENAI_API_KEY)") }
        case .azure:
            if baseURL.isBlank { missing.append("llm.base_url (AGENTD_LLM_BASE_URL): the resource endpoint, https://NAME.openai.azure.com") }
            if apiKey.isBlank { missing.append("llm.api_key (AGENTD_LLM_API_KEY or AZURE_OPENAI_API_KEY)") }
        case .openAICompatible:
            if baseURL.isBlank { missing.append("llm.base_url (AGENTD_LLM_BASE_URL): the server's base, such as http://localhost:11434/v1") }
        }
        return missing
    }

    public var description: String {
        "LLMConfiguration(provider: \(provider.rawValue), baseURL: \(baseURL ?? "default"), apiKey: \(apiKey.isBlank ? "unset" : "set"), "
            + "model: \(model ?? "unset"), azureDeployment: \(azureDeployment ?? "unset"), azureAPIVersion: \(azureAPIVersion ?? "unset"), "
            + "timeoutSeconds: \(timeoutSeconds), maxRetries: \(maxRetries), fallbacks: \(fallbacks.map(\.description)), "
            + "contextWindow: \(contextWindow.map(String.init) ?? "table"), imageModels: \(imageModels))"
    }

    public var debugDescription: String { description }
}

/// Web search (`[search]`): Tavily. No key, no client: the agent reports search as not configured.
public struct WebSearchConfiguration: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var tavilyAPIKey: String?
    public var tavilyBaseURL: String
    public var timeoutSeconds: Int

    public static let defaultTavilyBaseURL = "https://api.tavily.com"

    public init(tavilyAPIKey: String? = nil, tavilyBaseURL: String = defaultTavilyBaseURL, timeoutSeconds: Int = 60) {
        self.tavilyAPIKey = tavilyAPIKey
        self.tavilyBaseURL = tavilyBaseURL
        self.timeoutSeconds = timeoutSeconds
    }

    /// What the agent says is missing when a run asks for web search without a key.
    public var missingSettings: [String] {
        tavilyAPIKey.isBlank ? ["search.tavily_api_key (AGENTD_TAVILY_API_KEY or TAVILY_API_KEY)"] : []
    }

    public var description: String {
        "WebSearchConfiguration(tavilyAPIKey: \(tavilyAPIKey.isBlank ? "unset" : "set"), tavilyBaseURL: \(tavilyBaseURL))"
    }

    public var debugDescription: String { description }
}

extension Optional where Wrapped == String {
    var isBlank: Bool { self?.trimmingCharacters(in: .whitespaces).isEmpty ?? true }
}
