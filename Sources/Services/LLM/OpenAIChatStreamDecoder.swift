import Foundation

/// Turns the SSE events of a Chat Completions stream (OpenAI, Azure OpenAI, OpenAI-compatible
/// servers) into `LLMStreamEvent`s, tolerating what real servers send:
///
/// - `data: [DONE]`; unknown keys (`obfuscation`, `system_fingerprint`, …); chunks whose `choices`
///   is `[]`, `null` or missing (the usage-only last chunk; Azure's first chunk with empty
///   `id`/`model` and `prompt_filter_results`);
/// - `{"error": …}` events after the 200, and llama.cpp's bare `error:` line → the `LLMError` the
///   same body would give as an HTTP error (`OpenAIErrorClassifier`);
/// - `delta.content` and `delta.refusal` (a refusal is streamed as text: it is what the user sees);
/// - tool-call pieces by `index` (default: position in the array), also calls sent whole, and
///   `arguments` sent as a JSON object rather than a string (re-serialised);
/// - `finish_reason`; `content_filter` ends the stream with `LLMError.contentFiltered`, carrying the
///   categories from the `content_filter_results` seen and the text streamed so far;
/// - usage: the reported `prompt_tokens`/`completion_tokens`, else an estimate (UTF-8 bytes / 4 of
///   the prompt and of the output) marked `estimated`.
///
/// `.usage` and `.finished` are held until the body ends (`finish()`), so the stream always ends
/// usage then exactly one `.finished`. A body that ends with neither a `finish_reason` nor `[DONE]`
/// throws `.streamBroken` with the partial text.
public struct OpenAIChatStreamDecoder: Sendable {
    public let provider: String
    public let requestedModel: String
    public let requestId: String?
    private let promptBytes: Int

    /// The text streamed so far (content and refusals).
    public private(set) var text = ""
    private var outputBytes = 0
    private var model: String?
    private var finishReason: LLMFinishReason?
    private var done = false
    private var usage: LLMUsage?
    private var filterCategories: Set<String> = []
    /// `finish()` was called or the stream failed: nothing more is accepted.
    private var ended = false

    /// `promptBytes`: the UTF-8 size of the request's messages, for the usage estimate.
    public init(provider: String, requestedModel: String, promptBytes: Int, requestId: String? = nil) {
        self.provider = provider
        self.requestedModel = requestedModel
        self.promptBytes = promptBytes
        self.requestId = requestId
    }

    /// The UTF-8 size of what a request sends as prompt: contents, tool calls and tool results.
    public static func promptBytes(of messages: [LLMMessage]) -> Int {
        messages.reduce(0) { total, message in
            total + (message.content?.utf8.count ?? 0) + message.toolCalls.reduce(0) { $0 + $1.name.utf8.count + $1.arguments.utf8.count }
        }
    }

    /// The deltas `event` carries. Throws `LLMError` for an error event or a content-filter finish.
    public mutating func decode(_ event: SSEEvent) throws(LLMError) -> [LLMStreamEvent] {
        guard !ended, !done else { return [] }
        let payload = event.data.trimmingCharacters(in: .whitespaces)
        if payload == "[DONE]" {
            done = true
            return []
        }
        if payload.isEmpty { return [] }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(payload.utf8), options: [.fragmentsAllowed])
        } catch {
            if event.event == "error" {
                throw fail(LLMError(.upstreamUnavailable, "the stream reported an error: " + LLMError.redacted(String(payload.prefix(300))), provider: provider, requestId: requestId))
            }
            throw fail(LLMError(.upstreamUnavailable, "the stream sent data that is not JSON", provider: provider, requestId: requestId))
        }
        guard let chunk = object as? [String: Any] else {
            throw fail(LLMError(.upstreamUnavailable, "the stream sent a JSON value that is not an object", provider: provider, requestId: requestId))
        }
        if event.event == "error" {
            throw fail(OpenAIErrorClassifier.classifyStreamError(chunk["error"] ?? chunk, provider: provider, requestId: requestId))
        }
        if let error = chunk["error"], !(error is NSNull) {
            throw fail(OpenAIErrorClassifier.classifyStreamError(error, provider: provider, requestId: requestId))
        }
        if let model = chunk["model"] as? String, !model.isEmpty { self.model = model }
        if let usage = chunk["usage"] as? [String: Any], let prompt = usage["prompt_tokens"] as? Int {
            self.usage = LLMUsage(promptTokens: prompt, completionTokens: usage["completion_tokens"] as? Int ?? 0, estimated: false)
        }
        var events: [LLMStreamEvent] = []
        for case let choice as [String: Any] in chunk["choices"] as? [Any] ?? [] {
            // Only the first choice is asked for (n = 1); ignore any other.
            if let index = choice["index"] as? Int, index != 0 { continue }
            filterCategories.formUnion(ErrorDetails.filtered(choice["content_filter_results"]))
            if let delta = choice["delta"] as? [String: Any] ?? choice["message"] as? [String: Any] {
                for key in ["content", "refusal"] {
                    if let piece = delta[key] as? String, !piece.isEmpty {
                        text += piece
                        outputBytes += piece.utf8.count
                        events.append(.text(piece))
                    }
                }
                for (position, element) in (delta["tool_calls"] as? [Any] ?? []).enumerated() {
                    guard let call = element as? [String: Any] else { continue }
                    let function = call["function"] as? [String: Any] ?? [:]
                    let arguments = Self.argumentsText(function["arguments"])
                    outputBytes += arguments.utf8.count
                    events.append(
                        .toolCall(
                            index: call["index"] as? Int ?? position, id: Self.nonEmpty(call["id"]), name: Self.nonEmpty(function["name"]),
                            arguments: arguments))
                }
            }
            if let reason = choice["finish_reason"] as? String, !reason.isEmpty {
                finishReason = Self.finishReason(reason)
            }
        }
        if finishReason == .contentFilter {
            throw fail(contentFiltered())
        }
        return events
    }

    /// The body ended: the held usage (reported or estimated) and `.finished`, or `.streamBroken`
    /// when the stream never said it was complete.
    public mutating func finish() throws(LLMError) -> [LLMStreamEvent] {
        guard !ended else { return [] }
        ended = true
        guard finishReason != nil || done else {
            throw LLMError(
                .streamBroken, "the stream ended before the model finished", provider: provider, requestId: requestId, partialText: text)
        }
        let usage =
            self.usage
            ?? LLMUsage(promptTokens: Self.estimateTokens(bytes: promptBytes), completionTokens: Self.estimateTokens(bytes: outputBytes), estimated: true)
        return [.usage(usage), .finished(reason: finishReason ?? .stop, model: model ?? requestedModel)]
    }

    /// About four bytes per token, rounded up.
    public static func estimateTokens(bytes: Int) -> Int { (bytes + 3) / 4 }

    private mutating func fail(_ error: LLMError) -> LLMError {
        ended = true
        return error
    }

    private func contentFiltered() -> LLMError {
        let categories = filterCategories.sorted()
        return LLMError(
            .contentFiltered, "the provider's content filter stopped the answer" + (categories.isEmpty ? "" : " (" + categories.joined(separator: ", ") + ")"),
            provider: provider, requestId: requestId, categories: categories, partialText: text)
    }

    static func finishReason(_ text: String) -> LLMFinishReason {
        switch text {
        case "stop", "eos", "end_turn": .stop
        case "length", "max_tokens": .length
        case "tool_calls", "function_call": .toolCalls
        case "content_filter": .contentFilter
        default: .other
        }
    }

    private static func nonEmpty(_ value: Any?) -> String? {
        guard let text = value as? String, !text.isEmpty else { return nil }
        return text
    }

    /// `arguments` as text: a string as is; an object (some servers send one) re-serialised.
    private static func argumentsText(_ value: Any?) -> String {
        switch value {
        case let text as String: return text
        case nil, is NSNull: return ""
        case let object?:
            guard JSONSerialization.isValidJSONObject(object), let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
                return ""
            }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
