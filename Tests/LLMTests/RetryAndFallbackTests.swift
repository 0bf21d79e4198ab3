import Foundation
import Services
import Synchronization
import Testing

@Suite("Retries and fallbacks")
struct RetryAndFallbackTests {
    static let ok =
        "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
    static let request = LLMRequest(messages: [LLMMessage(role: .user, content: "hi")])
    static let rateLimited = #"{"error":{"message":"Rate limit reached.","type":"requests","code":"rate_limit_exceeded"}}"#

    static func retrying(_ client: ScriptedHTTPClient, sleeper: RecordingSleeper, maxRetries: Int = 2, random: Double = 0.5) -> RetryingLLMProvider {
        RetryingLLMProvider(
            OpenAIFamilyProvider(configuration: LLMConfiguration(apiKey: testKey, model: "gpt-4o-mini"), client: client),
            policy: LLMRetryPolicy(maxRetries: maxRetries),
            sleep: sleeper.sleep, random: { random })
    }

    @Test("429 and 5xx are retried with full-jitter backoff, then succeed")
    func backoff() async {
        let client = ScriptedHTTPClient([.json(429, Self.rateLimited), .json(503, ""), .sse(Self.ok)])
        let sleeper = RecordingSleeper()
        let result = await collect(Self.retrying(client, sleeper: sleeper, random: 0.5).stream(Self.request))
        #expect(result.error == nil)
        #expect(text(of: result.events) == "ok")
        #expect(client.requests.count == 3)
        // 0.5 × min(8 s, 0.5 s × 2^attempt): 250 ms, then 500 ms.
        #expect(sleeper.delays == [.milliseconds(250), .milliseconds(500)])
    }

    @Test("the backoff is capped at 8 s and jitter spans 0 to the cap")
    func cap() {
        let policy = LLMRetryPolicy(maxRetries: 10)
        let error = LLMError(.upstreamUnavailable, "", provider: "openai")
        #expect(policy.delay(after: error, attempt: 6, random: { 0.999 }) <= .seconds(8))
        #expect(policy.delay(after: error, attempt: 6, random: { 0.999 }) > .seconds(7))
        #expect(policy.delay(after: error, attempt: 0, random: { 0 }) == .zero)
    }

    @Test("server delays are honoured: retry-after-ms, Retry-After seconds and HTTP date; over 60 s the backoff is used")
    func honoured() async {
        let client = ScriptedHTTPClient([
            .json(429, Self.rateLimited, headers: [("retry-after-ms", "1200")]), .json(429, Self.rateLimited, headers: [("Retry-After", "3")]),
            .sse(Self.ok),
        ])
        let sleeper = RecordingSleeper()
        _ = await collect(Self.retrying(client, sleeper: sleeper).stream(Self.request))
        #expect(sleeper.delays == [.milliseconds(1200), .seconds(3)])

        let date = ScriptedHTTPClient([.json(503, "", headers: [("Retry-After", "Wed, 21 Oct 2015 07:28:02 GMT")]), .sse(Self.ok)])
        let dated = RecordingSleeper()
        let provider = RetryingLLMProvider(
            OpenAIFamilyProvider(
                configuration: LLMConfiguration(apiKey: testKey, model: "m"), client: date,
                clock: FixedClock(date: Date(timeIntervalSince1970: 1_445_412_480))),
            policy: LLMRetryPolicy(), sleep: dated.sleep, random: { 0.5 })
        _ = await collect(provider.stream(Self.request))
        #expect(dated.delays == [.seconds(2)])

        let long = ScriptedHTTPClient([.json(429, Self.rateLimited, headers: [("Retry-After", "3600")]), .sse(Self.ok)])
        let capped = RecordingSleeper()
        _ = await collect(Self.retrying(long, sleeper: capped, random: 1).stream(Self.request))
        #expect(capped.delays == [.milliseconds(500)])
    }

    @Test("never retried: insufficient_quota, request too large, auth, a 400; x-should-retry: false stops a 5xx retry, true forces a 400's")
    func notRetried() async {
        let bodies: [(Int, String, [(name: String, value: String)])] = [
            (
                429,
                #"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                []
            ),
            (
                429, #"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                [("x-should-retry", "true")]
            ),
            (
                429,
                #"{"error":{"message":"Request too large for gpt-4o in organization org-xxx on tokens per min (TPM): Limit 30000, Requested 34307.","type":"tokens","code":"rate_limit_exceeded"}}"#,
                []
            ),
            (401, #"{"error":{"message":"bad key","code":"invalid_api_key"}}"#, []),
            (400, #"{"error":{"message":"bad","code":"invalid_value"}}"#, []),
            (500, "", [("x-should-retry", "false")]),
        ]
        for (status, body, headers) in bodies {
            let client = ScriptedHTTPClient([.json(status, body, headers: headers), .sse(Self.ok)])
            let sleeper = RecordingSleeper()
            let result = await collect(Self.retrying(client, sleeper: sleeper).stream(Self.request))
            #expect(result.error != nil, "\(status) \(body)")
            #expect(client.requests.count == 1, "\(status) \(body)")
            #expect(sleeper.delays.isEmpty)
        }
        let forced = ScriptedHTTPClient([.json(400, #"{"error":{"message":"try again"}}"#, headers: [("x-should-retry", "true")]), .sse(Self.ok)])
        let result = await collect(Self.retrying(forced, sleeper: RecordingSleeper()).stream(Self.request))
        #expect(result.error == nil)
        #expect(forced.requests.count == 2)
    }

    @Test("retries are bounded by max_retries; the last error is thrown")
    func bounded() async {
        let client = ScriptedHTTPClient(Array(repeating: .json(503, ""), count: 5))
        let sleeper = RecordingSleeper()
        let result = await collect(Self.retrying(client, sleeper: sleeper, maxRetries: 2).stream(Self.request))
        #expect((result.error as? LLMError)?.kind == .upstreamUnavailable)
        #expect(client.requests.count == 3)
        #expect(sleeper.delays.count == 2)
        let none = ScriptedHTTPClient(Array(repeating: .json(503, ""), count: 5))
        _ = await collect(Self.retrying(none, sleeper: sleeper, maxRetries: 0).stream(Self.request))
        #expect(none.requests.count == 1)
    }

    @Test("connection errors and a stream that dies before its first delta are retried; after the first delta never")
    func firstDelta() async {
        let client = ScriptedHTTPClient([
            .failure(.connectFailed(detail: "refused")), .sse(": ping\n\n", ending: .transport(detail: "reset")), .sse(Self.ok),
        ])
        let result = await collect(Self.retrying(client, sleeper: RecordingSleeper()).stream(Self.request))
        #expect(result.error == nil)
        #expect(client.requests.count == 3)

        let partial = "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hal\"}}]}\n\n"
        let broken = ScriptedHTTPClient([.sse(partial, ending: .transport(detail: "reset")), .sse(Self.ok)])
        let sleeper = RecordingSleeper()
        let after = await collect(Self.retrying(broken, sleeper: sleeper).stream(Self.request))
        #expect(after.events == [.text("Hal")])
        #expect((after.error as? LLMError)?.kind == .streamBroken)
        #expect((after.error as? LLMError)?.partialText == "Hal")
        #expect(broken.requests.count == 1)
        #expect(sleeper.delays.isEmpty)
    }

    // MARK: - Fallbacks

    /// A provider that answers from a script and records the models it was asked for.
    final class Scripted: LLMProvider {
        let name: String
        let defaultModel: String? = "primary-model"
        private let outcome: Result<[LLMStreamEvent], LLMError>
        private let failAfterFirst: LLMError?
        private let asked = Mutex<[String?]>([])
        var models: [String?] { asked.withLock { $0 } }

        init(_ name: String, _ outcome: Result<[LLMStreamEvent], LLMError>, failAfterFirst: LLMError? = nil) {
            self.name = name
            self.outcome = outcome
            self.failAfterFirst = failAfterFirst
        }

        func contextWindow(model: String) -> Int { 1000 }

        func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
            asked.withLock { $0.append(request.model) }
            return AsyncThrowingStream { continuation in
                switch outcome {
                case .success(let events):
                    if let failAfterFirst, let first = events.first {
                        continuation.yield(first)
                        continuation.finish(throwing: failAfterFirst)
                        return
                    }
                    for event in events { continuation.yield(event) }
                    continuation.finish()
                case .failure(let error):
                    continuation.finish(throwing: error)
                }
            }
        }
    }

    static let answer: [LLMStreamEvent] = [.text("fine"), .finished(reason: .stop, model: "b")]

    @Test("fallbacks are tried in order, with their own model, on rate limits, quota, unavailability, timeouts and unknown models")
    func order() async {
        for kind in FallbackLLMProvider.fallbackKinds {
            let first = Scripted("openai", .failure(LLMError(kind, "x", provider: "openai")))
            let second = Scripted("openai", .failure(LLMError(.upstreamUnavailable, "y", provider: "openai")))
            let third = Scripted("openai-compatible", .success(Self.answer))
            let chain = FallbackLLMProvider([.init(first), .init(second, model: "gpt-4o-mini"), .init(third, model: "llama3.1")])
            let result = await collect(chain.stream(LLMRequest(messages: [], model: "asked")))
            #expect(result.error == nil, "\(kind)")
            #expect(result.events == Self.answer)
            #expect(first.models == ["asked"])
            #expect(second.models == ["gpt-4o-mini"])
            #expect(third.models == ["llama3.1"])
        }
    }

    @Test(
        "no fallback on authentication, context overflow, content filter, bad request, or after the first delta; all failing → the primary's error"
    )
    func noFallback() async {
        for kind in [LLMError.Kind.authentication, .contextOverflow, .contentFiltered, .badRequest, .requestTooLarge] {
            let first = Scripted("openai", .failure(LLMError(kind, "x", provider: "openai")))
            let second = Scripted("openai", .success(Self.answer))
            let result = await collect(FallbackLLMProvider([.init(first), .init(second, model: "b")]).stream(Self.request))
            #expect((result.error as? LLMError)?.kind == kind)
            #expect(second.models.isEmpty, "\(kind)")
        }
        let breaks = Scripted(
            "openai", .success(Self.answer), failAfterFirst: LLMError(.streamBroken, "cut", provider: "openai", partialText: "fine"))
        let second = Scripted("openai", .success(Self.answer))
        let result = await collect(FallbackLLMProvider([.init(breaks), .init(second, model: "b")]).stream(Self.request))
        #expect(result.events == [.text("fine")])
        #expect((result.error as? LLMError)?.kind == .streamBroken)
        #expect(second.models.isEmpty)

        let primary = Scripted("openai", .failure(LLMError(.rateLimited, "primary limited", provider: "openai")))
        let fallback = Scripted("openai", .failure(LLMError(.modelNotFound, "no such fallback", provider: "openai")))
        let both = await collect(FallbackLLMProvider([.init(primary), .init(fallback, model: "b")]).stream(Self.request))
        #expect((both.error as? LLMError)?.message == "primary limited")
    }
}
