import Foundation
import Testing

@testable import Services

/// The Chat Completions stream quirks, through `OpenAIFamilyProvider` and a scripted client, each
/// stream fed in several chunk sizes.
@Suite("Chat Completions stream decoding")
struct StreamDecoderTests {
    static let request = LLMRequest(messages: [LLMMessage(role: .user, content: "Say hi, please!")], model: "gpt-4o-mini")

    static func provider(_ client: ScriptedHTTPClient, _ kind: LLMConfiguration.ProviderKind = .openai) -> OpenAIFamilyProvider {
        OpenAIFamilyProvider(
            configuration: LLMConfiguration(
                provider: kind, baseURL: kind == .openai ? nil : "http://127.0.0.1:9", apiKey: testKey, model: "gpt-4o-mini"),
            client: client)
    }

    /// Streams `sse` through the provider cut into chunks of each size; every size must give the
    /// same result, which is returned.
    static func run(_ sse: String, kind: LLMConfiguration.ProviderKind = .openai, request: LLMRequest = request) async -> (
        events: [LLMStreamEvent], error: (any Error)?
    ) {
        var first: (events: [LLMStreamEvent], error: (any Error)?)?
        for size in [1, 2, 3, 5, 64, 100_000] {
            let result = await collect(provider(ScriptedHTTPClient([.sse(sse, chunkSize: size)]), kind).stream(request))
            if let first {
                #expect(result.events == first.events, "chunk size \(size)")
                #expect(result.error as? LLMError == first.error as? LLMError, "chunk size \(size)")
            } else {
                first = result
            }
        }
        return first!
    }

    static func sse(_ chunks: [String]) -> String { chunks.map { "data: \($0)\n\n" }.joined() }

    @Test("text deltas, the obfuscation padding, the usage-only chunk with choices [] and [DONE] (OpenAI's capture)")
    func openAIText() async {
        let stream = Self.sse([
            #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1761564674,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Qx"}"#,
            #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1761564674,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"a8F"}"#,
            #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1761564674,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"lo! 👋"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            #"{"id":"chatcmpl-CVFjOTBIgA3kuQLnIXXxtg7Ge7hbs","object":"chat.completion.chunk","created":1761564674,"model":"gpt-3.5-turbo-0125","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"a"}"#,
            #"{"id":"chatcmpl-CVFjOTBIgA3kuQLnIXXxtg7Ge7hbs","object":"chat.completion.chunk","created":1761564674,"model":"gpt-3.5-turbo-0125","service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"8618FsxJD2gV"}"#,
            "[DONE]",
        ])
        let result = await Self.run(stream)
        #expect(result.error == nil)
        #expect(
            result.events == [
                .text("Hel"), .text("lo! 👋"), .usage(LLMUsage(promptTokens: 10, completionTokens: 5, estimated: false)),
                .finished(reason: .stop, model: "gpt-3.5-turbo-0125"),
            ])
    }

    @Test(
        "Azure: the first chunk with empty choices, id and model and prompt_filter_results; content_filter_results on chunks; no usage → estimated"
    )
    func azure() async {
        let stream = Self.sse([
            #"{"id":"","choices":[],"created":0,"model":"","object":"","system_fingerprint":null,"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}"#,
            #"{"id":"chatcmpl-2","choices":[{"index":0,"delta":{"role":"assistant","content":"12345678"},"finish_reason":null,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],"created":1,"model":"gpt-4.1-2025-04-14","object":"chat.completion.chunk"}"#,
            #"{"id":"chatcmpl-2","choices":[{"index":0,"delta":{},"finish_reason":"stop","content_filter_results":{}}],"created":1,"model":"gpt-4.1-2025-04-14","object":"chat.completion.chunk"}"#,
            "[DONE]",
        ])
        let result = await Self.run(stream, kind: .azure)
        #expect(result.error == nil)
        // "Say hi, please!" is 15 bytes → 4 tokens; "12345678" is 8 bytes → 2 tokens.
        #expect(
            result.events == [
                .text("12345678"), .usage(LLMUsage(promptTokens: 4, completionTokens: 2, estimated: true)),
                .finished(reason: .stop, model: "gpt-4.1-2025-04-14"),
            ])
    }

    @Test("choices: null and choices missing on the usage chunk (vLLM and others); a server that reports model \"\" gets the requested model")
    func nullAndMissingChoices() async {
        for usageChunk in [
            #"{"id":"x","model":"","choices":null,"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            #"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        ] {
            let stream = Self.sse([
                #"{"id":"x","model":"","choices":[{"index":0,"delta":{"content":null}}]}"#,
                #"{"id":"x","model":"","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}"#, usageChunk, "[DONE]",
            ])
            let result = await Self.run(stream)
            #expect(result.error == nil)
            #expect(
                result.events == [
                    .text("ok"), .usage(LLMUsage(promptTokens: 3, completionTokens: 1, estimated: false)),
                    .finished(reason: .stop, model: "gpt-4o-mini"),
                ])
        }
    }

    @Test("tool calls: pieces by index, two parallel calls interleaved, rebuilt by the accumulator")
    func parallelToolCalls() async {
        let stream = Self.sse([
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"web_search","arguments":"{\"q\":"}}]},"finish_reason":null}]}"#,
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"swift\"}"}}]},"finish_reason":null}]}"#,
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
            #"{"id":"x","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            #"{"id":"x","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}}"#, "[DONE]",
        ])
        let result = await Self.run(stream)
        #expect(result.error == nil)
        #expect(result.events.last == .finished(reason: .toolCalls, model: "gpt-4o"))
        var calls = LLMToolCallAccumulator()
        for event in result.events { calls.add(event) }
        #expect(
            calls.calls == [
                LLMToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                LLMToolCall(id: "call_2", name: "web_search", arguments: #"{"q":"swift"}"#),
            ])
    }

    @Test("tool calls sent whole in one chunk (Ollama), without index, one with arguments as a JSON object")
    func wholeToolCalls() async {
        let stream = Self.sse([
            #"{"id":"chatcmpl-9","model":"llama3.1","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_ab","type":"function","function":{"name":"web_search","arguments":"{\"q\":\"x\"}"}},{"id":"call_cd","type":"function","function":{"name":"get_time","arguments":{"zone":"UTC"}}}]},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ])
        let result = await Self.run(stream)
        #expect(result.error == nil)
        #expect(
            Array(result.events.prefix(2)) == [
                .toolCall(index: 0, id: "call_ab", name: "web_search", arguments: #"{"q":"x"}"#),
                .toolCall(index: 1, id: "call_cd", name: "get_time", arguments: #"{"zone":"UTC"}"#),
            ])
        var calls = LLMToolCallAccumulator()
        for event in result.events { calls.add(event) }
        #expect(calls.calls.map(\.id) == ["call_ab", "call_cd"])
        #expect(result.events.last == .finished(reason: .toolCalls, model: "llama3.1"))
    }

    @Test("a refusal is streamed as text")
    func refusal() async {
        let stream = Self.sse([
            #"{"id":"x","model":"gpt-4o","choices":[{"index":0,"delta":{"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#, "[DONE]",
        ])
        let result = await Self.run(stream)
        #expect(text(of: result.events) == "I can't help with that.")
    }

    @Test("content_filter finish → contentFiltered with the categories that fired and the partial text")
    func contentFilterFinish() async {
        let stream = Self.sse([
            #"{"id":"x","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Once upon"},"finish_reason":null,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
            #"{"id":"x","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"content_filter","content_filter_results":{"violence":{"filtered":true,"severity":"high"},"protected_material_text":{"filtered":true,"detected":true},"hate":{"filtered":false,"severity":"safe"}}}]}"#,
            "[DONE]",
        ])
        let result = await Self.run(stream, kind: .azure)
        let error = result.error as? LLMError
        #expect(error?.kind == .contentFiltered)
        #expect(error?.categories == ["protected_material_text", "violence"])
        #expect(error?.partialText == "Once upon")
        #expect(!result.events.contains { if case .finished = $0 { true } else { false } })
    }

    @Test("an {\"error\":…} event after the 200, before any delta, is classified like an HTTP error")
    func errorEventBeforeDelta() async {
        let stream = Self.sse([
            #"{"error":{"message":"Rate limit reached for gpt-4o-mini. Please try again in 84ms.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#
        ])
        let result = await Self.run(stream)
        let error = result.error as? LLMError
        #expect(error?.kind == .rateLimited)
        #expect(error?.retryAfterMs == 84)
    }

    @Test("llama.cpp's bare error: line about the context size → contextOverflow")
    func llamaCppError() async {
        let stream =
            #"error: {"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}"#
            + "\n\ndata: [DONE]\n\n"
        let result = await Self.run(stream, kind: .openAICompatible)
        let error = result.error as? LLMError
        #expect(error?.kind == .contextOverflow)
        #expect(error?.status == 400)
        #expect(error?.provider == "openai-compatible")
    }

    @Test("an error event after text → streamBroken with the partial text and the error's message")
    func errorAfterDelta() async {
        let stream = Self.sse([
            #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"partial "},"finish_reason":null}]}"#,
            #"{"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}}"#,
        ])
        let result = await Self.run(stream)
        let error = result.error as? LLMError
        #expect(result.events == [.text("partial ")])
        #expect(error?.kind == .streamBroken)
        #expect(error?.partialText == "partial ")
        #expect(error?.message.contains("The server had an error") == true)
    }

    @Test("a body that ends without finish_reason or [DONE] after text → streamBroken; a transport error mid-stream too")
    func truncated() async {
        let cut = Self.sse([#"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"half an ans"},"finish_reason":null}]}"#])
        let result = await Self.run(cut)
        #expect((result.error as? LLMError)?.kind == .streamBroken)
        #expect((result.error as? LLMError)?.partialText == "half an ans")

        let broken = await collect(
            Self.provider(ScriptedHTTPClient([.sse(cut, ending: .transport(detail: "connection reset by peer"))])).stream(Self.request))
        #expect((broken.error as? LLMError)?.kind == .streamBroken)
        let idle = await collect(Self.provider(ScriptedHTTPClient([.sse(cut, ending: .timedOut(.idle))])).stream(Self.request))
        #expect((idle.error as? LLMError)?.kind == .streamBroken)
        #expect((idle.error as? LLMError)?.partialText == "half an ans")
    }

    @Test("a stream that ends or stalls before any delta is not streamBroken (so it can be retried)")
    func emptyStream() async {
        let empty = await collect(Self.provider(ScriptedHTTPClient([.sse("")])).stream(Self.request))
        #expect((empty.error as? LLMError)?.kind == .upstreamUnavailable)
        let idle = await collect(Self.provider(ScriptedHTTPClient([.sse(": keep-alive\n\n", ending: .timedOut(.idle))])).stream(Self.request))
        #expect((idle.error as? LLMError)?.kind == .timeout)
    }

    @Test("a 200 answered as application/json (stream ignored) is decoded as one completion")
    func nonStreaming() async {
        let body =
            #"{"id":"chatcmpl-CVFjOTBIgA3kuQLnIXXxtg7Ge7hbs","object":"chat.completion","created":1761564674,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#
        let result = await collect(Self.provider(ScriptedHTTPClient([.json(200, body)])).stream(Self.request))
        #expect(result.error == nil)
        #expect(
            result.events == [
                .text("Hello!"), .usage(LLMUsage(promptTokens: 10, completionTokens: 5, estimated: false)),
                .finished(reason: .stop, model: "gpt-4o-mini-2024-07-18"),
            ])
    }

    @Test("[DONE] without a finish_reason finishes with stop; events after [DONE] are ignored")
    func doneOnly() async {
        let stream = Self.sse([
            #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}"#, "[DONE]",
            #"{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"b"}}]}"#,
        ])
        let result = await Self.run(stream)
        #expect(
            result.events == [
                .text("a"), .usage(LLMUsage(promptTokens: 4, completionTokens: 1, estimated: true)), .finished(reason: .stop, model: "m"),
            ])
    }
}

/// Chunks take a typed path (`JSONReader`) when they can and the general one (`JSONSerialization`)
/// otherwise; both must give the same events and the same end.
@Suite("Chat Completions chunks: the typed path and the general path agree")
struct StreamDecoderPathTests {
    static let chunks = [
        #"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"obfuscation":"aZ"}"#,
        #"{"choices":[{"index":0,"delta":{"content":"He said \"hi\"\n\u00e9\ud83d\ude00 😀"}}]}"#,
        #"{"choices":[{"delta":{"refusal":"no"}},{"index":1,"delta":{"content":"other choice"}}]}"#,
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"web_search","arguments":""}},{"id":"","function":{"arguments":"{\"q\":"}}]}}]}"#,
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":null},{"function":{"name":null,"arguments":null}}]}}]}"#,
        #"{"choices":[{"index":0,"message":{"content":"whole"},"finish_reason":"stop"}]}"#,
        #"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
        #"{"choices":null,"usage":{"completion_tokens":5}}"#,
        #"{"model":"","usage":null}"#,
        #"{"error":null,"choices":[{"index":0,"delta":{"content":"after a null error"},"finish_reason":"length"}]}"#,
        // Only the general path reads these; the typed one must hand them over.
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":{"b":1,"a":[2]}}}]}}]}"#,
        #"{"choices":[{"index":0,"delta":{"content":"filtered?"},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
        #"{"choices":[{"index":0.0,"delta":{"content":"float index"}}],"usage":{"prompt_tokens":3.0}}"#,
        #"{"choices":[null,{"delta":{"content":"after null"}}]}"#,
        #"{"choices":[{"index":0,"delta":{"content":"trailing"}}]} x"#,
        #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        #"{"choices":[{"index":0,"delta":{"content":"end"},"finish_reason":"content_filter"}]}"#,
        "  {\"choices\":[{\"delta\":{\"content\":\"spaced\"}}]}\t", "[DONE]",
    ]

    struct Outcome: Equatable {
        var events: [LLMStreamEvent]
        var error: LLMError?
    }

    static func decode(_ chunk: String, typed: Bool) -> Outcome {
        var decoder = OpenAIChatStreamDecoder(provider: "openai", requestedModel: "m", promptBytes: 40)
        decoder.typedPath = typed
        var events: [LLMStreamEvent] = []
        do {
            events += try decoder.decode(SSEEvent(data: "{\"choices\":[{\"delta\":{\"content\":\"first\"}}]}"))
            events += try decoder.decode(SSEEvent(data: chunk))
            events += try decoder.finish()
            return Outcome(events: events, error: nil)
        } catch {
            return Outcome(events: events, error: error)
        }
    }

    @Test("every chunk gives the same events, usage, finish and error either way", arguments: chunks)
    func samePaths(_ chunk: String) {
        let typed = Self.decode(chunk, typed: true)
        #expect(typed == Self.decode(chunk, typed: false))
        #expect(typed.events.count > 1 || typed.error != nil)
    }
}
