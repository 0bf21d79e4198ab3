import Foundation
import RPC

/// How the agent produced an assistant message: what `chats.messages.get` (API version 2) shows
/// beside the message. Written by the agent domain (its runs), read here through
/// `MessageGenerationSource`, so the chats domain knows nothing of how runs are stored.
public struct MessageGeneration: Codable, Sendable, Equatable {
    /// The agent run that wrote the message (`agent.runs.get`).
    public var runId: String
    public var provider: String
    /// The model that answered (as the provider reported it, else the one requested).
    public var model: String?
    public var finishReason: LLMFinishReason?
    public var usage: LLMUsage?
    /// From the run's start (the user message stored) to the answer stored.
    public var latencyMs: Int?
    /// From the run's start to the first delta.
    public var timeToFirstTokenMs: Int?
    /// Every web search the run made, in order, with what it found.
    public var searches: [WebSearchStep]
    /// The tool calls the model made before its answer (ids normalised: `call_1`, `call_2`, …).
    public var toolCalls: [LLMToolCall]

    public init(
        runId: String, provider: String, model: String?, finishReason: LLMFinishReason?, usage: LLMUsage?, latencyMs: Int?,
        timeToFirstTokenMs: Int?, searches: [WebSearchStep], toolCalls: [LLMToolCall]
    ) {
        self.runId = runId
        self.provider = provider
        self.model = model
        self.finishReason = finishReason
        self.usage = usage
        self.latencyMs = latencyMs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.searches = searches
        self.toolCalls = toolCalls
    }
}

/// One web search of an agent run: the query the model asked for and what came back (or why
/// nothing did).
public struct WebSearchStep: Codable, Sendable, Equatable {
    /// The normalised id of the tool call it answered (`call_1`, …).
    public var toolCallId: String
    public var query: String
    public var results: [WebSearchResult]
    public var credits: Int?
    public var requestId: String?
    /// Set when the search failed: the error's kind (`rateLimited`, …) and message; the model was
    /// told the search failed.
    public var error: LLMErrorSummary?

    public init(toolCallId: String, query: String, results: [WebSearchResult], credits: Int?, requestId: String?, error: LLMErrorSummary? = nil) {
        self.toolCallId = toolCallId
        self.query = query
        self.results = results
        self.credits = credits
        self.requestId = requestId
        self.error = error
    }
}

/// An error as a run stores it: its kind (an `LLMError.Kind`, or `interrupted`, `internal`) and a
/// message safe to show.
public struct LLMErrorSummary: Codable, Sendable, Equatable {
    public var kind: String
    public var message: String

    public init(kind: String, message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A message with how it was generated: `chats.messages.get` of API version 2.
public struct MessageDetail: Codable, Sendable, Equatable {
    public var id: String
    public var chatId: String
    public var parentId: String?
    public var role: MessageRole
    public var content: String
    public var depth: Int
    public var createdAt: Date
    /// As `Message.attachments`.
    public var attachments: [FileMetadata]?
    /// Present for an assistant message the agent wrote.
    public var generation: MessageGeneration?

    public init(_ message: Message, generation: MessageGeneration?) {
        self.id = message.id
        self.chatId = message.chatId
        self.parentId = message.parentId
        self.role = message.role
        self.content = message.content
        self.depth = message.depth
        self.createdAt = message.createdAt
        self.attachments = message.attachments
        self.generation = generation
    }
}

/// Where the chats domain reads how a message was generated (the agent's store implements it).
public protocol MessageGenerationSource: Sendable {
    /// nil when the message was not written by the agent (or is not the user's).
    func generation(messageID: String, userID: String) async throws -> MessageGeneration?
}

extension LLMFinishReason: RPCStringEnum {
    public static var allCases: [LLMFinishReason] { [.stop, .length, .toolCalls, .contentFilter, .cancelled, .other] }
}
