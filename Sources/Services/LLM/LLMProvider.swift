import Foundation

/// A chat-completion model behind an API: OpenAI, Azure OpenAI or an OpenAI-compatible server.
/// The agent only knows this protocol; `LLMProviderFactory` builds the configured one.
public protocol LLMProvider: Sendable {
    /// What logs, metrics and stored runs call it: `openai`, `azure`, `openai-compatible` (or a
    /// fallback chain's member).
    var name: String { get }
    /// The model used when a request names none (from the configuration); nil when there is none.
    var defaultModel: String? { get }
    /// The context window of `model` in tokens, as far as the provider knows it (configuration or a
    /// table of well-known models); what the agent budgets the history against.
    func contextWindow(model: String) -> Int
    /// Whether `model` takes image input (`llm.image_models`): the agent refuses a run that would
    /// give images to a model that does not, before calling it.
    func acceptsImages(model: String) -> Bool

    /// Streams one chat completion. The stream yields text and tool-call deltas as they arrive, then
    /// usage (when known), then exactly one `.finished`, and ends. It throws an `LLMError`: before
    /// the first delta for a failed request (after retries and fallbacks), or `.streamBroken` with
    /// the partial text once deltas have been yielded. Cancelling the consuming task aborts the HTTP
    /// transfer at once.
    func stream(_ request: LLMRequest) -> AsyncThrowingStream<LLMStreamEvent, any Error>
}

extension LLMProvider {
    /// The default list (`LLMImageModels.defaultPatterns`); providers built from a configuration
    /// answer from its `imageModels`, and wrappers forward to what they wrap.
    public func acceptsImages(model: String) -> Bool { LLMImageModels.default.accepts(model) }
}

public struct LLMRequest: Sendable, Equatable {
    public var messages: [LLMMessage]
    /// nil: the provider's `defaultModel`.
    public var model: String?
    public var temperature: Double?
    public var maxTokens: Int?
    /// Offered to the model; empty for none.
    public var tools: [LLMTool]

    public init(messages: [LLMMessage], model: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil, tools: [LLMTool] = []) {
        self.messages = messages
        self.model = model
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.tools = tools
    }
}

public struct LLMMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable {
        case system, user, assistant, tool
    }

    public var role: Role
    /// nil for an assistant message that only calls tools.
    public var content: String?
    /// An assistant message's tool calls.
    public var toolCalls: [LLMToolCall]
    /// A `tool` message: the id of the call it answers.
    public var toolCallID: String?
    /// Images given with a user message's text (attached files), after it; empty for most
    /// messages, which then go to the provider exactly as before (`content` a string).
    public var images: [LLMImage]

    public init(role: Role, content: String?, toolCalls: [LLMToolCall] = [], toolCallID: String? = nil, images: [LLMImage] = []) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.images = images
    }

    // Stored runs keep their tool turns as this JSON (`agent_runs.steps`): `images` is written only
    // when there are some and read as empty when absent, so rows written before it decode.
    private enum CodingKeys: String, CodingKey { case role, content, toolCalls, toolCallID, images }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(Role.self, forKey: .role)
        content = try container.decodeIfPresent(String.self, forKey: .content)
        toolCalls = try container.decode([LLMToolCall].self, forKey: .toolCalls)
        toolCallID = try container.decodeIfPresent(String.self, forKey: .toolCallID)
        images = try container.decodeIfPresent([LLMImage].self, forKey: .images) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(role, forKey: .role)
        try container.encodeIfPresent(content, forKey: .content)
        try container.encode(toolCalls, forKey: .toolCalls)
        try container.encodeIfPresent(toolCallID, forKey: .toolCallID)
        if !images.isEmpty { try container.encode(images, forKey: .images) }
    }
}

/// An image the model is shown: a `data:` URL holding the bytes (`data:image/png;base64,…`), so
/// the provider needs no access to the daemon's files. Only models that accept images get one
/// (`LLMProvider.acceptsImages`).
public struct LLMImage: Sendable, Equatable, Codable {
    /// `data:<media type>;base64,<bytes>`.
    public var url: String

    public init(url: String) {
        self.url = url
    }

    /// The data URL of `data`, of type `mediaType` (`image/png`, …).
    public init(data: some Collection<UInt8>, mediaType: String) {
        self.url = "data:" + mediaType + ";base64," + Data(data).base64EncodedString()
    }
}

public struct LLMToolCall: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The arguments as the model wrote them: JSON text, possibly invalid.
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

public struct LLMTool: Sendable, Equatable {
    public var name: String
    public var description: String
    /// The JSON Schema of the arguments, as JSON text.
    public var parametersSchema: String

    public init(name: String, description: String, parametersSchema: String) {
        self.name = name
        self.description = description
        self.parametersSchema = parametersSchema
    }
}

public enum LLMStreamEvent: Sendable, Equatable {
    case text(String)
    /// A piece of tool call `index`: `id` and `name` arrive with its first piece (usually), the
    /// arguments in fragments to be concatenated. A call sent whole arrives as one piece.
    case toolCall(index: Int, id: String?, name: String?, arguments: String)
    case usage(LLMUsage)
    /// The last event. `model` is the model that answered (as the provider reported it, else the
    /// requested one).
    case finished(reason: LLMFinishReason, model: String)
}

public struct LLMUsage: Sendable, Equatable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// True when the provider reported none and these are estimates (about 4 bytes per token).
    public var estimated: Bool

    public init(promptTokens: Int, completionTokens: Int, estimated: Bool) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.estimated = estimated
    }

    public var totalTokens: Int { promptTokens + completionTokens }
}

public enum LLMFinishReason: String, Sendable, Equatable, Codable {
    case stop, length
    case toolCalls = "tool_calls"
    case contentFilter = "content_filter"
    /// Set by the agent when a run is cancelled, never by a provider.
    case cancelled
    /// A reason this version does not know (kept as `other`).
    case other
}
