import Foundation
import RPC

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
    /// False: every chunk takes the general path (tests compare the two paths).
    var typedPath = true

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
        let payload = Self.trimmed(event.data)
        if payload == "[DONE]" {
            done = true
            return []
        }
        if payload.isEmpty { return [] }
        // Almost every chunk is plain text or tool-call pieces: `JSONReader` reads those. What it
        // does not cover (error events, filter results, odd types) goes through `JSONSerialization`;
        // both give the same `StreamChunk` for every chunk the reader takes.
        if typedPath, event.event != "error", let chunk = try? StreamChunk(json: payload) {
            return try apply(chunk)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(payload.utf8), options: [.fragmentsAllowed])
        } catch {
            if event.event == "error" {
                throw fail(
                    LLMError(
                        .upstreamUnavailable, "the stream reported an error: " + LLMError.redacted(String(payload.prefix(300))), provider: provider,
                        requestId: requestId))
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
        return try apply(StreamChunk(object: chunk))
    }

    private mutating func apply(_ chunk: StreamChunk) throws(LLMError) -> [LLMStreamEvent] {
        if let model = chunk.model, !model.isEmpty { self.model = model }
        if let usage = chunk.usage, let prompt = usage.promptTokens {
            self.usage = LLMUsage(promptTokens: prompt, completionTokens: usage.completionTokens ?? 0, estimated: false)
        }
        var events: [LLMStreamEvent] = []
        for choice in chunk.choices ?? [] {
            // Only the first choice is asked for (n = 1); ignore any other.
            if let index = choice.index, index != 0 { continue }
            filterCategories.formUnion(choice.filterCategories)
            if let delta = choice.delta ?? choice.message {
                for piece in [delta.content, delta.refusal] {
                    guard let piece, !piece.isEmpty else { continue }
                    text += piece
                    outputBytes += piece.utf8.count
                    events.append(.text(piece))
                }
                for (position, call) in (delta.toolCalls ?? []).enumerated() {
                    let arguments = call.function?.arguments ?? ""
                    outputBytes += arguments.utf8.count
                    events.append(
                        .toolCall(
                            index: call.index ?? position, id: Self.nonEmpty(call.id), name: Self.nonEmpty(call.function?.name), arguments: arguments)
                    )
                }
            }
            if let reason = choice.finishReason, !reason.isEmpty { finishReason = Self.finishReason(reason) }
        }
        if finishReason == .contentFilter {
            throw fail(contentFiltered())
        }
        return events
    }

    /// `data` without the spaces and tabs around it. A chunk almost always starts and ends with
    /// JSON's braces, so Foundation's `trimmingCharacters` (tens of µs per call on Linux) runs
    /// only when it has something to do.
    static func trimmed(_ data: String) -> String {
        let bytes = data.utf8
        if let first = bytes.first, let last = bytes.last, (0x21..<0x80).contains(first), (0x21..<0x80).contains(last) { return data }
        return data.trimmingCharacters(in: .whitespaces)
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
            ?? LLMUsage(
                promptTokens: Self.estimateTokens(bytes: promptBytes), completionTokens: Self.estimateTokens(bytes: outputBytes), estimated: true)
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
            .contentFiltered,
            "the provider's content filter stopped the answer" + (categories.isEmpty ? "" : " (" + categories.joined(separator: ", ") + ")"),
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

    private static func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }
}

/// The members of a Chat Completions chunk the decoder uses. Read from the text with `JSONReader`
/// (`init(json:)`): `JSONSerialization` and its `Any` casts, or `JSONDecoder`, took ~110 µs per
/// chunk on this machine (a chunk comes every few ms, to cold caches), on every delta's path; this
/// takes a tenth of that. It throws, and the caller takes the general path (`init(object:)` over
/// `JSONSerialization`), whenever the chunk holds something only that path handles: an `error`
/// member, `content_filter_results`, `arguments` sent as an object, or any member of another type.
private struct StreamChunk {
    var model: String?
    var usage: (promptTokens: Int?, completionTokens: Int?)?
    var choices: [Choice]?

    struct Choice {
        var index: Int?
        var delta: Delta?
        var message: Delta?
        var finishReason: String?
        /// The categories `content_filter_results` reports (the general path only).
        var filterCategories: Set<String> = []
    }

    struct Delta {
        var content: String?
        var refusal: String?
        var toolCalls: [ToolCall]?
    }

    struct ToolCall {
        var index: Int?
        var id: String?
        var function: (name: String?, arguments: String?)?
    }

    init(json payload: String) throws {
        var chunk = StreamChunk()
        try JSONReader.read(payload) { reader in
            try reader.readObject { reader, key in
                switch key {
                case "model": chunk.model = try reader.readString()
                case "usage": chunk.usage = try Self.usage(&reader)
                case "choices": chunk.choices = try Self.list(&reader, Self.choice)
                case "error", "content_filter_results": if try !reader.readNull() { throw JSONReader.Mismatch() }
                default: try reader.skip()
                }
            }
        }
        self = chunk
    }

    private init() {}

    /// The same members from a parsed chunk, however odd: values of other types read as absent,
    /// elements that are not objects are skipped, `arguments` sent as an object are re-serialised.
    init(object chunk: [String: Any]) {
        model = chunk["model"] as? String
        if let usage = chunk["usage"] as? [String: Any] {
            self.usage = (usage["prompt_tokens"] as? Int, usage["completion_tokens"] as? Int)
        }
        choices = (chunk["choices"] as? [Any] ?? []).compactMap { element -> Choice? in
            guard let choice = element as? [String: Any] else { return nil }
            return Choice(
                index: choice["index"] as? Int, delta: (choice["delta"] as? [String: Any]).map(Self.delta),
                message: (choice["message"] as? [String: Any]).map(Self.delta), finishReason: choice["finish_reason"] as? String,
                filterCategories: Set(ErrorDetails.filtered(choice["content_filter_results"])))
        }
    }

    private static func delta(_ delta: [String: Any]) -> Delta {
        let calls = (delta["tool_calls"] as? [Any] ?? []).enumerated().compactMap { position, element -> ToolCall? in
            guard let call = element as? [String: Any] else { return nil }
            let function = call["function"] as? [String: Any] ?? [:]
            // The index falls back to the position among all elements, objects or not.
            return ToolCall(
                index: call["index"] as? Int ?? position, id: call["id"] as? String,
                function: (function["name"] as? String, argumentsText(function["arguments"])))
        }
        return Delta(content: delta["content"] as? String, refusal: delta["refusal"] as? String, toolCalls: calls)
    }

    /// `arguments` as text: a string as is; an object (some servers send one) re-serialised.
    private static func argumentsText(_ value: Any?) -> String {
        switch value {
        case let text as String: return text
        case nil, is NSNull: return ""
        case let object?:
            guard JSONSerialization.isValidJSONObject(object), let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            else {
                return ""
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// A member's array of objects (`null`: nil).
    private static func list<T>(_ reader: inout JSONReader, _ element: (inout JSONReader) throws -> T?) throws -> [T]? {
        if try reader.readNull() { return nil }
        var items: [T] = []
        try reader.readArray { reader in
            guard let item = try element(&reader) else { throw JSONReader.Mismatch() }
            items.append(item)
        }
        return items
    }

    private static func usage(_ reader: inout JSONReader) throws -> (promptTokens: Int?, completionTokens: Int?)? {
        if try reader.readNull() { return nil }
        var usage: (promptTokens: Int?, completionTokens: Int?) = (nil, nil)
        try reader.readObject { reader, key in
            switch key {
            case "prompt_tokens": usage.promptTokens = try reader.readInt()
            case "completion_tokens": usage.completionTokens = try reader.readInt()
            default: try reader.skip()
            }
        }
        return usage
    }

    private static func choice(_ reader: inout JSONReader) throws -> Choice? {
        if try reader.readNull() { return nil }
        var choice = Choice()
        try reader.readObject { reader, key in
            switch key {
            case "index": choice.index = try reader.readInt()
            case "delta": choice.delta = try delta(&reader)
            case "message": choice.message = try delta(&reader)
            case "finish_reason": choice.finishReason = try reader.readString()
            case "content_filter_results": if try !reader.readNull() { throw JSONReader.Mismatch() }
            default: try reader.skip()
            }
        }
        return choice
    }

    private static func delta(_ reader: inout JSONReader) throws -> Delta? {
        if try reader.readNull() { return nil }
        var delta = Delta()
        try reader.readObject { reader, key in
            switch key {
            case "content": delta.content = try reader.readString()
            case "refusal": delta.refusal = try reader.readString()
            case "tool_calls": delta.toolCalls = try list(&reader, toolCall)
            default: try reader.skip()
            }
        }
        return delta
    }

    private static func toolCall(_ reader: inout JSONReader) throws -> ToolCall? {
        if try reader.readNull() { return nil }
        var call = ToolCall()
        try reader.readObject { reader, key in
            switch key {
            case "index": call.index = try reader.readInt()
            case "id": call.id = try reader.readString()
            case "function":
                if try reader.readNull() {
                    call.function = nil
                    return
                }
                var function: (name: String?, arguments: String?) = (nil, nil)
                try reader.readObject { reader, key in
                    switch key {
                    case "name": function.name = try reader.readString()
                    case "arguments": function.arguments = try reader.readString()
                    default: try reader.skip()
                    }
                }
                call.function = function
            default: try reader.skip()
            }
        }
        return call
    }
}
