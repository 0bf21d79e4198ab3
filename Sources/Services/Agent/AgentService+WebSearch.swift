import Foundation

// Web search: the model's `web_search` calls run against the search client, a few at once; each
// answers with a tool result (the pages found, or why none).
extension AgentService {
    struct SearchOutcome: Sendable {
        /// The tool result the model is given.
        var content: String
        /// What is stored beside the answer; nil when no search ran (bad arguments, unknown tool).
        var step: WebSearchStep?
    }

    /// Runs the calls (at most `maxSearchesPerRound`, `maxParallelSearches` at once); one outcome
    /// per call, in order. A failed search is reported to the model as a failed tool result.
    func search(_ calls: [LLMToolCall]) async -> [SearchOutcome] {
        var outcomes = [SearchOutcome?](repeating: nil, count: calls.count)
        var pending: [(Int, String)] = []
        for (index, call) in calls.enumerated() {
            if call.name != Self.webSearchTool.name {
                outcomes[index] = SearchOutcome(content: Self.toolError("unknown tool \(call.name); the only tool is web_search"), step: nil)
            } else if let query = Self.query(call.arguments) {
                if pending.count < Self.maxSearchesPerRound {
                    pending.append((index, query))
                } else {
                    outcomes[index] = SearchOutcome(
                        content: Self.toolError("skipped: at most \(Self.maxSearchesPerRound) searches at a time"), step: nil)
                }
            } else {
                outcomes[index] = SearchOutcome(content: Self.toolError(#"invalid arguments: expected {"query": "…"}"#), step: nil)
            }
        }
        if let client = webSearch, !pending.isEmpty {
            await withTaskGroup(of: (Int, SearchOutcome).self) { group in
                var next = 0
                func addNext() {
                    guard next < pending.count else { return }
                    let (index, query) = pending[next]
                    let id = calls[index].id
                    next += 1
                    group.addTask { (index, await Self.runSearch(client, query: query, toolCallID: id)) }
                }
                for _ in 0..<Self.maxParallelSearches { addNext() }
                while let (index, outcome) = await group.next() {
                    outcomes[index] = outcome
                    addNext()
                }
            }
        }
        return outcomes.map { $0 ?? SearchOutcome(content: Self.toolError("interrupted"), step: nil) }
    }

    private static func runSearch(_ client: any WebSearchClient, query: String, toolCallID: String) async -> SearchOutcome {
        do {
            let response = try await client.search(WebSearchQuery(query: query, maxResults: searchResultsPerQuery))
            let step = WebSearchStep(
                toolCallId: toolCallID, query: query, results: response.results, credits: response.credits, requestId: response.requestId)
            return SearchOutcome(content: toolResult(query: query, results: response.results), step: step)
        } catch {
            let summary = Self.summary(error)
            return SearchOutcome(
                content: toolError("search failed (\(summary.kind)): \(summary.message)"),
                step: WebSearchStep(
                    toolCallId: toolCallID, query: query, results: [], credits: nil, requestId: (error as? LLMError)?.requestId, error: summary))
        }
    }

    private struct QueryArguments: Decodable { var query: String }

    static func query(_ arguments: String) -> String? {
        guard let parsed = try? JSONDecoder().decode(QueryArguments.self, from: Data(arguments.utf8)) else { return nil }
        let query = parsed.query.trimmingCharacters(in: .whitespacesAndNewlines)
        return query.isEmpty ? nil : query
    }

    private struct ToolResult: Encodable {
        struct Page: Encodable {
            var title: String
            var url: String
            var content: String
        }
        var query: String
        var results: [Page]
    }

    private static func toolResult(query: String, results: [WebSearchResult]) -> String {
        let pages = results.map { ToolResult.Page(title: $0.title, url: $0.url, content: String($0.content.prefix(maxResultContentCharacters))) }
        return json(ToolResult(query: query, results: pages))
    }

    private static func toolError(_ message: String) -> String { json(["error": message]) }

    private static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Each page the run's searches found, once, in the order found.
    static func sources(_ searches: [WebSearchStep]) -> [AgentSource] {
        var seen: Set<String> = []
        var sources: [AgentSource] = []
        for result in searches.flatMap(\.results) where seen.insert(result.url).inserted {
            sources.append(AgentSource(title: result.title, url: result.url))
        }
        return sources
    }
}
