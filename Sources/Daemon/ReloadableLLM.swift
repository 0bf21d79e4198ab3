import Logging
import Services
import Synchronization

/// The configured provider and web search, rebuilt from `[llm]` and `[search]` when a reload
/// (SIGHUP) changes them: a rotated key or a new model applies without a restart. The agent holds
/// the forwarding `provider`/`webSearch`; a run already streaming keeps the provider it started with.
final class ReloadableLLM: Sendable {
    private struct Current: Sendable {
        var llm: LLMConfiguration
        var search: WebSearchConfiguration
        var provider: any LLMProvider
        var webSearch: (any WebSearchClient)?
    }

    private let factory: LLMProviderFactory
    private let current: Mutex<Current>

    init(factory: LLMProviderFactory, llm: LLMConfiguration, search: WebSearchConfiguration) {
        self.factory = factory
        current = Mutex(Current(llm: llm, search: search, provider: factory.makeProvider(llm), webSearch: factory.makeWebSearchClient(search)))
    }

    /// Rebuilds what changed; the same configuration keeps the same objects (and so the provider's
    /// learnt parameter drift and its connections).
    func update(llm: LLMConfiguration, search: WebSearchConfiguration) {
        current.withLock { current in
            if current.llm != llm {
                current.llm = llm
                current.provider = factory.makeProvider(llm)
            }
            if current.search != search {
                current.search = search
                current.webSearch = factory.makeWebSearchClient(search)
            }
        }
    }

    var provider: any LLMProvider { Forwarding(owner: self) }
    var webSearch: any WebSearchClient { ForwardingSearch(owner: self) }

    fileprivate var currentProvider: any LLMProvider { current.withLock { $0.provider } }
    fileprivate var currentSearch: (any WebSearchClient)? { current.withLock { $0.webSearch } }
    fileprivate var missingSearchSettings: [String] { current.withLock { $0.search.missingSettings } }

    private struct Forwarding: LLMProvider {
        let owner: ReloadableLLM
        var name: String { owner.currentProvider.name }
        var defaultModel: String? { owner.currentProvider.defaultModel }
        func contextWindow(model: String) -> Int { owner.currentProvider.contextWindow(model: model) }
        func acceptsImages(model: String) -> Bool { owner.currentProvider.acceptsImages(model: model) }
        func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> { owner.currentProvider.stream(request) }
    }

    private struct ForwardingSearch: WebSearchClient {
        let owner: ReloadableLLM
        var isConfigured: Bool { owner.currentSearch != nil }
        func search(_ query: WebSearchQuery) async throws -> WebSearchResponse {
            guard let client = owner.currentSearch else {
                throw LLMError(.notConfigured, "web search needs a Tavily API key", provider: "tavily", missingSettings: owner.missingSearchSettings)
            }
            return try await client.search(query)
        }
    }
}
