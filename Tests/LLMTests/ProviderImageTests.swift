import Foundation
import Services
import Testing

@Suite("Provider requests with images: content parts, the per-model setting, fallbacks")
struct ProviderImageTests {
    static let image = LLMImage(data: [0x89, 0x50, 0x4E, 0x47], mediaType: "image/png")

    @Test("a message with images is sent as content parts [text, image_url…]; the others keep their string content, byte for byte")
    func contentParts() async throws {
        let request = LLMRequest(
            messages: [
                LLMMessage(role: .system, content: "Be brief."), LLMMessage(role: .user, content: "What is this?", images: [Self.image, Self.image]),
            ], model: "gpt-4o")
        let sent = await ProviderRequestTests.send(LLMConfiguration(apiKey: testKey, model: "gpt-4o"), request)
        #expect(sent.error == nil)
        let sentRequest = try #require(sent.requests.first)
        let body = String(decoding: sentRequest.body, as: UTF8.self)
        #expect(Self.image.url == "data:image/png;base64,iVBORw==")
        #expect(
            body
                == #"{"messages":[{"content":"Be brief.","role":"system"},{"content":[{"text":"What is this?","type":"text"},{"image_url":{"url":"data:image/png;base64,iVBORw=="},"type":"image_url"},{"image_url":{"url":"data:image/png;base64,iVBORw=="},"type":"image_url"}],"role":"user"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#
        )
        // Without images: a plain string, as before images existed.
        let plain = await ProviderRequestTests.send(
            LLMConfiguration(apiKey: testKey, model: "gpt-4o"), LLMRequest(messages: [LLMMessage(role: .user, content: "hi")]))
        let plainRequest = try #require(plain.requests.first)
        #expect(
            String(decoding: plainRequest.body, as: UTF8.self)
                == #"{"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#)
    }

    @Test("images only: no text part")
    func imageOnly() async throws {
        let request = LLMRequest(messages: [LLMMessage(role: .user, content: nil, images: [Self.image])])
        let sent = await ProviderRequestTests.send(LLMConfiguration(apiKey: testKey, model: "gpt-4o"), request)
        let first = try #require(sent.requests.first)
        let messages = try #require(bodyObject(first)["messages"] as? [[String: Any]])
        let parts = try #require(messages.first?["content"] as? [[String: Any]])
        #expect(parts.map { $0["type"] as? String } == ["image_url"])
    }

    @Test("llm.image_models: exact names and prefix* without case; the default list takes gpt-4o and o1, not o1-mini, o3-mini or gpt-3.5")
    func imageModels() {
        let models = LLMImageModels(patterns: ["My-Vision", "llava*"])
        #expect(models.accepts("my-vision") && models.accepts("llava:13b") && !models.accepts("my-vision-2") && !models.accepts("llama3"))
        let defaults = LLMImageModels.default
        for model in ["gpt-4o", "gpt-4o-mini-2024-07-18", "gpt-4.1-nano", "gpt-5", "o1", "o1-2024-12-17", "o3", "o4-mini", "gpt-4-turbo"] {
            #expect(defaults.accepts(model), "\(model)")
        }
        for model in ["o1-mini", "o3-mini", "gpt-3.5-turbo", "gpt-4", "llama3.1", ""] { #expect(!defaults.accepts(model), "\(model)") }
        #expect(
            LLMImageModels.problem(in: "gpt-*-mini") != nil && LLMImageModels.problem(in: "") != nil && LLMImageModels.problem(in: "gpt-4o*") == nil)

        let provider = OpenAIFamilyProvider(
            configuration: LLMConfiguration(apiKey: testKey, imageModels: ["local-vl"]), client: ScriptedHTTPClient([]))
        #expect(provider.acceptsImages(model: "local-vl") && !provider.acceptsImages(model: "gpt-4o"))
        let retrying = RetryingLLMProvider(provider, policy: LLMRetryPolicy(maxRetries: 1))
        #expect(retrying.acceptsImages(model: "local-vl") && !retrying.acceptsImages(model: "gpt-4o"))
    }

    @Test("a fallback chain: a request with images skips the fallbacks whose model takes none; one without images tries them all")
    func fallbackSkipsTextOnlyModels() async throws {
        let overloaded = ScriptedHTTPClient.Reply.json(503, #"{"error":{"message":"overloaded"}}"#)
        let primary = ScriptedHTTPClient([overloaded, overloaded])
        let textOnly = ScriptedHTTPClient([.sse(ProviderRequestTests.done), .sse(ProviderRequestTests.done)])
        let vision = ScriptedHTTPClient([.sse(ProviderRequestTests.done), .sse(ProviderRequestTests.done)])
        let configuration = LLMConfiguration(apiKey: testKey, model: "gpt-4o")
        let chain = FallbackLLMProvider([
            .init(OpenAIFamilyProvider(configuration: configuration, client: primary)),
            .init(OpenAIFamilyProvider(configuration: configuration, client: textOnly), model: "gpt-3.5-turbo"),
            .init(OpenAIFamilyProvider(configuration: configuration, client: vision), model: "gpt-4o-mini"),
        ])
        let withImage = await collect(chain.stream(LLMRequest(messages: [LLMMessage(role: .user, content: "x", images: [Self.image])])))
        #expect(withImage.error == nil)
        #expect(textOnly.requests.isEmpty && vision.requests.count == 1)
        let withoutImage = await collect(chain.stream(LLMRequest(messages: [LLMMessage(role: .user, content: "x")])))
        #expect(withoutImage.error == nil)
        #expect(textOnly.requests.count == 1 && vision.requests.count == 1)
    }

    @Test("LLMMessage's JSON (stored tool turns): images only when there are some; rows written before images decode")
    func storedJSON() throws {
        let old = #"{"role":"assistant","toolCalls":[{"id":"call_1","name":"web_search","arguments":"{}"}]}"#
        let decoded = try JSONDecoder().decode(LLMMessage.self, from: Data(old.utf8))
        #expect(decoded.images.isEmpty && decoded.toolCalls.count == 1 && decoded.content == nil)
        let encoded = String(decoding: try JSONEncoder().encode(LLMMessage(role: .user, content: "a")), as: UTF8.self)
        #expect(!encoded.contains("images"))
        let withImage = LLMMessage(role: .user, content: "a", images: [Self.image])
        #expect(try JSONDecoder().decode(LLMMessage.self, from: JSONEncoder().encode(withImage)) == withImage)
    }
}
