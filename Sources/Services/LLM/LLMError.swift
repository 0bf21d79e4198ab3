import Foundation
import RPC

extension RPCError.Code {
    /// The agent was called but no provider is configured: `data.missing` names the settings.
    public static let llmNotConfigured = RPCError.Code(-32050)
    public static let llmAuthentication = RPCError.Code(-32051)
    public static let llmModelNotFound = RPCError.Code(-32052)
    /// The request does not fit the model's context window (also found by the agent before calling).
    public static let llmContextOverflow = RPCError.Code(-32053)
    /// The provider (or web search) limits the rate: `data.retryAfterMs` when it said.
    public static let llmRateLimited = RPCError.Code(-32054)
    /// Out of quota or credits: retrying will not help until the account changes.
    public static let llmQuotaExhausted = RPCError.Code(-32055)
    public static let llmRequestTooLarge = RPCError.Code(-32056)
    /// The provider's content filter refused the prompt or the answer: `data.categories`.
    public static let llmContentFiltered = RPCError.Code(-32057)
    /// 5xx, connection refused or reset: after the retries.
    public static let llmUpstreamUnavailable = RPCError.Code(-32058)
    public static let llmTimeout = RPCError.Code(-32059)
    /// The stream broke after the first delta: `data.partialText` is what arrived.
    public static let llmStreamBroken = RPCError.Code(-32060)
    /// Any other refusal of the request by the provider (a 400 this taxonomy has no name for).
    public static let llmBadRequest = RPCError.Code(-32061)
}

/// One error taxonomy across providers and web search. `message` is safe to show and log: built
/// from the provider's error `message`/`code`/`type` with anything that looks like a key removed
/// (`LLMError.redacted`), never the raw body.
public struct LLMError: Error, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Codable, CaseIterable {
        case notConfigured, authentication, modelNotFound, contextOverflow, rateLimited, quotaExhausted, requestTooLarge, contentFiltered,
            upstreamUnavailable, timeout, streamBroken, badRequest
    }

    public var kind: Kind
    public var message: String
    /// `openai`, `azure`, `openai-compatible`, `tavily`.
    public var provider: String
    /// The HTTP status, when there was a response.
    public var status: Int?
    /// The provider's request id (`x-request-id`, `apim-request-id`, Tavily's `request_id`).
    public var requestId: String?
    /// From `retry-after-ms`, `Retry-After` (seconds or an HTTP date) or the error's own hint.
    public var retryAfterMs: Int?
    /// Content-filter categories that fired (`hate`, `violence`, …).
    public var categories: [String]
    /// `.streamBroken`: the text streamed before the break.
    public var partialText: String?
    /// `.notConfigured`: the settings to set, as `llm.api_key (AGENTD_LLM_API_KEY)`.
    public var missingSettings: [String]
    /// `.contextOverflow` found before calling: the estimate and the window.
    public var estimatedTokens: Int?
    public var contextWindow: Int?
    /// The provider's `x-should-retry` header, when it sent one: it overrides the status-based
    /// retry decision (`LLMRetryPolicy`). Not part of the wire `data`.
    public var shouldRetry: Bool?

    public init(
        _ kind: Kind, _ message: String, provider: String, status: Int? = nil, requestId: String? = nil, retryAfterMs: Int? = nil,
        categories: [String] = [], partialText: String? = nil, missingSettings: [String] = [], estimatedTokens: Int? = nil,
        contextWindow: Int? = nil
    ) {
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.requestId = requestId
        self.retryAfterMs = retryAfterMs
        self.categories = categories
        self.partialText = partialText
        self.missingSettings = missingSettings
        self.estimatedTokens = estimatedTokens
        self.contextWindow = contextWindow
    }

    public var code: RPCError.Code {
        switch kind {
        case .notConfigured: .llmNotConfigured
        case .authentication: .llmAuthentication
        case .modelNotFound: .llmModelNotFound
        case .contextOverflow: .llmContextOverflow
        case .rateLimited: .llmRateLimited
        case .quotaExhausted: .llmQuotaExhausted
        case .requestTooLarge: .llmRequestTooLarge
        case .contentFiltered: .llmContentFiltered
        case .upstreamUnavailable: .llmUpstreamUnavailable
        case .timeout: .llmTimeout
        case .streamBroken: .llmStreamBroken
        case .badRequest: .llmBadRequest
        }
    }

    public static let titles: [Kind: String] = [
        .notConfigured: "LLM provider not configured", .authentication: "LLM authentication failed", .modelNotFound: "Model not found",
        .contextOverflow: "Context window exceeded", .rateLimited: "Rate limited by the provider", .quotaExhausted: "Provider quota exhausted",
        .requestTooLarge: "Request too large for the provider", .contentFiltered: "Content filtered", .upstreamUnavailable: "Provider unavailable",
        .timeout: "Provider timed out", .streamBroken: "Provider stream broken", .badRequest: "Provider refused the request",
    ]

    /// Replaces what looks like a credential (`sk-…`, `Bearer …`, long hex or base64 runs) with
    /// `[redacted]`: provider error messages can echo a fragment of the key they refused.
    public static func redacted(_ text: String) -> String {
        var words: [Substring] = []
        var redactNext = false
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if redactNext, !word.isEmpty {
                words.append("[redacted]")
                redactNext = false
                continue
            }
            let lower = word.lowercased()
            if lower == "bearer" || lower == "api-key:" || lower == "key:" {
                redactNext = true
                words.append(word)
                continue
            }
            let core = word.trimmingCharacters(in: .punctuationCharacters.subtracting(["-", "_"]))
            let looksLikeKey =
                core.hasPrefix("sk-") || core.hasPrefix("tvly-") || core.hasPrefix("sk_")
                || (core.count >= 20 && core.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } && core.contains { $0.isNumber })
            words.append(looksLikeKey ? "[redacted]" : word)
        }
        return words.joined(separator: " ")
    }
}

extension LLMError: RPCErrorConvertible {
    public var rpcError: RPCError {
        RPCError(code, Self.titles[kind] ?? "Provider error", data: try? JSONFragment(encoding: Data(self)))
    }

    /// The error's `data` on the wire: nil members are left out.
    struct Data: Encodable {
        var kind: Kind
        var provider: String
        var message: String
        var status: Int?
        var requestId: String?
        var retryAfterMs: Int?
        var categories: [String]?
        var partialText: String?
        var missing: [String]?
        var estimatedTokens: Int?
        var contextWindow: Int?

        init(_ error: LLMError) {
            kind = error.kind
            provider = error.provider
            message = error.message
            status = error.status
            requestId = error.requestId
            retryAfterMs = error.retryAfterMs
            categories = error.categories.isEmpty ? nil : error.categories
            partialText = error.partialText
            missing = error.missingSettings.isEmpty ? nil : error.missingSettings
            estimatedTokens = error.estimatedTokens
            contextWindow = error.contextWindow
        }
    }

    public static let descriptions: [RPCErrorDescription] = Kind.allCases.map { kind in
        RPCErrorDescription(
            LLMError(kind, "", provider: "").code, titles[kind] ?? "", data: "{kind, provider, message, status?, requestId?, " + dataHint(kind) + "}")
    }

    private static func dataHint(_ kind: Kind) -> String {
        switch kind {
        case .notConfigured: "missing: the settings to set"
        case .rateLimited: "retryAfterMs?"
        case .contentFiltered: "categories"
        case .streamBroken: "partialText"
        case .contextOverflow: "estimatedTokens?, contextWindow?"
        default: "…"
        }
    }
}
