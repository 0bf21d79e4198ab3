import Foundation

/// Tavily Search: `POST {base}/search` with `Authorization: Bearer <key>` and a JSON body
/// `{query, max_results, search_depth: "basic", include_answer: false, include_raw_content: false,
/// include_usage: true}`; parses `results`, `request_id`, `usage.credits` and `response_time`.
///
/// Errors map into the providers' taxonomy (`LLMError`, provider `tavily`): 401/403 →
/// `.authentication`; 429 → `.rateLimited` (with `Retry-After` when sent); 432 (plan credit limit)
/// and 433 (pay-as-you-go limit) → `.quotaExhausted`; 400/422 → `.badRequest`; 5xx and connection
/// failures → `.upstreamUnavailable`; timeouts → `.timeout`. Messages come from Tavily's
/// `{"detail":{"error":…}}`, redacted. No retries here: a search is one step of the agent's loop.
public struct TavilyClient: WebSearchClient {
    public let configuration: WebSearchConfiguration
    private let client: any HTTPClient
    private let clock: any WallClock

    public init(configuration: WebSearchConfiguration, client: any HTTPClient, clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.client = client
        self.clock = clock
    }

    static let provider = "tavily"

    public func search(_ query: WebSearchQuery) async throws -> WebSearchResponse {
        let request = try makeRequest(query)
        let collected: (head: HTTPResponseHead, body: [UInt8])
        do {
            collected = try await client.collect(request, maxBodyBytes: 4 << 20)
        } catch let error as HTTPClientError {
            if error == .cancelled { throw CancellationError() }
            throw OpenAIErrorClassifier.classify(error, provider: Self.provider)
        }
        let (head, body) = collected
        guard (200..<300).contains(head.status) else { throw classify(head, body) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw LLMError(.upstreamUnavailable, "the search answer is not a JSON object", provider: Self.provider, status: head.status)
        }
        let results = (object["results"] as? [Any] ?? []).compactMap { element -> WebSearchResult? in
            guard let result = element as? [String: Any], let url = result["url"] as? String else { return nil }
            return WebSearchResult(
                title: result["title"] as? String ?? url, url: url, content: result["content"] as? String ?? "",
                score: (result["score"] as? NSNumber)?.doubleValue)
        }
        let usage = object["usage"] as? [String: Any]
        return WebSearchResponse(
            query: object["query"] as? String ?? query.query, results: results,
            requestId: object["request_id"] as? String ?? head.header("x-request-id"),
            credits: (usage?["credits"] as? NSNumber)?.intValue, responseTimeSeconds: Self.number(object["response_time"]))
    }

    func makeRequest(_ query: WebSearchQuery) throws -> HTTPRequest {
        var base = configuration.tavilyBaseURL.isEmpty ? WebSearchConfiguration.defaultTavilyBaseURL : configuration.tavilyBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        let body: [String: Any] = [
            "query": query.query, "max_results": max(0, min(20, query.maxResults)), "search_depth": "basic", "include_answer": false,
            "include_raw_content": false, "include_usage": true,
        ]
        let key = configuration.tavilyAPIKey?.trimmingCharacters(in: .whitespaces) ?? ""
        let seconds = configuration.timeoutSeconds
        return HTTPRequest(
            method: "POST", url: base + "/search",
            headers: [("Content-Type", "application/json"), ("Accept", "application/json"), ("Authorization", "Bearer " + key)],
            body: Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])),
            timeouts: HTTPTimeouts(connect: .seconds(min(10, seconds)), total: .seconds(seconds), idle: .seconds(seconds)))
    }

    private func classify(_ head: HTTPResponseHead, _ body: [UInt8]) -> LLMError {
        let details = ErrorDetails(body: body)
        let message = details.safeMessage(status: head.status)
        let kind: LLMError.Kind =
            switch head.status {
            case 401, 403: .authentication
            case 429: .rateLimited
            case 432, 433: .quotaExhausted
            case 408, 504: .timeout
            case 500...599: .upstreamUnavailable
            default: .badRequest
            }
        var error = LLMError(kind, message, provider: Self.provider, status: head.status, requestId: head.header("x-request-id"))
        if kind == .rateLimited { error.retryAfterMs = OpenAIErrorClassifier.retryAfterMs(head, now: clock.now()) }
        return error
    }

    private static func number(_ value: Any?) -> Double? {
        if let number = value as? NSNumber { return number.doubleValue }
        if let text = value as? String { return Double(text) }
        return nil
    }
}
