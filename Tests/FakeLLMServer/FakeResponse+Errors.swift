/// Error answers for every status in the taxonomy. Bodies are verbatim where the wire-format notes
/// have a capture (401, 404, 400 context, 400 max_tokens, 429s, Tavily 401), shapes otherwise.
extension FakeResponse {
    /// `{"error":{"message","type","param","code"}}`
    public static func openAIError(
        status: Int, message: String, type: String?, param: String? = nil, code: String?, headers: [(name: String, value: String)] = []
    )
        -> FakeResponse
    {
        func opt(_ value: String?) -> String { value.map(SSE.quote) ?? "null" }
        return json(
            status: status, headers: headers + [("x-request-id", "req_fake_error")],
            "{\"error\":{\"message\":\(SSE.quote(message)),\"type\":\(opt(type)),\"param\":\(opt(param)),\"code\":\(opt(code))}}"
        )
    }

    /// 401, echoing a masked fragment of the key the way OpenAI does (never log such a body raw).
    public static func invalidAPIKey(presented key: String = "sk-test-key-not-secret") -> FakeResponse {
        let masked = key.count > 8 ? "\(key.prefix(6))***\(key.suffix(3))" : "***"
        return openAIError(
            status: 401,
            message: "Incorrect API key provided: \(masked). You can find your API key at https://platform.openai.com/account/api-keys.",
            type: "invalid_request_error", code: "invalid_api_key")
    }

    /// Azure's 401 (`api-key` wrong or missing).
    public static let azureUnauthorized = json(
        status: 401,
        "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.\"}}"
    )

    public static func modelNotFound(_ model: String = "gpt-5-turbo") -> FakeResponse {
        openAIError(
            status: 404, message: "The model `\(model)` does not exist or you do not have access to it.", type: "invalid_request_error",
            code: "model_not_found")
    }

    /// Azure: the deployment does not exist.
    public static let azureDeploymentNotFound = json(
        status: 404,
        "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.\"}}"
    )

    public static let contextLengthExceeded = openAIError(
        status: 400,
        message:
            "This model's maximum context length is 4097 tokens. However, your messages resulted in 4123 tokens. Please reduce the length of the messages.",
        type: "invalid_request_error", param: "messages", code: "context_length_exceeded")

    /// The reasoning-model drift: `max_tokens` rejected, with the `Use '…' instead` hint.
    public static let unsupportedMaxTokens = openAIError(
        status: 400,
        message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        type: "invalid_request_error", param: "max_tokens", code: "unsupported_parameter")

    /// 413 (shape: OpenAI's field set; gateways may send HTML instead).
    public static let requestTooLarge413 = openAIError(
        status: 413, message: "Request too large. The request body exceeds the maximum allowed size.", type: "invalid_request_error",
        code: "request_too_large")

    /// 429 rate limit, retriable, with the delay headers given (`retry-after-ms`, `Retry-After`
    /// in seconds or as an HTTP date).
    public static func rateLimited(retryAfterMs: Int? = nil, retryAfter: String? = nil, shouldRetry: Bool? = nil) -> FakeResponse {
        var headers: [(name: String, value: String)] = [
            ("x-ratelimit-limit-tokens", "200000"), ("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", "84ms"),
        ]
        if let retryAfterMs { headers.append(("retry-after-ms", String(retryAfterMs))) }
        if let retryAfter { headers.append(("Retry-After", retryAfter)) }
        if let shouldRetry { headers.append(("x-should-retry", shouldRetry ? "true" : "false")) }
        return openAIError(
            status: 429,
            message:
                "Rate limit reached for gpt-4o-mini in organization org-xxx on tokens per min (TPM): Limit 200000, Used 195869, Requested 4412. Please try again in 84ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
            type: "tokens", code: "rate_limit_exceeded", headers: headers)
    }

    /// 429 that can never succeed: one request larger than the per-minute limit.
    public static let rateLimitRequestTooLarge = openAIError(
        status: 429,
        message:
            "Request too large for gpt-4o in organization org-xxx on tokens per min (TPM): Limit 30000, Requested 34307. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.",
        type: "tokens", code: "rate_limit_exceeded")

    /// 429 quota exhausted: never retriable.
    public static let insufficientQuota = openAIError(
        status: 429,
        message:
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        type: "insufficient_quota", code: "insufficient_quota")

    public static let serverError500 = openAIError(
        status: 500,
        message: "The server had an error while processing your request. Sorry about that!", type: "server_error", code: nil)

    public static let overloaded503 = openAIError(
        status: 503, message: "The engine is currently overloaded, please try again later", type: "server_error", code: nil)

    /// A 502 from a gateway in front of the provider: HTML, not JSON.
    public static let badGatewayHTML = FakeResponse(
        status: 502, headers: [("Content-Type", "text/html")],
        body: .whole(Array("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n".utf8)))

    /// Azure's blocked prompt (400 `content_filter` with `innererror.content_filter_result`).
    public static let azureContentFilter400 = json(
        status: 400,
        "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766\",\"type\":null,\"param\":\"prompt\",\"code\":\"content_filter\",\"status\":400,"
            + "\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":true,\"detected\":true},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}}}"
    )

    // MARK: Tavily (`{"detail":{"error":…}}`)

    public static func tavilyError(status: Int, _ message: String) -> FakeResponse {
        json(status: status, "{\"detail\":{\"error\":\(SSE.quote(message))}}")
    }

    public static let tavilyUnauthorized401 = tavilyError(status: 401, "Unauthorized: missing or invalid API key.")
    public static let tavilyRateLimited429 = tavilyError(
        status: 429, "Your request has been blocked due to excessive requests. Please reduce rate of requests.")
    /// 432: the plan's credit limit.
    public static let tavilyPlanLimit432 = tavilyError(
        status: 432, "This request exceeds your plan's set usage limit. Please upgrade your plan or contact support@tavily.com")
    /// 433: the pay-as-you-go limit.
    public static let tavilyPayAsYouGoLimit433 = tavilyError(
        status: 433, "This request exceeds the pay-as-you-go limit. You can increase your limit on the Tavily dashboard.")
    public static let tavilyServerError500 = tavilyError(status: 500, "Internal Server Error")

    /// A Tavily answer with `results` for `query` (deterministic).
    public static func tavilyResults(
        query: String, count: Int = 2, includeAnswer: Bool = false, credits: Int? = 1, requestID: String = "fake-tavily-request"
    )
        -> FakeResponse
    {
        let slug = query.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
        let results = (1...max(1, count)).map { n in
            "{\"title\":\(SSE.quote("Result \(n) for \(query)")),\"url\":\"https://example.com/\(slug)/\(n)\",\"content\":\(SSE.quote("Snippet \(n) about \(query).")),\"score\":0.\(max(1, 9 - n)),\"raw_content\":null}"
        }
        var body =
            "{\"query\":\(SSE.quote(query)),\"follow_up_questions\":null,\"answer\":\(includeAnswer ? SSE.quote("An answer about \(query).") : "null"),\"images\":[],"
        body += "\"results\":[\(results.joined(separator: ","))],\"response_time\":0.42"
        if let credits { body += ",\"usage\":{\"credits\":\(credits)}" }
        body += ",\"request_id\":\(SSE.quote(requestID))}"
        return json(body)
    }
}
