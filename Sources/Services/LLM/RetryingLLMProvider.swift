import Logging

/// When and how long to wait before trying a failed request again (the official SDKs' rules).
///
/// Retried: `.rateLimited` (429 without quota or size trouble), `.upstreamUnavailable` (5xx, 409,
/// connection refused or reset, a stream that ended before any delta), `.timeout` (408 and
/// transport timeouts). Never: `.quotaExhausted`, `.requestTooLarge` — whatever the headers say —
/// and every other kind unless the provider sent `x-should-retry: true`; `x-should-retry: false`
/// stops any retry. Only before the first delta reached the caller (the wrapper checks that).
///
/// The delay is the provider's `retry-after-ms` / `Retry-After` / message hint when it is at most
/// `maxHonouredDelay`, else exponential backoff with full jitter: a uniform draw in
/// `0 ... min(maxDelay, initialDelay × 2^attempt)`.
public struct LLMRetryPolicy: Sendable {
    public var maxRetries: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    /// A server-given delay longer than this is not waited for (the backoff is used instead).
    public var maxHonouredDelay: Duration

    public init(
        maxRetries: Int = 2, initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(8), maxHonouredDelay: Duration = .seconds(60)
    ) {
        self.maxRetries = maxRetries
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxHonouredDelay = maxHonouredDelay
    }

    public func shouldRetry(_ error: LLMError) -> Bool {
        switch error.kind {
        case .quotaExhausted, .requestTooLarge, .notConfigured, .streamBroken: return false
        default: break
        }
        if let forced = error.shouldRetry { return forced }
        return [.rateLimited, .upstreamUnavailable, .timeout].contains(error.kind)
    }

    /// The wait before retry number `attempt + 1` (`attempt` counts from 0). `random` returns a
    /// value in `0..<1`.
    public func delay(after error: LLMError, attempt: Int, random: () -> Double) -> Duration {
        if let hinted = error.retryAfterMs, hinted >= 0, Duration.milliseconds(hinted) <= maxHonouredDelay {
            return .milliseconds(hinted)
        }
        let ceiling = min(maxDelay, initialDelay * (1 << min(attempt, 20)))
        return ceiling * random()
    }
}

/// Retries a provider's failed requests by `LLMRetryPolicy`, only while nothing has been yielded
/// to the caller. The sleeper and the random source are injected so that tests do not wait.
public struct RetryingLLMProvider: LLMProvider {
    public typealias Sleeper = @Sendable (Duration) async throws -> Void

    public let base: any LLMProvider
    public let policy: LLMRetryPolicy
    private let sleep: Sleeper
    private let random: @Sendable () -> Double
    private let logger: Logger?

    public init(
        _ base: any LLMProvider, policy: LLMRetryPolicy, logger: Logger? = nil, sleep: @escaping Sleeper = { try await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.base = base
        self.policy = policy
        self.sleep = sleep
        self.random = random
        self.logger = logger
    }

    public var name: String { base.name }
    public var defaultModel: String? { base.defaultModel }
    public func contextWindow(model: String) -> Int { base.contextWindow(model: model) }
    public func acceptsImages(model: String) -> Bool { base.acceptsImages(model: model) }

    /// Runs in the consumer's task, like the providers it wraps (no task of its own, no extra
    /// thread hop per delta).
    public func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        let cursor = RetryCursor(self, request: request)
        return AsyncThrowingStream(unfolding: { try await cursor.next() })
    }

    /// One `stream(_:)` call. Only the consuming task touches it, one `next()` at a time
    /// (`AsyncThrowingStream(unfolding:)` never overlaps them), hence `@unchecked Sendable`.
    private final class RetryCursor: @unchecked Sendable {
        private let provider: RetryingLLMProvider
        private let request: LLMRequest
        private var events = AttemptEvents()
        private var attempt = 0

        init(_ provider: RetryingLLMProvider, request: LLMRequest) {
            self.provider = provider
            self.request = request
        }

        func next() async throws -> LLMStreamEvent? {
            while !events.finished {
                do {
                    return try await events.next { provider.base.stream(request) }
                } catch let error as LLMError
                    where !events.yielded && attempt < provider.policy.maxRetries && provider.policy.shouldRetry(error) && !Task.isCancelled
                {
                    events.restart()
                    let delay = provider.policy.delay(after: error, attempt: attempt, random: provider.random)
                    provider.logger?.notice(
                        "LLM request failed; retrying",
                        metadata: [
                            "provider": "\(provider.base.name)", "kind": "\(error.kind.rawValue)",
                            "status": "\(error.status.map(String.init) ?? "-")",
                            "attempt": "\(attempt + 1)",
                            "delay_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
                        ])
                    attempt += 1
                    do {
                        try await provider.sleep(delay)
                    } catch {
                        events.finished = true
                        throw CancellationError()
                    }
                } catch {
                    events.finished = true
                    throw error
                }
            }
            return nil
        }
    }
}

/// Tries providers (or models) in order: the next one only when the previous failed **before its
/// first delta** with an error another provider or model may not have — `.rateLimited`,
/// `.quotaExhausted`, `.upstreamUnavailable`, `.timeout`, `.modelNotFound`. Authentication,
/// context overflow, content filter, bad requests and broken streams are the caller's answer and
/// end the chain. When every member fails, the primary's error is thrown (it is the one the
/// configuration names); the log says what the fallbacks answered.
public struct FallbackLLMProvider: LLMProvider {
    public struct Member: Sendable {
        public var provider: any LLMProvider
        /// The model this member uses whatever the request asked; nil: the request's (the primary).
        public var model: String?

        public init(_ provider: any LLMProvider, model: String? = nil) {
            self.provider = provider
            self.model = model
        }
    }

    public static let fallbackKinds: Set<LLMError.Kind> = [.rateLimited, .quotaExhausted, .upstreamUnavailable, .timeout, .modelNotFound]

    public let members: [Member]
    private let logger: Logger?

    /// `members` must not be empty; the first is the primary.
    public init(_ members: [Member], logger: Logger? = nil) {
        precondition(!members.isEmpty, "a fallback chain needs a primary")
        self.members = members
        self.logger = logger
    }

    public var name: String { members[0].provider.name }
    public var defaultModel: String? { members[0].model ?? members[0].provider.defaultModel }
    public func contextWindow(model: String) -> Int { members[0].provider.contextWindow(model: model) }
    /// The primary's answer: a request with images skips the fallbacks whose model takes none.
    public func acceptsImages(model: String) -> Bool { members[0].provider.acceptsImages(model: model) }

    /// Runs in the consumer's task, like the providers it wraps.
    public func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        let cursor = FallbackCursor(self, request: request)
        return AsyncThrowingStream(unfolding: { try await cursor.next() })
    }

    /// One `stream(_:)` call. Only the consuming task touches it, one `next()` at a time
    /// (`AsyncThrowingStream(unfolding:)` never overlaps them), hence `@unchecked Sendable`.
    private final class FallbackCursor: @unchecked Sendable {
        private let chain: FallbackLLMProvider
        private let request: LLMRequest
        /// The members tried, in order: all of them, but for a request with images the fallbacks
        /// whose model takes none (they would only answer a 400).
        private let tried: [FallbackLLMProvider.Member]
        private var position = 0
        private var events = AttemptEvents()
        private var firstError: (any Error)?

        init(_ chain: FallbackLLMProvider, request: LLMRequest) {
            self.chain = chain
            self.request = request
            let hasImages = request.messages.contains { !$0.images.isEmpty }
            self.tried = chain.members.enumerated().filter { index, member in
                index == 0 || !hasImages || member.provider.acceptsImages(model: member.model ?? request.model ?? member.provider.defaultModel ?? "")
            }.map(\.element)
        }

        func next() async throws -> LLMStreamEvent? {
            while !events.finished {
                let member = tried[position]
                var attempt = request
                if let model = member.model { attempt.model = model }
                do {
                    return try await events.next { member.provider.stream(attempt) }
                } catch let error as LLMError
                    where !events.yielded && FallbackLLMProvider.fallbackKinds.contains(error.kind) && position + 1 < tried.count
                    && !Task.isCancelled
                {
                    chain.logger?.notice(
                        "LLM provider failed; trying the next fallback",
                        metadata: [
                            "provider": "\(member.provider.name)", "model": "\(attempt.model ?? member.provider.defaultModel ?? "-")",
                            "kind": "\(error.kind.rawValue)", "next": "\(position + 1)",
                        ])
                    if firstError == nil { firstError = error }
                    events.restart()
                    position += 1
                } catch {
                    events.finished = true
                    let primaryFailed = firstError != nil && error is LLMError && !events.yielded
                    throw primaryFailed ? firstError! : error
                }
            }
            return nil
        }
    }
}

/// The attempt a wrapper is reading (the retry's current try, the fallback chain's current member),
/// and whether anything of it reached the caller: after that, neither wrapper may start again.
private struct AttemptEvents {
    private var iterator: AsyncThrowingStream<LLMStreamEvent, any Error>.AsyncIterator?
    /// An event went to the caller.
    private(set) var yielded = false
    /// The stream ended or failed for good.
    var finished = false

    /// The next event of the current attempt, which `start` opens when there is none; nil (and
    /// `finished`) at its end.
    mutating func next(start: () -> AsyncThrowingStream<LLMStreamEvent, any Error>) async throws -> LLMStreamEvent? {
        var current = iterator ?? start().makeAsyncIterator()
        let event = try await current.next()
        iterator = current
        if event == nil { finished = true } else { yielded = true }
        return event
    }

    /// Drops the current attempt: the next `next` opens another.
    mutating func restart() { iterator = nil }
}
