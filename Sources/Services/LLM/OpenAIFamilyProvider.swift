import Foundation
import Logging
import NIOCore
import RPC
import Synchronization

/// Chat Completions over HTTP for the three provider kinds that speak it:
///
/// - **openai**: `POST {base}/chat/completions` (base defaults to `https://api.openai.com/v1`),
///   `Authorization: Bearer <key>`;
/// - **azure**: with `azureDeployment`, `POST {endpoint}/openai/deployments/{deployment}/chat/completions
///   ?api-version={version}` (a request's `model` names the deployment); without one, the v1 form
///   `POST {endpoint}/openai/v1/chat/completions` with `model` the deployment name (a base URL that
///   already ends in `/openai/v1` is used as is); `api-key: <key>`;
/// - **openai-compatible** (Ollama, llama.cpp, vLLM): `POST {base}/chat/completions`, a Bearer key
///   only when one is configured.
///
/// The body always asks for `stream: true` with `stream_options.include_usage` (usage is estimated
/// when none arrives). **Parameter drift** is handled per model, remembered for the process in
/// `LLMParameterDrift`: o1/o3/o4/gpt-5 models get `max_completion_tokens` from the start; any
/// model whose 400 names `max_tokens`, `temperature` or `stream_options` as unsupported is retried
/// once with `max_completion_tokens`, without `temperature`, or without `stream_options`.
///
/// A 200 answered as `application/json` (a server that ignored `stream`) is decoded as one chunk.
/// Errors follow `OpenAIErrorClassifier`; once a delta has been yielded every failure is
/// `.streamBroken` with the partial text (except a content-filter stop, `.contentFiltered`).
/// This type does not retry transient failures: wrap it in `RetryingLLMProvider`.
public struct OpenAIFamilyProvider: LLMProvider {
    public let configuration: LLMConfiguration
    private let client: any HTTPClient
    private let clock: any WallClock
    private let drift: LLMParameterDrift
    private let metrics: LLMMetrics?
    private let logger: Logger?

    /// `drift`: share one per process so that what a model refused is remembered across requests.
    public init(
        configuration: LLMConfiguration, client: any HTTPClient, clock: any WallClock = SystemClock(), drift: LLMParameterDrift = LLMParameterDrift(),
        metrics: LLMMetrics? = nil, logger: Logger? = nil
    ) {
        self.configuration = configuration
        self.client = client
        self.clock = clock
        self.drift = drift
        self.metrics = metrics
        self.logger = logger
    }

    public var name: String { configuration.provider.rawValue }

    private var usesAzureDeployments: Bool { configuration.provider == .azure && !configuration.azureDeployment.isBlank }

    public var defaultModel: String? {
        usesAzureDeployments ? configuration.azureDeployment : (configuration.model.isBlank ? nil : configuration.model)
    }

    public func contextWindow(model: String) -> Int {
        configuration.contextWindow ?? LLMContextWindows.window(for: model)
    }

    public func acceptsImages(model: String) -> Bool {
        LLMImageModels(patterns: configuration.imageModels).accepts(model)
    }

    /// The stream runs in the consumer's own task: each `next()` reads the body as far as the next
    /// events, so a delta goes from libcurl's thread straight to the task that iterates (one
    /// thread hop, not one per wrapper). Dropping the iterator, or cancelling its task, ends the
    /// HTTP transfer.
    public func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error> {
        let cursor = OpenAIChatCursor(provider: self, request: request)
        return AsyncThrowingStream(unfolding: { try await cursor.next() })
    }

    // MARK: - One request

    /// Sends the request until it is answered with a 2xx (a 400 naming a refused parameter is
    /// sent again without it) and returns the response's body, ready to read.
    fileprivate func open(_ request: LLMRequest) async throws -> OpenAIChatBody {
        guard let model = request.model.isBlank ? defaultModel : request.model else {
            throw LLMError(
                .notConfigured, "no model given and none configured", provider: name,
                missingSettings: [configuration.modelSetting])
        }
        var adjustments = drift.adjustments(provider: name, model: model)
        if configuration.provider != .openAICompatible, LLMParameterDrift.prefersMaxCompletionTokens(model) {
            adjustments.insert(.maxCompletionTokens)
        }
        while true {
            let httpRequest = try makeHTTPRequest(request, model: model, adjustments: adjustments)
            let started = ContinuousClock.now
            let response: HTTPResponse
            do {
                response = try await client.execute(httpRequest)
            } catch {
                metrics?.request(provider: name, model: model, duration: ContinuousClock.now - started, succeeded: false)
                throw Self.mapTransport(error, provider: name)
            }
            let head = response.head
            guard (200..<300).contains(head.status) else {
                let body = await Self.collectErrorBody(response.body)
                metrics?.request(provider: name, model: model, duration: ContinuousClock.now - started, succeeded: false)
                if head.status == 400, let hint = LLMParameterDrift.hint(in: body), !adjustments.contains(hint), hint.applies(to: request) {
                    drift.remember(hint, provider: name, model: model)
                    adjustments.insert(hint)
                    logger?.notice(
                        "provider refused a parameter; retrying without it",
                        metadata: ["provider": "\(name)", "model": "\(model)", "adjustment": "\(hint)"])
                    continue
                }
                throw OpenAIErrorClassifier.classify(status: head.status, headers: head, body: body, provider: name, now: clock.now())
            }
            let decoder = OpenAIChatStreamDecoder(
                provider: name, requestedModel: model, promptBytes: OpenAIChatStreamDecoder.promptBytes(of: request.messages),
                requestId: OpenAIErrorClassifier.requestID(head))
            return OpenAIChatBody(response: response, decoder: decoder, model: model, started: started)
        }
    }

    /// Records a finished request in the metrics, when there are any.
    fileprivate func record(_ body: OpenAIChatBody, succeeded: Bool) {
        metrics?.request(provider: name, model: body.model, duration: ContinuousClock.now - body.started, succeeded: succeeded)
    }

    /// Records the usage the provider reported (an estimate is not recorded).
    fileprivate func recordTokens(_ usage: LLMUsage, model: String) {
        guard !usage.estimated else { return }
        metrics?.tokens(provider: name, model: model, input: usage.promptTokens, output: usage.completionTokens)
    }

    /// A failure while reading the body: `.streamBroken` with the partial text once a delta went
    /// out; before that, the error as if the request had failed (retriable when transient).
    static func midStream(_ error: any Error, yielded: Bool, partialText: String, provider: String, requestId: String?) -> any Error {
        if error is CancellationError || error as? HTTPClientError == .cancelled || Task.isCancelled { return CancellationError() }
        var mapped: LLMError
        switch error {
        case let error as LLMError: mapped = error
        case let failure as SSEParser.Failure:
            let limit =
                switch failure {
                case .eventTooLarge(let limit): limit
                }
            mapped = LLMError(.upstreamUnavailable, "the stream sent an event over \(limit) bytes", provider: provider, requestId: requestId)
        case let error as HTTPClientError: mapped = OpenAIErrorClassifier.classify(error, provider: provider)
        default: mapped = LLMError(.upstreamUnavailable, "the stream failed", provider: provider, requestId: requestId)
        }
        if mapped.requestId == nil { mapped.requestId = requestId }
        if mapped.kind == .contentFiltered { return mapped }
        if yielded {
            if mapped.kind != .streamBroken {
                mapped = LLMError(
                    .streamBroken, "the stream broke after the answer began: " + mapped.message, provider: provider, status: mapped.status,
                    requestId: mapped.requestId, partialText: partialText)
            }
            return mapped
        }
        if mapped.kind == .streamBroken {
            // Nothing reached the caller: the same as a connection that failed, so it may be retried.
            return LLMError(.upstreamUnavailable, "the stream ended before any answer", provider: provider, requestId: requestId)
        }
        return mapped
    }

    static func mapTransport(_ error: any Error, provider: String) -> any Error {
        switch error {
        case is CancellationError, HTTPClientError.cancelled: CancellationError()
        case let error as HTTPClientError: OpenAIErrorClassifier.classify(error, provider: provider)
        case let error as LLMError: error
        default: LLMError(.upstreamUnavailable, "the request failed", provider: provider)
        }
    }

    /// At most 1 MiB of an error body (they are a few hundred bytes); a broken body gives what came.
    static func collectErrorBody(_ body: AsyncThrowingStream<[UInt8], any Error>) async -> [UInt8] {
        var bytes: [UInt8] = []
        do {
            for try await chunk in body {
                bytes += chunk
                if bytes.count > 1 << 20 { break }
            }
        } catch {}
        return bytes
    }

    // MARK: - The HTTP request

    /// The URL, headers and JSON body of one attempt.
    func makeHTTPRequest(_ request: LLMRequest, model: String, adjustments: Set<LLMParameterDrift.Adjustment>) throws -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Accept", "text/event-stream")]
        let key = configuration.apiKey?.trimmingCharacters(in: .whitespaces) ?? ""
        switch configuration.provider {
        case .azure: headers.append(("api-key", key))
        case .openai: headers.append(("Authorization", "Bearer " + key))
        case .openAICompatible: if !key.isEmpty { headers.append(("Authorization", "Bearer " + key)) }
        }
        let seconds = configuration.timeoutSeconds
        return HTTPRequest(
            method: "POST", url: url(model: model), headers: headers, body: try body(request, model: model, adjustments: adjustments),
            timeouts: HTTPTimeouts(connect: .seconds(min(10, seconds)), total: .seconds(max(600, seconds)), idle: .seconds(seconds)))
    }

    func url(model: String) -> String {
        var base = (configuration.baseURL.isBlank ? nil : configuration.baseURL) ?? LLMConfiguration.defaultOpenAIBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard configuration.provider == .azure else { return base + "/chat/completions" }
        if usesAzureDeployments {
            let version = configuration.azureAPIVersion.isBlank ? LLMConfiguration.defaultAzureAPIVersion : configuration.azureAPIVersion!
            return base + "/openai/deployments/" + Self.pathComponent(model) + "/chat/completions?api-version=" + Self.pathComponent(version)
        }
        let v1 = base.hasSuffix("/openai/v1") ? base : base + "/openai/v1"
        let query = configuration.azureAPIVersion.isBlank ? "" : "?api-version=" + Self.pathComponent(configuration.azureAPIVersion!)
        return v1 + "/chat/completions" + query
    }

    private static func pathComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?&#"))) ?? text
    }

    /// The request's JSON, keys sorted. Encoded with `RPCJSONEncoder` (Foundation's
    /// `JSONSerialization` took ~200 µs for a one-message body, on the path to the first token).
    func body(_ request: LLMRequest, model: String, adjustments: Set<LLMParameterDrift.Adjustment>) throws -> [UInt8] {
        var tools: [ChatCompletionBody.Tool] = []
        for tool in request.tools {
            guard let schema = try? JSONDecoder().decode(JSONValue.self, from: Data(tool.parametersSchema.utf8)), case .object = schema else {
                throw LLMError(.badRequest, "the parameters schema of tool \(tool.name) is not a JSON object", provider: name)
            }
            tools.append(ChatCompletionBody.Tool(name: tool.name, description: tool.description, parameters: schema))
        }
        let body = ChatCompletionBody(
            messages: request.messages, model: usesAzureDeployments ? nil : model, includeUsage: !adjustments.contains(.omitStreamOptions),
            temperature: adjustments.contains(.omitTemperature) ? nil : request.temperature, maxTokens: request.maxTokens,
            maxTokensKey: adjustments.contains(.maxCompletionTokens) ? "max_completion_tokens" : "max_tokens", tools: tools)
        let encoded = try RPCJSONEncoder().encode(body)
        return encoded.getBytes(at: encoded.readerIndex, length: encoded.readableBytes) ?? []
    }
}

/// A Chat Completions request body: `messages` (a message with images has content parts
/// `[{type: "text", text}, {type: "image_url", image_url: {url}}…]`), `model` (not for Azure deployments), `stream: true`,
/// `stream_options`, `temperature`, `max_tokens` or `max_completion_tokens`, `tools`.
private struct ChatCompletionBody: Encodable {
    struct Tool: Encodable {
        var name: String
        var description: String
        var parameters: JSONValue

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("function", forKey: "type")
            var function = container.nestedContainer(keyedBy: Key.self, forKey: "function")
            try function.encode(name, forKey: "name")
            try function.encode(description, forKey: "description")
            try function.encode(parameters, forKey: "parameters")
        }
    }

    struct Key: CodingKey, ExpressibleByStringLiteral {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init(stringLiteral value: String) { self.stringValue = value }
        init?(intValue: Int) { nil }
    }

    var messages: [LLMMessage]
    var model: String?
    var includeUsage: Bool
    var temperature: Double?
    var maxTokens: Int?
    var maxTokensKey: String
    var tools: [Tool]

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        var list = container.nestedUnkeyedContainer(forKey: "messages")
        for message in messages {
            var object = list.nestedContainer(keyedBy: Key.self)
            try object.encode(message.role.rawValue, forKey: "role")
            if !message.images.isEmpty {
                // Content parts only for a message with images: every other message keeps its
                // plain string (its bytes, and servers that know no parts, unchanged).
                var parts = object.nestedUnkeyedContainer(forKey: "content")
                if let content = message.content {
                    var text = parts.nestedContainer(keyedBy: Key.self)
                    try text.encode("text", forKey: "type")
                    try text.encode(content, forKey: "text")
                }
                for image in message.images {
                    var part = parts.nestedContainer(keyedBy: Key.self)
                    try part.encode("image_url", forKey: "type")
                    var url = part.nestedContainer(keyedBy: Key.self, forKey: "image_url")
                    try url.encode(image.url, forKey: "url")
                }
            } else if let content = message.content {
                try object.encode(content, forKey: "content")
            } else {
                try object.encodeNil(forKey: "content")
            }
            if !message.toolCalls.isEmpty {
                var calls = object.nestedUnkeyedContainer(forKey: "tool_calls")
                for call in message.toolCalls {
                    var entry = calls.nestedContainer(keyedBy: Key.self)
                    try entry.encode(call.id, forKey: "id")
                    try entry.encode("function", forKey: "type")
                    var function = entry.nestedContainer(keyedBy: Key.self, forKey: "function")
                    try function.encode(call.name, forKey: "name")
                    try function.encode(call.arguments, forKey: "arguments")
                }
            }
            if let id = message.toolCallID { try object.encode(id, forKey: "tool_call_id") }
        }
        try container.encodeIfPresent(model, forKey: "model")
        try container.encode(true, forKey: "stream")
        if includeUsage {
            var options = container.nestedContainer(keyedBy: Key.self, forKey: "stream_options")
            try options.encode(true, forKey: "include_usage")
        }
        try container.encodeIfPresent(temperature, forKey: "temperature")
        if let maxTokens { try container.encode(maxTokens, forKey: Key(stringValue: maxTokensKey)) }
        if !tools.isEmpty { try container.encode(tools, forKey: "tools") }
    }
}

/// What models refused, remembered for the process: one instance shared by every provider the
/// factory builds (`LLMProviderFactory`).
public final class LLMParameterDrift: Sendable {
    public enum Adjustment: String, Sendable, Hashable, CustomStringConvertible {
        /// `max_completion_tokens` instead of `max_tokens`.
        case maxCompletionTokens
        case omitTemperature
        case omitStreamOptions

        public var description: String { rawValue }

        func applies(to request: LLMRequest) -> Bool {
            switch self {
            case .maxCompletionTokens: request.maxTokens != nil
            case .omitTemperature: request.temperature != nil
            case .omitStreamOptions: true
            }
        }
    }

    // Only touched under the mutex; keyed by "provider model".
    private let learned = Mutex<[String: Set<Adjustment>]>([:])

    public init() {}

    public func adjustments(provider: String, model: String) -> Set<Adjustment> {
        learned.withLock { $0[provider + " " + model] ?? [] }
    }

    public func remember(_ adjustment: Adjustment, provider: String, model: String) {
        _ = learned.withLock { $0[provider + " " + model, default: []].insert(adjustment) }
    }

    /// Reasoning models that reject `max_tokens`.
    public static func prefersMaxCompletionTokens(_ model: String) -> Bool {
        let name = model.lowercased()
        return ["o1", "o3", "o4", "gpt-5"].contains { name == $0 || name.hasPrefix($0 + "-") || name.hasPrefix($0 + ".") }
    }

    /// What a 400 body asks to change: `param` (or the message) naming `max_tokens`, `temperature`
    /// or `stream_options` as unsupported or unrecognised.
    static func hint(in body: [UInt8]) -> Adjustment? {
        let details = ErrorDetails(body: body)
        let message = details.message?.lowercased() ?? ""
        let unsupported =
            details.code == "unsupported_parameter" || details.code == "unsupported_value" || message.contains("unsupported")
            || message.contains("not supported") || message.contains("unrecognized") || message.contains("unknown")
        guard unsupported else { return nil }
        if details.param == "max_tokens" || message.contains("max_completion_tokens") || message.contains("'max_tokens'") {
            return .maxCompletionTokens
        }
        if details.param == "temperature" || message.contains("'temperature'") { return .omitTemperature }
        if details.param == "stream_options" || message.contains("stream_options") { return .omitStreamOptions }
        return nil
    }
}

/// One `stream(_:)` call: the request, then its body read event by event. Only the consuming
/// task touches it, one `next()` at a time (`AsyncThrowingStream(unfolding:)` never overlaps
/// them), hence `@unchecked Sendable`.
private final class OpenAIChatCursor: @unchecked Sendable {
    private enum Phase {
        case request
        case body(OpenAIChatBody)
        case finished
    }

    private let provider: OpenAIFamilyProvider
    private let request: LLMRequest
    private var phase = Phase.request
    /// Events read but not yet handed out (a chunk can hold several).
    private var ready: [LLMStreamEvent] = []
    private var readyIndex = 0

    init(provider: OpenAIFamilyProvider, request: LLMRequest) {
        self.provider = provider
        self.request = request
    }

    func next() async throws -> LLMStreamEvent? {
        while true {
            if readyIndex < ready.count {
                defer { readyIndex += 1 }
                let event = ready[readyIndex]
                if case .usage(let usage) = event, case .body(let body) = phase { provider.recordTokens(usage, model: body.model) }
                return event
            }
            switch phase {
            case .request:
                phase = .finished  // stays so when the request fails
                phase = .body(try await provider.open(request))
            case .body(var body):
                phase = .finished  // the body is read from a copy; put back below unless it ended
                let events: [LLMStreamEvent]?
                do {
                    events = try await body.read()
                } catch {
                    provider.record(body, succeeded: false)
                    throw error
                }
                guard let events else {
                    provider.record(body, succeeded: true)
                    return nil
                }
                phase = .body(body)
                ready = events
                readyIndex = 0
            case .finished:
                return nil
            }
        }
    }

    deinit {
        // Abandoned mid-body (cancelled, or the consumer stopped reading): a request that failed.
        if case .body(let body) = phase { provider.record(body, succeeded: false) }
    }
}

/// A 2xx response's body as stream events: bytes → SSE events (or one JSON document, from a
/// server that ignored `stream`) → `OpenAIChatStreamDecoder`. Once a delta has been read every
/// failure is `.streamBroken` with the partial text (`OpenAIFamilyProvider.midStream`).
private struct OpenAIChatBody {
    let model: String
    let started: ContinuousClock.Instant
    private var body: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
    private let isJSON: Bool
    private var parser = SSEParser()
    private var whole: [UInt8] = []
    private var decoder: OpenAIChatStreamDecoder
    /// A text or tool-call delta has been read.
    private var yielded = false
    private var ended = false
    /// A failure met after some events of the same chunk: thrown once those are handed out.
    private var failure: (any Error)?

    init(response: HTTPResponse, decoder: OpenAIChatStreamDecoder, model: String, started: ContinuousClock.Instant) {
        self.body = response.body.makeAsyncIterator()
        self.isJSON = response.head.header("content-type")?.lowercased().contains("application/json") ?? false
        self.decoder = decoder
        self.model = model
        self.started = started
    }

    /// The events of the next chunk (maybe none: a chunk need not end an event); nil at the end.
    mutating func read() async throws -> [LLMStreamEvent]? {
        if let failure {
            self.failure = nil
            throw failure
        }
        if ended { return nil }
        var events: [LLMStreamEvent] = []
        do {
            if let chunk = try await body.next() {
                if isJSON {
                    whole += chunk
                    if whole.count > parser.maxEventBytes { throw SSEParser.Failure.eventTooLarge(limit: parser.maxEventBytes) }
                    return events
                }
                for event in try parser.feed(chunk) { append(try decoder.decode(event), to: &events) }
                return events
            }
            try Task.checkCancellation()
            ended = true
            if isJSON {
                append(try decoder.decode(SSEEvent(data: String(decoding: whole, as: UTF8.self))), to: &events)
            } else {
                for event in try parser.finish() { append(try decoder.decode(event), to: &events) }
            }
            append(try decoder.finish(), to: &events)
            return events
        } catch {
            ended = true
            let mapped = OpenAIFamilyProvider.midStream(
                error, yielded: yielded, partialText: decoder.text, provider: decoder.provider, requestId: decoder.requestId)
            if events.isEmpty { throw mapped }
            failure = mapped
            return events
        }
    }

    private mutating func append(_ decoded: [LLMStreamEvent], to events: inout [LLMStreamEvent]) {
        for event in decoded {
            switch event {
            case .text, .toolCall: yielded = true
            default: break
            }
        }
        events += decoded
    }
}
