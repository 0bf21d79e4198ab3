/// What the fake server answers when nothing is scripted: the routes, the key checks, the echo and
/// the scenarios chosen by model name (listed at the top of FakeLLMServer.swift).
extension FakeLLMServer {
    func defaultResponse(to request: FakeRecordedRequest) -> FakeResponse {
        guard request.method == "POST" else {
            return .json(
                status: 405, "{\"error\":{\"message\":\"Method not allowed\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}")
        }
        let path = request.path
        if path == "/search" { return tavily(request) }
        if path == "/v1/chat/completions" || path == "/chat/completions" {
            if let key = configuration.apiKey, request.header("authorization") != "Bearer \(key)" {
                return .invalidAPIKey(presented: bearer(request) ?? "")
            }
            return chat(request, defaultModel: nil)
        }
        if path == "/openai/v1/chat/completions" {
            if let key = configuration.apiKey, request.header("api-key") != key, request.header("authorization") != "Bearer \(key)" {
                return .azureUnauthorized
            }
            return chat(request, defaultModel: nil)
        }
        let parts = path.split(separator: "/")
        if parts.count == 5, parts[0] == "openai", parts[1] == "deployments", parts[3] == "chat", parts[4] == "completions" {
            guard request.queryItem("api-version") != nil else {
                return .json(status: 404, "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}")
            }
            if let key = configuration.apiKey, request.header("api-key") != key { return .azureUnauthorized }
            return chat(request, defaultModel: String(parts[2]))
        }
        return .json(
            status: 404,
            "{\"error\":{\"message\":\"Unknown path \(path)\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"unknown_url\"}}")
    }

    private func bearer(_ request: FakeRecordedRequest) -> String? {
        guard let value = request.header("authorization"), value.hasPrefix("Bearer ") else { return nil }
        return String(value.dropFirst(7))
    }

    private func tavily(_ request: FakeRecordedRequest) -> FakeResponse {
        if let key = configuration.tavilyKey, bearer(request) != key { return .tavilyUnauthorized401 }
        let json = request.jsonObject() ?? [:]
        guard let query = json["query"] as? String, !query.isEmpty else {
            return .tavilyError(status: 400, "Query is missing.")
        }
        switch query {
        case "fake-401": return .tavilyUnauthorized401
        case "fake-429": return .tavilyRateLimited429
        case "fake-432": return .tavilyPlanLimit432
        case "fake-433": return .tavilyPayAsYouGoLimit433
        case "fake-500": return .tavilyServerError500
        default:
            let count = min(max((json["max_results"] as? Int) ?? 2, 1), 20)
            let includeAnswer = (json["include_answer"] as? Bool) ?? (json["include_answer"] is String)
            let credits = (json["include_usage"] as? Bool) == true ? ((json["search_depth"] as? String) == "advanced" ? 2 : 1) : nil
            return .tavilyResults(
                query: query, count: count, includeAnswer: includeAnswer, credits: credits, requestID: "fake-tavily-\(request.index)")
        }
    }

    private func chat(_ request: FakeRecordedRequest, defaultModel: String?) -> FakeResponse {
        guard let json = request.jsonObject() else {
            return .openAIError(status: 400, message: "We could not parse the JSON body of your request.", type: "invalid_request_error", code: nil)
        }
        let model = (json["model"] as? String) ?? defaultModel ?? "gpt-4o-mini"
        if let problem = contentProblem(json["messages"]) {
            return .openAIError(status: 400, message: problem, type: "invalid_request_error", code: "invalid_content")
        }
        let stream = (json["stream"] as? Bool) == true
        let includeUsage = ((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool) == true
        let messages = (json["messages"] as? [[String: Any]]) ?? []
        let promptTokens = max(1, messages.reduce(0) { $0 + text(of: $1).utf8.count } / 4)
        let userText = messages.last { ($0["role"] as? String) == "user" }.map(text(of:)) ?? ""

        func echo(_ answer: String, delay: Duration? = nil) -> FakeResponse {
            let pieces = words(answer)
            if stream {
                return .chatStream(
                    pieces, model: model, includeUsage: includeUsage, promptTokens: promptTokens, id: "chatcmpl-fake-\(request.index)", delay: delay)
            }
            return .chatCompletion(answer, model: model, promptTokens: promptTokens, completionTokens: pieces.count)
        }
        let answer = "Echo: \(userText)"

        if model.hasPrefix("fake-stream-") {
            let spec = model.dropFirst("fake-stream-".count).split(separator: "x")
            let count = spec.first.flatMap { Int($0) } ?? 10
            let milliseconds = spec.count > 1 ? Int(spec[1]) ?? 0 : 0
            let pieces = (1...max(1, count)).map { "tok\($0) " }
            guard stream else { return .chatCompletion(pieces.joined(), model: model, promptTokens: promptTokens, completionTokens: pieces.count) }
            return .chatStream(
                pieces, model: model, includeUsage: includeUsage, promptTokens: promptTokens, id: "chatcmpl-fake-\(request.index)",
                delay: milliseconds > 0 ? .milliseconds(milliseconds) : nil)
        }
        if model == "fake-timestamped" || model.hasPrefix("fake-timestamped-") {
            let spec = model.dropFirst("fake-timestamped-".count).split(separator: "x")
            let count = spec.first.flatMap { Int($0) } ?? 20
            let milliseconds = spec.count > 1 ? Int(spec[1]) ?? 10 : 10
            let pieces = Array(repeating: FakeLLMServer.stampPlaceholder + " ", count: max(1, count))
            return .chatStream(
                pieces, model: model, includeUsage: includeUsage, promptTokens: promptTokens, id: "chatcmpl-fake-\(request.index)",
                delay: milliseconds > 0 ? .milliseconds(milliseconds) : nil)
        }
        if model.hasPrefix("fake-flaky-"), let failures = Int(model.dropFirst("fake-flaky-".count)) {
            var seen = 0
            mutate { state in
                seen = state.modelCounters[model, default: 0]
                state.modelCounters[model] = seen + 1
            }
            return seen < failures ? FakeResponse.overloaded503.adding(header: "retry-after-ms", "10") : echo(answer)
        }
        switch model {
        case "fake-slow": return echo(answer, delay: .milliseconds(100))
        case "fake-stall": return echo(answer).stalling(afterChunks: 2)
        case "fake-disconnect": return echo(answer).closingConnection(afterChunks: 2)
        case "fake-reasoning": return json["max_tokens"] != nil ? .unsupportedMaxTokens : echo(answer)
        case "fake-tool-loop":
            let lastUser = messages.lastIndex { ($0["role"] as? String) == "user" } ?? 0
            if let toolMessage = messages[lastUser...].last(where: { ($0["role"] as? String) == "tool" }) {
                return echo("Echo: \(text(of: toolMessage))")
            }
            let arguments = "{\"query\":\(SSE.quote(userText))}"
            if stream { return .chatStreamWholeToolCall(name: "web_search", arguments: arguments) }
            return .json(
                "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion\",\"created\":\(SSE.created),\"model\":\(SSE.quote(model)),\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_whole\",\"type\":\"function\",\"function\":{\"name\":\"web_search\",\"arguments\":\(SSE.quote(arguments))}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":\(SSE.usage(prompt: promptTokens, completion: 5))}"
            )
        case "fake-byte-split": return echo(answer).splitAtEveryByte()
        case "fake-crlf": return echo(answer).withCRLF()
        case "fake-comments": return .chatStreamWithComments()
        case "fake-fields": return .chatStreamWithFields()
        case "fake-multiline": return .chatStreamMultilineData()
        case "fake-obfuscation": return .chatStreamWithObfuscation()
        case "fake-usage-empty": return .chatStreamUsage(.emptyArray)
        case "fake-usage-null": return .chatStreamUsage(.null)
        case "fake-usage-missing": return .chatStreamUsage(.missing)
        case "fake-azure": return .azureChatStream()
        case "fake-content-filter": return .chatStreamContentFilter()
        case "fake-error-event": return .chatStreamErrorEvent()
        case "fake-llamacpp-error": return .llamaCppErrorLine()
        case "fake-parallel-tools": return .chatStreamParallelToolCalls()
        case "fake-whole-tool": return .chatStreamWholeToolCall()
        case "fake-401": return .invalidAPIKey()
        case "fake-404": return .modelNotFound(model)
        case "fake-context-overflow": return .contextLengthExceeded
        case "fake-max-tokens": return .unsupportedMaxTokens
        case "fake-413": return .requestTooLarge413
        case "fake-429": return .rateLimited(retryAfterMs: 20, retryAfter: "1")
        case "fake-429-date": return .rateLimited(retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT")
        case "fake-429-too-large": return .rateLimitRequestTooLarge
        case "fake-quota": return .insufficientQuota
        case "fake-500": return .serverError500
        case "fake-502": return .badGatewayHTML
        case "fake-503": return .overloaded503
        case "fake-content-filter-400": return .azureContentFilter400
        default: return echo(answer)
        }
    }

    /// What OpenAI would refuse in messages' array `content`: a part that is neither `text` with a
    /// string nor `image_url` with a `data:image/…;base64,` or `https://` URL, or images outside a
    /// user message. nil when every content is a string, null, or such parts.
    private func contentProblem(_ messages: Any?) -> String? {
        for (index, message) in ((messages as? [[String: Any]]) ?? []).enumerated() {
            guard let parts = message["content"] as? [Any] else { continue }
            for part in parts {
                guard let part = part as? [String: Any] else { return "messages[\(index)].content: a part is not an object" }
                switch part["type"] as? String {
                case "text":
                    guard part["text"] is String else { return "messages[\(index)].content: a text part without text" }
                case "image_url":
                    guard (message["role"] as? String) == "user" else { return "messages[\(index)]: image_url is only valid in user messages" }
                    guard let url = (part["image_url"] as? [String: Any])?["url"] as? String,
                        (url.hasPrefix("data:image/") && url.contains(";base64,")) || url.hasPrefix("https://")
                    else { return "messages[\(index)].content: Invalid image URL" }
                default:
                    return "messages[\(index)].content: unknown part type \(String(describing: part["type"]))"
                }
            }
        }
        return nil
    }

    /// A message's text: a string `content`, or the `text` parts of an array.
    private func text(of message: [String: Any]) -> String {
        if let content = message["content"] as? String { return content }
        if let parts = message["content"] as? [[String: Any]] { return parts.compactMap { $0["text"] as? String }.joined() }
        return ""
    }

    /// "Echo: a b" → ["Echo: ", "a ", "b"]: each word with the spaces after it.
    private func words(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var sawSpace = false
        for character in text {
            if character != " ", sawSpace {
                pieces.append(current)
                current = ""
                sawSpace = false
            }
            if character == " " { sawSpace = true }
            current.append(character)
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces.isEmpty ? [""] : pieces
    }
}
