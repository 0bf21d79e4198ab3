import Services

/// The provider when none is configured: every request fails with `LLMError(.notConfigured)`
/// naming the settings to set, so everything else in agentd works without a provider.
struct UnconfiguredLLMProvider: LLMProvider {
    static let missingSettings = ["llm.api_key (AGENTD_LLM_API_KEY or OPENAI_API_KEY)", "llm.model (AGENTD_LLM_MODEL)"]

    var name: String { "unconfigured" }
    var defaultModel: String? { nil }
    var missingSettings = Self.missingSettings

    func contextWindow(model: String) -> Int { 128_000 }

    func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        let error = LLMError(
            .notConfigured, "no LLM provider is configured: set " + missingSettings.joined(separator: " and "), provider: name,
            missingSettings: missingSettings)
        return AsyncThrowingStream { $0.finish(throwing: error) }
    }
}
