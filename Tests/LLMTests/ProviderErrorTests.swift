import Foundation
import Services
import Testing

@Suite("Provider errors: one taxonomy, redacted messages")
struct ProviderErrorTests {
    static let request = LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], model: "gpt-4o-mini")

    static func error(_ reply: ScriptedHTTPClient.Reply, kind: LLMConfiguration.ProviderKind = .openai) async -> LLMError? {
        let provider = OpenAIFamilyProvider(
            configuration: LLMConfiguration(provider: kind, baseURL: kind == .openai ? nil : "https://r.example", apiKey: testKey, model: "m"),
            client: ScriptedHTTPClient([reply]), clock: FixedClock(date: Date(timeIntervalSince1970: 1_445_412_480)))
        return await collect(provider.stream(request)).error as? LLMError
    }

    @Test("status and body → kind, per the notes' verbatim bodies")
    func mapping() async {
        let cases: [(Int, String, LLMError.Kind)] = [
            (
                401,
                #"{"error":{"message":"Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                .authentication
            ),
            (403, #"{"error":{"message":"Forbidden","type":"invalid_request_error"}}"#, .authentication),
            (
                404,
                #"{"error":{"message":"The model `gpt-5-turbo` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
                .modelNotFound
            ),
            (404, #"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#, .modelNotFound),
            (
                400,
                #"{"error":{"message":"This model's maximum context length is 4097 tokens. However, your messages resulted in 4123 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                .contextOverflow
            ),
            (
                429,
                #"{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-xxx on tokens per min (TPM): Limit 200000, Used 195869, Requested 4412. Please try again in 84ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
                .rateLimited
            ),
            (
                429,
                #"{"error":{"message":"Request too large for gpt-4o in organization org-xxx on tokens per min (TPM): Limit 30000, Requested 34307. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
                .requestTooLarge
            ),
            (
                429,
                #"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
                .quotaExhausted
            ),
            (413, "", .requestTooLarge),
            (
                400,
                #"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":true,"detected":true},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}}}"#,
                .contentFiltered
            ),
            (
                500, #"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error"}}"#,
                .upstreamUnavailable
            ),
            (503, #"{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error"}}"#, .upstreamUnavailable),
            (502, "<html>Bad gateway</html>", .upstreamUnavailable),
            (408, "", .timeout),
            (409, "", .upstreamUnavailable),
            (
                400,
                #"{"error":{"message":"Invalid value for 'messages[0].role'.","type":"invalid_request_error","param":"messages","code":"invalid_value"}}"#,
                .badRequest
            ),
        ]
        for (status, body, kind) in cases {
            let error = await Self.error(.json(status, body, headers: [("x-request-id", "req_123")]))
            #expect(error?.kind == kind, "\(status) \(body)")
            #expect(error?.status == status)
            #expect(error?.requestId == "req_123")
            #expect(error?.provider == "openai")
        }
    }

    @Test("Azure's content-filter 400 carries the categories that fired; apim-request-id is the request id")
    func azureContentFilter() async {
        let body =
            #"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"},"jailbreak":{"filtered":true,"detected":true},"sexual":{"filtered":false,"severity":"safe"}}}}}"#
        let error = await Self.error(.json(400, body, headers: [("apim-request-id", "a1b2-c3")]), kind: .azure)
        #expect(error?.kind == .contentFiltered)
        #expect(error?.categories == ["hate", "jailbreak"])
        #expect(error?.requestId == "a1b2-c3")
        #expect(error?.provider == "azure")
    }

    @Test("retry delays: retry-after-ms, Retry-After seconds, Retry-After HTTP date, the message's hint; x-should-retry is read")
    func retryAfter() async {
        let limited = #"{"error":{"message":"Rate limit reached.","type":"requests","code":"rate_limit_exceeded"}}"#
        #expect(await Self.error(.json(429, limited, headers: [("retry-after-ms", "1500"), ("Retry-After", "9")]))?.retryAfterMs == 1500)
        #expect(await Self.error(.json(429, limited, headers: [("Retry-After", "7")]))?.retryAfterMs == 7000)
        // The fixed clock is Wed, 21 Oct 2015 07:28:00 GMT.
        #expect(await Self.error(.json(429, limited, headers: [("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT")]))?.retryAfterMs == 30_000)
        #expect(
            await Self.error(
                .json(
                    429,
                    #"{"error":{"message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit. Please retry after 20 seconds.","code":"429"}}"#
                ))?.retryAfterMs == 20_000)
        #expect(await Self.error(.json(429, limited))?.retryAfterMs == nil)
        #expect(await Self.error(.json(500, "", headers: [("x-should-retry", "false")]))?.shouldRetry == false)
        #expect(await Self.error(.json(400, "", headers: [("x-should-retry", "true")]))?.shouldRetry == true)
    }

    @Test("transport failures: connect → upstreamUnavailable, timeouts → timeout, a bad URL → badRequest")
    func transport() async {
        #expect(await Self.error(.failure(.connectFailed(detail: "Connection refused")))?.kind == .upstreamUnavailable)
        #expect(await Self.error(.failure(.timedOut(.connect)))?.kind == .timeout)
        #expect(await Self.error(.failure(.timedOut(.idle)))?.kind == .timeout)
        #expect(await Self.error(.failure(.transport(detail: "reset")))?.kind == .upstreamUnavailable)
        #expect(await Self.error(.failure(.invalidURL("nope")))?.kind == .badRequest)
    }

    @Test("a body echoing a key never reaches the message: sk-…, Bearer …, long tokens are redacted")
    func redaction() async {
        let secret = "sk-proj-AbCdEf0123456789AbCdEf0123456789"
        let bodies = [
            #"{"error":{"message":"Incorrect API key provided: \#(secret). You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            #"{"error":{"message":"Authorization header Bearer \#(testKey) rejected","code":"invalid_api_key"}}"#,
            #"{"detail":"bad key \#(secret)"}"#,
            "plain text \(secret)",
        ]
        for body in bodies {
            let error = await Self.error(.json(401, body))
            #expect(error?.kind == .authentication)
            let message = error?.message ?? ""
            #expect(!message.contains(secret) && !message.contains(testKey) && !message.contains("AbCdEf0123"), "\(message)")
            #expect(!message.contains("{\""), "raw JSON in the message: \(message)")
        }
        let masked = await Self.error(
            .json(
                401,
                #"{"error":{"message":"Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.","code":"invalid_api_key"}}"#
            ))
        #expect(masked?.message.contains("sk-abc") == false)
        #expect(masked?.message.contains("Incorrect API key provided") == true)
    }
}
