import Foundation

/// Maps a provider's refusal — an HTTP status with its error body and headers, an `{"error": …}`
/// event inside a 200 stream, or a transport failure — to one `LLMError`. The message is built from
/// the body's `message`/`code` fields through `LLMError.redacted`; the raw body never leaves here.
///
/// Rules, first match wins:
/// - `content_filter` / Azure `ResponsibleAIPolicyViolation` → `.contentFiltered` (categories whose
///   `filtered` is true, from `innererror.content_filter_result` or `content_filter_results`);
/// - `context_length_exceeded`, llama.cpp `exceed_context_size_error`, or a message about the
///   context length/size/window → `.contextOverflow`;
/// - `insufficient_quota` → `.quotaExhausted` (any status);
/// - 429 whose message says "Request too large" (tokens per request over the TPM limit: it can
///   never succeed) → `.requestTooLarge`; other 429s → `.rateLimited`; 413 → `.requestTooLarge`;
/// - 401/403 → `.authentication`; 404, `model_not_found`, `DeploymentNotFound` → `.modelNotFound`;
/// - 408 → `.timeout`; 409 and 5xx → `.upstreamUnavailable`; other statuses → `.badRequest`.
public enum OpenAIErrorClassifier {
    /// The longest message kept (providers' messages are a sentence or two).
    static let maxMessageLength = 600

    /// Classifies a non-2xx response. `now` resolves a `Retry-After` HTTP date.
    public static func classify(status: Int, headers: HTTPResponseHead, body: [UInt8], provider: String, now: Date) -> LLMError {
        let details = ErrorDetails(body: body)
        var error = classify(status: status, details: details, provider: provider)
        error.requestId = requestID(headers)
        error.retryAfterMs = retryAfterMs(headers, now: now) ?? details.message.flatMap(retryHint)
        switch headers.header("x-should-retry")?.lowercased() {
        case "true": error.shouldRetry = true
        case "false": error.shouldRetry = false
        default: break
        }
        return error
    }

    /// Classifies the object of an `{"error": …}` event (or llama.cpp's `error:` line) met in a 200
    /// stream: its numeric `code`, when it has one, stands for the status.
    public static func classifyStreamError(_ object: Any, provider: String, requestId: String?) -> LLMError {
        let details = ErrorDetails(errorObject: object)
        var error = classify(status: details.numericCode, details: details, provider: provider)
        error.requestId = requestId
        error.retryAfterMs = details.message.flatMap(retryHint)
        return error
    }

    /// A transport failure before any response (or while reading the body before the first delta).
    public static func classify(_ failure: HTTPClientError, provider: String) -> LLMError {
        switch failure {
        case .connectFailed(let detail):
            LLMError(.upstreamUnavailable, "cannot connect: " + LLMError.redacted(detail), provider: provider)
        case .timedOut(let phase):
            LLMError(.timeout, "no answer in time (\(phase.rawValue) timeout)", provider: provider)
        case .cancelled:
            LLMError(.upstreamUnavailable, "transfer cancelled", provider: provider)
        case .transport(let detail):
            LLMError(.upstreamUnavailable, "connection broken: " + LLMError.redacted(detail), provider: provider)
        case .bodyTooLarge(let limit):
            LLMError(.upstreamUnavailable, "the response exceeded \(limit) bytes", provider: provider)
        case .invalidURL(let url):
            LLMError(.badRequest, "invalid URL " + LLMError.redacted(url) + " (check llm.base_url)", provider: provider)
        }
    }

    /// `x-request-id` (OpenAI), else `apim-request-id` (Azure).
    public static func requestID(_ head: HTTPResponseHead) -> String? {
        head.header("x-request-id") ?? head.header("apim-request-id")
    }

    /// `retry-after-ms`, else `Retry-After` as seconds or as an HTTP date.
    public static func retryAfterMs(_ head: HTTPResponseHead, now: Date) -> Int? {
        if let text = head.header("retry-after-ms")?.trimmingCharacters(in: .whitespaces), let value = Double(text), value >= 0 {
            return Int(value.rounded(.up))
        }
        guard let text = head.header("retry-after")?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
        if let seconds = Double(text), seconds >= 0 { return Int((seconds * 1000).rounded(.up)) }
        if let date = httpDate(text) { return max(0, Int((date.timeIntervalSince(now) * 1000).rounded(.up))) }
        return nil
    }

    /// RFC 9110 dates: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
    static func httpDate(_ text: String) -> Date? {
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    /// "Please try again in 84ms." / "in 1.5s" / "Please retry after 20 seconds." in a message.
    static func retryHint(_ message: String) -> Int? {
        let lower = message.lowercased()
        for marker in ["try again in ", "retry after "] {
            guard let range = lower.range(of: marker) else { continue }
            let rest = lower[range.upperBound...]
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(number) else { continue }
            let unit = rest.dropFirst(number.count).drop { $0 == " " }
            if unit.hasPrefix("ms") || unit.hasPrefix("millisecond") { return Int(value.rounded(.up)) }
            if unit.hasPrefix("s") || unit.hasPrefix("second") { return Int((value * 1000).rounded(.up)) }
            if unit.hasPrefix("m") { return Int(value * 60_000) }
        }
        return nil
    }

    private static func classify(status: Int?, details: ErrorDetails, provider: String) -> LLMError {
        let code = details.code?.lowercased() ?? ""
        let type = details.type?.lowercased() ?? ""
        let inner = details.innerCode?.lowercased() ?? ""
        let lower = details.message?.lowercased() ?? ""
        let message = details.safeMessage(status: status)
        func error(_ kind: LLMError.Kind) -> LLMError { LLMError(kind, message, provider: provider, status: status) }

        if code == "content_filter" || inner == "responsibleaipolicyviolation" || code == "content_policy_violation" {
            var filtered = error(.contentFiltered)
            filtered.categories = details.filterCategories
            return filtered
        }
        if code == "context_length_exceeded" || type == "exceed_context_size_error" || code == "string_above_max_length" && lower.contains("context")
            || lower.contains("maximum context length") || lower.contains("context length") || lower.contains("context size")
            || lower.contains("context window")
        {
            return error(.contextOverflow)
        }
        if code == "insufficient_quota" || type == "insufficient_quota" { return error(.quotaExhausted) }
        if code == "model_not_found" || code == "deploymentnotfound" || code == "deployment_not_found" { return error(.modelNotFound) }
        switch status {
        case 429: return error(lower.contains("request too large") ? .requestTooLarge : .rateLimited)
        case 413: return error(.requestTooLarge)
        case 401, 403: return error(.authentication)
        case 404: return error(.modelNotFound)
        case 408: return error(.timeout)
        case 409: return error(.upstreamUnavailable)
        case .some(500...599): return error(.upstreamUnavailable)
        case nil:
            // An error event in a stream without a numeric code: judge by its code/type.
            if code.contains("rate_limit") || type.contains("rate_limit") { return error(.rateLimited) }
            if code.contains("auth") || type.contains("auth") || code == "invalid_api_key" { return error(.authentication) }
            if code.contains("server_error") || type.contains("server_error") || code.contains("overloaded") || type.isEmpty && code.isEmpty {
                return error(.upstreamUnavailable)
            }
            return error(.badRequest)
        default: return error(.badRequest)
        }
    }
}

/// The fields of an OpenAI-style error body, read leniently: `{"error":{…}}`, `{"error":"text"}`,
/// FastAPI's `{"detail":…}`, or a bare `{"message":…}`.
struct ErrorDetails {
    var message: String?
    var code: String?
    var numericCode: Int?
    var type: String?
    var param: String?
    var innerCode: String?
    var filterCategories: [String] = []

    init(body: [UInt8]) {
        self.init(errorObject: Self.errorObject(body) as Any)
    }

    private static func errorObject(_ body: [UInt8]) -> Any? {
        guard let dictionary = (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) as? [String: Any] else {
            return nil
        }
        return dictionary["error"] ?? dictionary["detail"] ?? dictionary
    }

    init(errorObject: Any) {
        if let text = errorObject as? String {
            message = text
            return
        }
        guard let object = errorObject as? [String: Any] else { return }
        message = object["message"] as? String ?? object["error"] as? String
        if let number = object["code"] as? Int {
            numericCode = number
        } else {
            code = object["code"] as? String
        }
        if numericCode == nil, let status = object["status"] as? Int { numericCode = status }
        type = object["type"] as? String
        param = object["param"] as? String
        if let inner = object["innererror"] as? [String: Any] {
            innerCode = inner["code"] as? String
            filterCategories = Self.filtered(inner["content_filter_result"] ?? inner["content_filter_results"])
        }
        if filterCategories.isEmpty { filterCategories = Self.filtered(object["content_filter_results"] ?? object["content_filter_result"]) }
    }

    /// The names of the categories whose `filtered` (or `detected`, for jailbreak and protected
    /// material when filtered) is true, sorted.
    static func filtered(_ results: Any?) -> [String] {
        guard let results = results as? [String: Any] else { return [] }
        return results.compactMap { name, value in
            guard let value = value as? [String: Any], value["filtered"] as? Bool == true else { return nil }
            return name
        }.sorted()
    }

    /// `code: message`, redacted and bounded; a generic text when the body said nothing readable.
    func safeMessage(status: Int?) -> String {
        var text = message.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        if text.isEmpty { text = status.map { "HTTP status \($0)" } ?? "error reported in the stream" }
        if let code, !code.isEmpty, !text.contains(code) { text = code + ": " + text }
        if let inner = innerCode, !inner.isEmpty, !text.contains(inner) { text += " (" + inner + ")" }
        text = LLMError.redacted(text)
        if text.count > OpenAIErrorClassifier.maxMessageLength { text = String(text.prefix(OpenAIErrorClassifier.maxMessageLength)) + "…" }
        return text
    }
}
