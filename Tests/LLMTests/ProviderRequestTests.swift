import Foundation
import Services
import Testing

@Suite("Provider requests: URLs, headers, bodies, parameter drift")
struct ProviderRequestTests {
    static let done =
        "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"

    static func send(
        _ configuration: LLMConfiguration, _ request: LLMRequest, replies: [ScriptedHTTPClient.Reply] = [.sse(done)],
        drift: LLMParameterDrift = LLMParameterDrift()
    )
        async -> (requests: [HTTPRequest], events: [LLMStreamEvent], error: (any Error)?)
    {
        let client = ScriptedHTTPClient(replies)
        let result = await collect(OpenAIFamilyProvider(configuration: configuration, client: client, drift: drift).stream(request))
        return (client.requests, result.events, result.error)
    }

    static let conversation = LLMRequest(
        messages: [
            LLMMessage(role: .system, content: "You are terse."), LLMMessage(role: .user, content: "Weather in Paris?"),
            LLMMessage(role: .assistant, content: nil, toolCalls: [LLMToolCall(id: "call_1", name: "web_search", arguments: #"{"q":"x"}"#)]),
            LLMMessage(role: .tool, content: "sunny", toolCallID: "call_1"),
        ], model: "gpt-4o-mini", temperature: 0.2, maxTokens: 512,
        tools: [
            LLMTool(
                name: "web_search", description: "Search the web",
                parametersSchema: #"{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}"#)
        ])

    @Test("openai: {base}/chat/completions, Bearer key, the whole body")
    func openAI() async throws {
        let sent = await Self.send(LLMConfiguration(apiKey: testKey, model: "gpt-4o-mini"), Self.conversation)
        #expect(sent.error == nil)
        let request = try #require(sent.requests.first)
        #expect(request.url == "https://api.openai.com/v1/chat/completions")
        #expect(request.method == "POST")
        #expect(header(request, "Authorization") == "Bearer " + testKey)
        #expect(header(request, "Content-Type") == "application/json")
        #expect(header(request, "api-key") == nil)
        let body = String(decoding: request.body, as: UTF8.self)
        #expect(
            body
                == #"{"max_tokens":512,"messages":[{"content":"You are terse.","role":"system"},{"content":"Weather in Paris?","role":"user"},{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"q\":\"x\"}","name":"web_search"},"id":"call_1","type":"function"}]},{"content":"sunny","role":"tool","tool_call_id":"call_1"}],"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"tools":[{"function":{"description":"Search the web","name":"web_search","parameters":{"properties":{"q":{"type":"string"}},"required":["q"],"type":"object"}},"type":"function"}]}"#
        )
    }

    @Test("openai with a base URL (trailing slash trimmed); a request without a model uses the configured one")
    func baseURL() async throws {
        let sent = await Self.send(
            LLMConfiguration(baseURL: "http://127.0.0.1:8080/v1/", apiKey: testKey, model: "gpt-4o"),
            LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        let request = try #require(sent.requests.first)
        #expect(request.url == "http://127.0.0.1:8080/v1/chat/completions")
        #expect(bodyObject(request)["model"] as? String == "gpt-4o")
        #expect(bodyObject(request)["max_tokens"] == nil)
        #expect(bodyObject(request)["temperature"] == nil)
    }

    @Test("azure classic: deployment in the path, api-version, api-key header, no model in the body")
    func azureClassic() async throws {
        let configuration = LLMConfiguration(
            provider: .azure, baseURL: "https://myres.openai.azure.com/", apiKey: testKey, azureDeployment: "gpt4o-prod",
            azureAPIVersion: "2024-10-21")
        let sent = await Self.send(configuration, LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        let request = try #require(sent.requests.first)
        #expect(request.url == "https://myres.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21")
        #expect(header(request, "api-key") == testKey)
        #expect(header(request, "Authorization") == nil)
        #expect(bodyObject(request)["model"] == nil)
        // The default api-version when none is set.
        var noVersion = configuration
        noVersion.azureAPIVersion = nil
        let defaulted = await Self.send(noVersion, LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], model: "other-deployment"))
        #expect(
            defaulted.requests.first?.url
                == "https://myres.openai.azure.com/openai/deployments/other-deployment/chat/completions?api-version=2024-10-21")
    }

    @Test("azure v1: /openai/v1/chat/completions with the deployment as model; a base already ending in /openai/v1 is kept")
    func azureV1() async throws {
        for base in ["https://myres.openai.azure.com", "https://myres.openai.azure.com/openai/v1/"] {
            let sent = await Self.send(
                LLMConfiguration(provider: .azure, baseURL: base, apiKey: testKey, model: "my-deployment"),
                LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
            let request = try #require(sent.requests.first)
            #expect(request.url == "https://myres.openai.azure.com/openai/v1/chat/completions")
            #expect(header(request, "api-key") == testKey)
            #expect(bodyObject(request)["model"] as? String == "my-deployment")
        }
    }

    @Test("openai-compatible: base URL, no Authorization without a key, Bearer with one")
    func compatible() async throws {
        let noKey = await Self.send(
            LLMConfiguration(provider: .openAICompatible, baseURL: "http://localhost:11434/v1", model: "llama3.1"),
            LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        #expect(noKey.requests.first?.url == "http://localhost:11434/v1/chat/completions")
        #expect(noKey.requests.first.flatMap { header($0, "Authorization") } == nil)
        let withKey = await Self.send(
            LLMConfiguration(provider: .openAICompatible, baseURL: "http://localhost:8000/v1", apiKey: "test-key-not-secret", model: "qwen"),
            LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        #expect(withKey.requests.first.flatMap { header($0, "Authorization") } == "Bearer test-key-not-secret")
    }

    @Test("o-series and gpt-5 models get max_completion_tokens from the start")
    func reasoningModels() async throws {
        for model in ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1-mini"] {
            let sent = await Self.send(
                LLMConfiguration(apiKey: testKey, model: model), LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], maxTokens: 100))
            let body = bodyObject(try #require(sent.requests.first))
            #expect(body["max_completion_tokens"] as? Int == 100, "\(model)")
            #expect(body["max_tokens"] == nil, "\(model)")
        }
        let plain = await Self.send(
            LLMConfiguration(apiKey: testKey, model: "gpt-4o"), LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], maxTokens: 100))
        #expect(bodyObject(try #require(plain.requests.first))["max_tokens"] as? Int == 100)
    }

    @Test("a 400 refusing max_tokens is retried once with max_completion_tokens, and remembered for the model")
    func maxTokensDrift() async throws {
        let refusal =
            #"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#
        let drift = LLMParameterDrift()
        let configuration = LLMConfiguration(apiKey: testKey, model: "new-reasoner")
        let request = LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], maxTokens: 64)
        let sent = await Self.send(configuration, request, replies: [.json(400, refusal), .sse(Self.done)], drift: drift)
        #expect(sent.error == nil)
        #expect(text(of: sent.events) == "ok")
        #expect(sent.requests.count == 2)
        #expect(bodyObject(sent.requests[0])["max_tokens"] as? Int == 64)
        #expect(bodyObject(sent.requests[1])["max_completion_tokens"] as? Int == 64)
        #expect(bodyObject(sent.requests[1])["max_tokens"] == nil)
        // The next request for this model starts with max_completion_tokens.
        let again = await Self.send(configuration, request, drift: drift)
        #expect(again.requests.count == 1)
        #expect(bodyObject(again.requests[0])["max_completion_tokens"] as? Int == 64)
        // Refused twice: no loop, the 400 is the answer.
        let stubborn = await Self.send(
            LLMConfiguration(apiKey: testKey, model: "other"), request, replies: [.json(400, refusal), .json(400, refusal)])
        #expect(stubborn.requests.count == 2)
        #expect((stubborn.error as? LLMError)?.kind == .badRequest)
    }

    @Test("a 400 refusing temperature or stream_options is retried once without it")
    func otherDrift() async throws {
        let temperature =
            #"{"error":{"message":"Unsupported value: 'temperature' does not support 0.3 with this model. Only the default (1) value is supported.","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}}"#
        let request = LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], temperature: 0.3)
        let sent = await Self.send(LLMConfiguration(apiKey: testKey, model: "o-new"), request, replies: [.json(400, temperature), .sse(Self.done)])
        #expect(sent.error == nil)
        #expect(bodyObject(sent.requests[0])["temperature"] as? Double == 0.3)
        #expect(bodyObject(sent.requests[1])["temperature"] == nil)

        let streamOptions =
            #"{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error","param":null,"code":null}}"#
        let azure = await Self.send(
            LLMConfiguration(
                provider: .azure, baseURL: "https://r.openai.azure.com", apiKey: testKey, azureDeployment: "d", azureAPIVersion: "2024-02-01"),
            LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]), replies: [.json(400, streamOptions), .sse(Self.done)])
        #expect(azure.error == nil)
        #expect(bodyObject(azure.requests[1])["stream_options"] == nil)
    }

    @Test("no model given and none configured → notConfigured naming llm.model, without a request")
    func noModel() async {
        let sent = await Self.send(LLMConfiguration(apiKey: testKey), LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        #expect(sent.requests.isEmpty)
        #expect((sent.error as? LLMError)?.kind == .notConfigured)
        #expect((sent.error as? LLMError)?.missingSettings == ["llm.model (AGENTD_LLM_MODEL)"])
    }

    @Test("a tool whose schema is not a JSON object is a badRequest before any request")
    func badSchema() async {
        let sent = await Self.send(
            LLMConfiguration(apiKey: testKey, model: "m"),
            LLMRequest(messages: [LLMMessage(role: .user, content: "hi")], tools: [LLMTool(name: "t", description: "", parametersSchema: "not json")])
        )
        #expect(sent.requests.isEmpty)
        #expect((sent.error as? LLMError)?.kind == .badRequest)
    }

    @Test("context windows: the table by prefix, the configured override, a fallback for unknown models")
    func contextWindows() {
        let provider = OpenAIFamilyProvider(configuration: LLMConfiguration(apiKey: testKey, model: "m"), client: ScriptedHTTPClient())
        #expect(provider.contextWindow(model: "gpt-4o-2024-08-06") == 128_000)
        #expect(provider.contextWindow(model: "gpt-4") == 8_192)
        #expect(provider.contextWindow(model: "gpt-4.1-mini") == 1_047_576)
        #expect(provider.contextWindow(model: "my-local-model") == LLMContextWindows.fallback)
        let overridden = OpenAIFamilyProvider(
            configuration: LLMConfiguration(apiKey: testKey, model: "m", contextWindow: 32_000), client: ScriptedHTTPClient())
        #expect(overridden.contextWindow(model: "gpt-4o") == 32_000)
    }
}
