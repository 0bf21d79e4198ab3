import Foundation
import Services
import Testing

@Suite("Tavily client")
struct TavilyClientTests {
    static let key = "tvly-test-key-not-secret"

    static func client(_ replies: [ScriptedHTTPClient.Reply], base: String = "https://api.tavily.com") -> (TavilyClient, ScriptedHTTPClient) {
        let http = ScriptedHTTPClient(replies)
        return (TavilyClient(configuration: WebSearchConfiguration(tavilyAPIKey: key, tavilyBaseURL: base), client: http), http)
    }

    @Test("POST {base}/search with Bearer and the JSON body; results, request_id, credits and response_time parsed")
    func search() async throws {
        let answer =
            #"{"query":"who is Leo Messi?","answer":null,"images":[],"results":[{"title":"Lionel Messi","url":"https://en.wikipedia.org/wiki/Lionel_Messi","content":"Argentine footballer","score":0.81,"raw_content":null,"favicon":"https://x/f.ico"},{"url":"https://example.com/no-title","content":"c"}],"response_time":1.23,"usage":{"credits":1},"request_id":"123e4567-e89b"}"#
        let (client, http) = Self.client([.json(200, answer)], base: "http://127.0.0.1:9/")
        let response = try await client.search(WebSearchQuery(query: "who is Leo Messi?", maxResults: 3))
        let request = try #require(http.requests.first)
        #expect(request.url == "http://127.0.0.1:9/search")
        #expect(header(request, "Authorization") == "Bearer " + Self.key)
        let body = bodyObject(request)
        #expect(body["query"] as? String == "who is Leo Messi?")
        #expect(body["max_results"] as? Int == 3)
        #expect(body["api_key"] == nil)
        #expect(
            response
                == WebSearchResponse(
                    query: "who is Leo Messi?",
                    results: [
                        WebSearchResult(
                            title: "Lionel Messi", url: "https://en.wikipedia.org/wiki/Lionel_Messi", content: "Argentine footballer", score: 0.81),
                        WebSearchResult(title: "https://example.com/no-title", url: "https://example.com/no-title", content: "c", score: nil),
                    ], requestId: "123e4567-e89b", credits: 1, responseTimeSeconds: 1.23))
    }

    @Test("errors: 401 authentication, 429 rateLimited with its delay, 432/433 quotaExhausted, 5xx unavailable, timeouts; messages redacted")
    func errors() async {
        let cases: [(ScriptedHTTPClient.Reply, LLMError.Kind)] = [
            (.json(401, #"{"detail":{"error":"Unauthorized: missing or invalid API key."}}"#), .authentication),
            (.json(429, #"{"detail":{"error":"Rate limit exceeded"}}"#, headers: [("Retry-After", "2")]), .rateLimited),
            (.json(432, #"{"detail":{"error":"This request exceeds your plan's set usage limit."}}"#), .quotaExhausted),
            (.json(433, #"{"detail":{"error":"This request exceeds the pay-as-you-go limit."}}"#), .quotaExhausted),
            (.json(500, "oops"), .upstreamUnavailable),
            (.json(400, #"{"detail":{"error":"Invalid query"}}"#), .badRequest),
            (.failure(.timedOut(.total)), .timeout),
            (.failure(.connectFailed(detail: "refused")), .upstreamUnavailable),
        ]
        for (reply, kind) in cases {
            do {
                _ = try await Self.client([reply]).0.search(WebSearchQuery(query: "q"))
                Issue.record("no error for \(kind)")
            } catch let error as LLMError {
                #expect(error.kind == kind)
                #expect(error.provider == "tavily")
                if kind == .rateLimited { #expect(error.retryAfterMs == 2000) }
                if kind == .authentication { #expect(error.message == "Unauthorized: missing or invalid API key.") }
            } catch {
                Issue.record("not an LLMError: \(error)")
            }
        }
        do {
            _ = try await Self.client([.json(401, #"{"detail":{"error":"Invalid key \#(Self.key)"}}"#)]).0.search(WebSearchQuery(query: "q"))
        } catch let error as LLMError {
            #expect(!error.message.contains(Self.key))
        } catch {}
    }
}

@Suite("Provider factory and configuration")
struct ProviderFactoryTests {
    static let request = LLMRequest(messages: [LLMMessage(role: .user, content: "hi")])

    @Test("without a key (openai, azure) or a base URL (azure, openai-compatible) the provider fails at once naming the settings")
    func notConfigured() async {
        let cases: [(LLMConfiguration, [String])] = [
            // Without a model the default model is named too.
            (LLMConfiguration(), ["llm.api_key (AGENTD_LLM_API_KEY or OPENAI_API_KEY)", "llm.model (AGENTD_LLM_MODEL)"]),
            (LLMConfiguration(apiKey: "  ", model: "gpt-4o"), ["llm.api_key (AGENTD_LLM_API_KEY or OPENAI_API_KEY)"]),
            (
                LLMConfiguration(provider: .azure),
                [
                    "llm.base_url (AGENTD_LLM_BASE_URL): the resource endpoint, https://NAME.openai.azure.com",
                    "llm.api_key (AGENTD_LLM_API_KEY or AZURE_OPENAI_API_KEY)", "llm.azure_deployment or llm.model (AGENTD_LLM_MODEL)",
                ]
            ),
            (
                LLMConfiguration(provider: .openAICompatible, model: "llama3"),
                ["llm.base_url (AGENTD_LLM_BASE_URL): the server's base, such as http://localhost:11434/v1"]
            ),
        ]
        for (configuration, missing) in cases {
            let http = ScriptedHTTPClient()
            let provider = LLMProviderFactory(client: http).makeProvider(configuration)
            let result = await collect(provider.stream(Self.request))
            let error = result.error as? LLMError
            #expect(error?.kind == .notConfigured)
            #expect(error?.missingSettings == missing)
            #expect(error?.rpcError.code == .llmNotConfigured)
            #expect(http.requests.isEmpty)
        }
        // openai-compatible needs no key.
        #expect(LLMConfiguration(provider: .openAICompatible, baseURL: "http://localhost:11434/v1").missingSettings.isEmpty)
        #expect(LLMProviderFactory(client: ScriptedHTTPClient()).makeWebSearchClient(WebSearchConfiguration()) == nil)
        #expect(LLMProviderFactory(client: ScriptedHTTPClient()).makeWebSearchClient(WebSearchConfiguration(tavilyAPIKey: "tvly-x")) != nil)
    }

    @Test("the factory wraps retries and fallbacks: a 503 is retried, then the fallback model answers")
    func chain() async throws {
        let ok =
            "data: {\"id\":\"x\",\"model\":\"llama3.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"local\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
        let http = ScriptedHTTPClient([.json(503, ""), .json(503, ""), .sse(ok)])
        let sleeper = RecordingSleeper()
        let configuration = LLMConfiguration(
            apiKey: testKey, model: "gpt-4o", maxRetries: 1,
            fallbacks: [LLMConfiguration.Fallback(provider: .openAICompatible, baseURL: "http://localhost:11434/v1", model: "llama3.1")])
        let provider = LLMProviderFactory(client: http, sleep: sleeper.sleep, random: { 0 }).makeProvider(configuration)
        #expect(provider.defaultModel == "gpt-4o")
        let result = await collect(provider.stream(Self.request))
        #expect(result.error == nil)
        #expect(text(of: result.events) == "local")
        #expect(
            http.requests.map(\.url) == [
                "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions",
                "http://localhost:11434/v1/chat/completions",
            ])
        // The local fallback gets no OpenAI key.
        #expect(header(http.requests[2], "Authorization") == nil)
        #expect(bodyObject(http.requests[2])["model"] as? String == "llama3.1")
        #expect(sleeper.delays.count == 1)
    }

    @Test("fallback strings: model, provider:model, provider:model@base_url")
    func fallbackParsing() {
        #expect(LLMConfiguration.Fallback(parsing: "gpt-4o-mini") == LLMConfiguration.Fallback(model: "gpt-4o-mini"))
        #expect(LLMConfiguration.Fallback(parsing: "azure:my-deployment") == LLMConfiguration.Fallback(provider: .azure, model: "my-deployment"))
        #expect(
            LLMConfiguration.Fallback(parsing: "openai-compatible:llama3.1@http://localhost:11434/v1")
                == LLMConfiguration.Fallback(provider: .openAICompatible, baseURL: "http://localhost:11434/v1", model: "llama3.1"))
        #expect(LLMConfiguration.Fallback(parsing: "hf:meta/llama") == LLMConfiguration.Fallback(model: "hf:meta/llama"))
        #expect(LLMConfiguration.Fallback(parsing: "") == nil)
        #expect(LLMConfiguration.Fallback(parsing: "openai:") == nil)
    }

    @Test("a configuration's description never shows the key")
    func description() {
        let configuration = LLMConfiguration(apiKey: testKey, model: "m")
        #expect(!"\(configuration)".contains(testKey))
        #expect(!String(reflecting: configuration).contains(testKey))
        #expect(!"\(WebSearchConfiguration(tavilyAPIKey: "tvly-secret-x"))".contains("tvly-secret-x"))
    }
}
