/// A web search API (Tavily). The agent runs the model's `web_search` tool calls through it.
public protocol WebSearchClient: Sendable {
    /// Throws `LLMError` (the same taxonomy as the providers: 401 authentication, 429 rate limited,
    /// 432/433 quota exhausted, 5xx upstream unavailable, timeouts).
    func search(_ query: WebSearchQuery) async throws -> WebSearchResponse
    /// False while no key is configured (a client that follows reloads): the agent then refuses
    /// `webSearch: true` before calling the model.
    var isConfigured: Bool { get }
}

extension WebSearchClient {
    public var isConfigured: Bool { true }
}

public struct WebSearchQuery: Sendable, Equatable, Codable {
    public var query: String
    public var maxResults: Int

    public init(query: String, maxResults: Int = 5) {
        self.query = query
        self.maxResults = maxResults
    }
}

public struct WebSearchResponse: Sendable, Equatable, Codable {
    public var query: String
    public var results: [WebSearchResult]
    /// Tavily's `request_id`, to quote to its support.
    public var requestId: String?
    /// Credits the search used (Tavily's `usage.credits`), when reported.
    public var credits: Int?
    public var responseTimeSeconds: Double?

    public init(query: String, results: [WebSearchResult], requestId: String?, credits: Int?, responseTimeSeconds: Double?) {
        self.query = query
        self.results = results
        self.requestId = requestId
        self.credits = credits
        self.responseTimeSeconds = responseTimeSeconds
    }
}

public struct WebSearchResult: Sendable, Equatable, Codable {
    public var title: String
    public var url: String
    public var content: String
    public var score: Double?

    public init(title: String, url: String, content: String, score: Double?) {
        self.title = title
        self.url = url
        self.content = content
        self.score = score
    }
}
