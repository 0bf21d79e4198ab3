import Foundation
import RPC

/// Where an agent run is.
public enum AgentRunStatus: String, RPCStringEnum {
    case running, completed, failed, cancelled
}

/// What the context of a request held: branch messages sent, older ones left out for lack of room,
/// and the request's estimated size in tokens (about UTF-8 bytes / 4, plus a few per message).
public struct AgentContextReport: Codable, Sendable, Equatable {
    /// Messages of the chat's branch sent (the new user message included).
    public var keptMessages: Int
    /// Older messages of the branch left out because they did not fit the model's context window.
    public var droppedMessages: Int
    public var estimatedTokens: Int
    /// The attached files whose text was cut to fit (a visible note in the request says so too);
    /// absent when none was. In the reply of `agent.act`/`agent.regenerate`; not stored
    /// (`agent.runs.get` shows the three counts above).
    public var cutFiles: [AgentContextCut]?

    public init(keptMessages: Int, droppedMessages: Int, estimatedTokens: Int, cutFiles: [AgentContextCut]? = nil) {
        self.keptMessages = keptMessages
        self.droppedMessages = droppedMessages
        self.estimatedTokens = estimatedTokens
        self.cutFiles = cutFiles
    }
}

/// A file whose text went into a request only in part: its first `keptBytes` bytes of `size`.
public struct AgentContextCut: Codable, Sendable, Equatable {
    public var fileId: String
    public var name: String
    public var keptBytes: Int64
    /// The text's size in bytes: the file's for a text file, the extracted text's for a PDF.
    public var size: Int64

    public init(fileId: String, name: String, keptBytes: Int64, size: Int64) {
        self.fileId = fileId
        self.name = name
        self.keptBytes = keptBytes
        self.size = size
    }
}

/// One agent run (`agent.runs.get`): a question answered, or trying to be.
public struct AgentRun: Codable, Sendable, Equatable {
    /// `run_…`, opaque.
    public var id: String
    public var chatId: String
    /// The question.
    public var userMessageId: String
    /// The answer, once stored (also the partial answer of a cancelled run); nil while running,
    /// for a failed run, and for a run cancelled before anything arrived.
    public var assistantMessageId: String?
    public var status: AgentRunStatus
    public var provider: String
    /// The model requested (nil: the provider's default), then the one that answered.
    public var model: String?
    public var finishReason: LLMFinishReason?
    /// Summed over the run's requests; `estimated` when a provider reported none for one of them.
    public var usage: LLMUsage?
    /// Why the run failed: an `LLMError.Kind` (`authentication`, …), `interrupted` (the daemon
    /// stopped during the run) or `internal`.
    public var error: LLMErrorSummary?
    public var context: AgentContextReport?
    /// How many web searches the run made.
    public var searchCount: Int
    public var startedAt: Date
    public var firstTokenAt: Date?
    public var finishedAt: Date?
    /// A background run's job (`agent.run`, `jobs.get`); nil (absent) for a run tied to its call.
    public var jobId: String?
    /// A background run's attempts started so far (1 for the first; a restart or a transient
    /// provider error starts another from the beginning); absent for a run tied to its call.
    public var attempt: Int?
    /// The text an earlier attempt of a background run had streamed when it stopped (the daemon
    /// was killed): kept for reference, never an answer message. Absent when there is none.
    public var partial: String?

    public init(
        id: String, chatId: String, userMessageId: String, assistantMessageId: String? = nil, status: AgentRunStatus, provider: String,
        model: String?,
        finishReason: LLMFinishReason? = nil, usage: LLMUsage? = nil, error: LLMErrorSummary? = nil, context: AgentContextReport? = nil,
        searchCount: Int = 0, startedAt: Date, firstTokenAt: Date? = nil, finishedAt: Date? = nil, jobId: String? = nil, attempt: Int? = nil,
        partial: String? = nil
    ) {
        self.jobId = jobId
        self.attempt = attempt
        self.partial = partial
        self.id = id
        self.chatId = chatId
        self.userMessageId = userMessageId
        self.assistantMessageId = assistantMessageId
        self.status = status
        self.provider = provider
        self.model = model
        self.finishReason = finishReason
        self.usage = usage
        self.error = error
        self.context = context
        self.searchCount = searchCount
        self.startedAt = startedAt
        self.firstTokenAt = firstTokenAt
        self.finishedAt = finishedAt
    }

    public var latencyMs: Int? { finishedAt.map { Self.milliseconds(from: startedAt, to: $0) } }
    public var timeToFirstTokenMs: Int? { firstTokenAt.map { Self.milliseconds(from: startedAt, to: $0) } }

    static func milliseconds(from start: Date, to end: Date) -> Int {
        let milliseconds = (end.timeIntervalSince(start) * 1000).rounded()
        guard milliseconds.isFinite, milliseconds > 0 else { return 0 }
        return milliseconds < 1e15 ? Int(milliseconds) : Int(1e15)
    }

    enum CodingKeys: String, CodingKey {
        case id, chatId, userMessageId, assistantMessageId, status, provider, model, finishReason, usage, error, context, searchCount, startedAt,
            firstTokenAt, finishedAt, latencyMs, timeToFirstTokenMs, jobId, attempt, partial
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id), chatId: try container.decode(String.self, forKey: .chatId),
            userMessageId: try container.decode(String.self, forKey: .userMessageId),
            assistantMessageId: try container.decodeIfPresent(String.self, forKey: .assistantMessageId),
            status: try container.decode(AgentRunStatus.self, forKey: .status), provider: try container.decode(String.self, forKey: .provider),
            model: try container.decodeIfPresent(String.self, forKey: .model),
            finishReason: try container.decodeIfPresent(LLMFinishReason.self, forKey: .finishReason),
            usage: try container.decodeIfPresent(LLMUsage.self, forKey: .usage),
            error: try container.decodeIfPresent(LLMErrorSummary.self, forKey: .error),
            context: try container.decodeIfPresent(AgentContextReport.self, forKey: .context),
            searchCount: try container.decode(Int.self, forKey: .searchCount),
            startedAt: try container.decode(Date.self, forKey: .startedAt),
            firstTokenAt: try container.decodeIfPresent(Date.self, forKey: .firstTokenAt),
            finishedAt: try container.decodeIfPresent(Date.self, forKey: .finishedAt),
            jobId: try container.decodeIfPresent(String.self, forKey: .jobId), attempt: try container.decodeIfPresent(Int.self, forKey: .attempt),
            partial: try container.decodeIfPresent(String.self, forKey: .partial))
        _ = try container.decodeIfPresent(Int.self, forKey: .latencyMs)
        _ = try container.decodeIfPresent(Int.self, forKey: .timeToFirstTokenMs)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(chatId, forKey: .chatId)
        try container.encode(userMessageId, forKey: .userMessageId)
        try container.encodeIfPresent(assistantMessageId, forKey: .assistantMessageId)
        try container.encode(status, forKey: .status)
        try container.encode(provider, forKey: .provider)
        try container.encodeIfPresent(model, forKey: .model)
        try container.encodeIfPresent(finishReason, forKey: .finishReason)
        try container.encodeIfPresent(usage, forKey: .usage)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(context, forKey: .context)
        try container.encode(searchCount, forKey: .searchCount)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(firstTokenAt, forKey: .firstTokenAt)
        try container.encodeIfPresent(finishedAt, forKey: .finishedAt)
        try container.encodeIfPresent(latencyMs, forKey: .latencyMs)
        try container.encodeIfPresent(timeToFirstTokenMs, forKey: .timeToFirstTokenMs)
        try container.encodeIfPresent(jobId, forKey: .jobId)
        try container.encodeIfPresent(attempt, forKey: .attempt)
        try container.encodeIfPresent(partial, forKey: .partial)
    }
}

/// A web page an answer drew on (from the run's searches).
public struct AgentSource: Codable, Sendable, Equatable {
    public var title: String
    public var url: String

    public init(title: String, url: String) {
        self.title = title
        self.url = url
    }
}

/// What `agent.act` and `agent.regenerate` answer.
public struct AgentAnswer: Codable, Sendable, Equatable {
    public var runId: String
    public var chatId: String
    /// The assistant message stored (`finishReason` and more: `chats.messages.get` in version 2).
    public var message: Message
    public var finishReason: LLMFinishReason
    public var usage: LLMUsage
    public var context: AgentContextReport
    /// The pages the run's web searches found, each once, in the order found; absent without search.
    public var sources: [AgentSource]?

    public init(
        runId: String, chatId: String, message: Message, finishReason: LLMFinishReason, usage: LLMUsage, context: AgentContextReport,
        sources: [AgentSource]?
    ) {
        self.runId = runId
        self.chatId = chatId
        self.message = message
        self.finishReason = finishReason
        self.usage = usage
        self.context = context
        self.sources = sources
    }
}

/// What `agent.act` and `agent.regenerate` answer with `background: true`, at once: the run goes on
/// as the job `jobId`, whatever happens to the connection. `messageId` is the question (stored
/// before this reply).
public struct AgentBackgroundRun: Codable, Sendable, Equatable {
    public var runId: String
    public var jobId: String
    public var chatId: String
    public var messageId: String

    public init(runId: String, jobId: String, chatId: String, messageId: String) {
        self.runId = runId
        self.jobId = jobId
        self.chatId = chatId
        self.messageId = messageId
    }
}

/// The result of `agent.act` and `agent.regenerate`: the answer (without `background`, exactly the
/// `AgentAnswer` object it always was) or, with `background: true`, the background run's ids. On
/// the wire it is one of the two objects, untagged; the schema says `oneOf` (each closed, with
/// required members the other lacks, so a value matches exactly one).
public enum AgentActResult: Codable, Sendable, Equatable, JSONSchemaProviding {
    case answer(AgentAnswer)
    case background(AgentBackgroundRun)

    public var answer: AgentAnswer? {
        if case .answer(let answer) = self { return answer }
        return nil
    }

    public var background: AgentBackgroundRun? {
        if case .background(let run) = self { return run }
        return nil
    }

    /// The run, either way.
    public var runId: String {
        switch self {
        case .answer(let answer): answer.runId
        case .background(let run): run.runId
        }
    }

    /// The run's chat, either way.
    public var chatId: String {
        switch self {
        case .answer(let answer): answer.chatId
        case .background(let run): run.chatId
        }
    }

    private enum Key: String, CodingKey { case jobId }

    public init(from decoder: any Decoder) throws {
        // The background object is the one with `jobId`; an answer never has one.
        if try decoder.container(keyedBy: Key.self).contains(.jobId) {
            self = .background(try AgentBackgroundRun(from: decoder))
        } else {
            self = .answer(try AgentAnswer(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .answer(let answer): try answer.encode(to: encoder)
        case .background(let run): try run.encode(to: encoder)
        }
    }

    public static var jsonSchema: JSONSchema { .oneOf([JSONSchema.of(AgentAnswer.self), JSONSchema.of(AgentBackgroundRun.self)]) }
    public static var schemaExample: AgentActResult { .background(AgentBackgroundRun(runId: "", jobId: "", chatId: "", messageId: "")) }
}

/// One `agent.delta` notification: a piece of the answer's text, numbered from 1 per run.
/// One `agent.delta` notification: a piece of the answer's text, numbered from 1 per attempt of the
/// run (a run has one attempt, unless a background run is started again after a crash or a retry:
/// then its deltas start again from seq 1 of the next attempt, and its answer from the beginning).
/// An attempt field rather than seqs that never repeat: a crashed attempt may have sent deltas past
/// what it stored, so the next one could not know where to continue numbering.
public struct AgentDelta: Codable, Sendable, Equatable {
    public var runId: String
    public var chatId: String
    public var seq: Int
    public var text: String
    /// 1 for a run's first attempt.
    public var attempt: Int

    public init(runId: String, chatId: String, seq: Int, text: String, attempt: Int = 1) {
        self.runId = runId
        self.chatId = chatId
        self.seq = seq
        self.text = text
        self.attempt = attempt
    }
}

extension LLMError.Kind: RPCStringEnum {}
