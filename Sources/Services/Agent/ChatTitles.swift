import Foundation
import RPC

/// Chat titles (`agent.auto_title`): after a chat's first answer, a `chat.title` job asks the model
/// for a short title and renames the chat with an ordinary `chat.renamed` event, unless its user
/// chose the title (`chats.rename`, or a title given to `chats.create` / `chats.fork`).
///
/// This half enqueues: the agent calls it once the run's end is committed, when that answer was
/// the chat's first (`AgentStore.finish` tells, from the same transaction). `ChatTitleJob` runs it.
public struct ChatTitles: Sendable {
    public static let kind = "chat.title"

    /// What a `chat.title` job holds: ids only (the job reads the texts when it runs, so that the
    /// queue keeps no second copy of a user's words, and a chat deleted meanwhile costs no request).
    public struct Payload: Codable, Sendable, Equatable {
        public var chatId: String
        /// The chat's first answer; its parent is the question.
        public var messageId: String
        /// The model the run asked for (nil: the provider's default), so that a title can be had
        /// where no default model is configured and every call names one.
        public var model: String?

        public init(chatId: String, messageId: String, model: String? = nil) {
            self.chatId = chatId
            self.messageId = messageId
            self.model = model
        }
    }

    private let scheduler: JobScheduler
    private let clock: any WallClock
    private let ids: any IDGenerator

    /// - Parameter scheduler: enqueues and wakes this process's workers, so the title follows the
    ///   answer at once rather than at the workers' next poll.
    public init(scheduler: JobScheduler, clock: any WallClock, ids: any IDGenerator) {
        self.scheduler = scheduler
        self.clock = clock
        self.ids = ids
    }

    /// Enqueues the chat's title job for `userID`. The idempotency key is the chat id: a chat has
    /// at most one title job however many times this is called (two first answers racing, a retry
    /// of the call), and a second call answers the first job (`created: false`).
    @discardableResult
    public func enqueue(chatID: String, answerID: String, model: String? = nil, userID: String) async throws -> (job: Job, created: Bool) {
        let payload = try JSONFragment(encoding: Payload(chatId: chatID, messageId: answerID, model: model))
        return try await scheduler.enqueue(
            NewJob(
                id: ids.makeID(prefix: "job_"), kind: Self.kind, ownerID: userID, payload: payload, maxAttempts: ChatTitleJob.maxAttempts,
                runAfter: clock.now(), idempotencyKey: chatID))
    }
}

/// Runs `chat.title` jobs: one small model request (the question and the answer's beginning, an
/// instruction for at most eight words, few output tokens; the stream collected), then the
/// chat's rename, conditional on its title not being its user's in the same statement
/// (`ChatStore.retitle`), so that a rename racing the job wins. A failed attempt changes nothing.
public struct ChatTitleJob: JobHandler {
    /// Two attempts: the second only after a transient provider error (rate limited, unavailable,
    /// timed out; the provider has already retried within the attempt). A title is not worth more.
    public static let maxAttempts = 2
    public static let maxWords = 8
    /// Enough for eight words in any language; the request stays cheap whatever the model.
    public static let maxTokens = 40
    /// Characters of the question and of the answer the model is shown.
    public static let questionCharacters = 1000
    public static let answerCharacters = 1000
    /// Text read from the stream at most (a model that ignores the instruction is cut off).
    static let maxReplyCharacters = 2000
    public static let instruction = """
        You write titles for conversations. Reply with a title of at most 8 words that says what the conversation is about, \
        in the language of the user's message. Reply with the title only: no quotes, no "Title:", no final period.
        """

    public let policy: JobKindPolicy
    private let chats: any ChatStore
    private let provider: any LLMProvider
    private let clock: any WallClock

    public init(chats: any ChatStore, provider: any LLMProvider, clock: any WallClock, concurrency: Int = 2) {
        self.chats = chats
        self.provider = provider
        self.clock = clock
        // May run again after a crash: the rename is conditional and idempotent; a rerun costs one
        // small request at most.
        policy = JobKindPolicy(
            kind: ChatTitles.kind, concurrency: concurrency, maxAttempts: Self.maxAttempts, rerunAfterCrash: true, baseBackoff: .seconds(5),
            maxBackoff: .seconds(60),
            isRetriable: { error in (error as? LLMError).map { LLMRetryPolicy().shouldRetry($0) } ?? false })
    }

    /// What a finished job holds: whether the chat was renamed, and to what.
    public struct Outcome: Codable, Sendable, Equatable {
        public var renamed: Bool
        public var title: String?
    }

    public func run(_ claimed: ClaimedJob) async throws -> JSONFragment? {
        guard let userID = claimed.job.ownerID else { throw JobError(kind: "invalid", message: "a chat.title job belongs to a user") }
        let payload: ChatTitles.Payload
        do {
            payload = try claimed.job.payload.decode(ChatTitles.Payload.self)
        } catch {
            throw JobError(kind: "invalid", message: "chat.title payload: \(error)")
        }
        // Named by its user, or deleted: no request at all.
        guard try await chats.titleSetByUser(chatID: payload.chatId, userID: userID) == false,
            let answer = try await chats.message(id: payload.messageId, userID: userID), answer.chatId == payload.chatId
        else { return try JSONFragment(encoding: Outcome(renamed: false)) }
        var question = ""
        if let parentID = answer.parentId, let parent = try await chats.message(id: parentID, userID: userID), parent.role == .user {
            question = parent.content
        }
        let title = try await self.title(question: question, answer: answer.content, model: payload.model)
        try Task.checkCancellation()
        let event = ChatsEvents.ChatRenamed(userID: userID, chatId: payload.chatId, title: title)
        let renamed = try await chats.retitle(id: payload.chatId, userID: userID, title: title, updatedAt: clock.now(), event: event) != nil
        return try JSONFragment(encoding: Outcome(renamed: renamed, title: renamed ? title : nil))
    }

    /// Asks the model and cleans its reply.
    ///
    /// - Throws: the provider's `LLMError`; `JobError` (`emptyTitle`) for a reply with no usable title.
    func title(question: String, answer: String, model: String?) async throws -> String {
        var prompt = "The user's message:\n" + String(question.prefix(Self.questionCharacters))
        prompt += "\n\nThe beginning of the answer:\n" + String(answer.prefix(Self.answerCharacters))
        let request = LLMRequest(
            messages: [LLMMessage(role: .system, content: Self.instruction), LLMMessage(role: .user, content: prompt)], model: model,
            maxTokens: Self.maxTokens)
        var reply = ""
        for try await event in provider.stream(request) {
            guard case .text(let piece) = event else { continue }
            reply += piece
            if reply.count > Self.maxReplyCharacters { break }
        }
        try Task.checkCancellation()
        guard let title = Self.cleaned(reply) else { throw JobError(kind: "emptyTitle", message: "the model answered no usable title") }
        return title
    }

    /// The reply's first non-empty line, without a `Title:` label, surrounding quotes or markdown
    /// and a final period, at most `maxWords` words and `ChatsService.maxTitleLength` characters;
    /// nil when nothing is left.
    static func cleaned(_ reply: String) -> String? {
        guard var line = reply.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }).first(where: { !$0.isEmpty })
        else { return nil }
        if let colon = line.firstIndex(of: ":"), line[..<colon].lowercased().trimmingCharacters(in: .whitespaces) == "title" {
            line = String(line[line.index(after: colon)...])
        }
        let wrapping = CharacterSet(charactersIn: "\"'“”‘’«»`*_#").union(.whitespaces)
        line = line.trimmingCharacters(in: wrapping)
        while let last = line.last, ".。".contains(last) { line.removeLast() }
        line = line.trimmingCharacters(in: wrapping)
        let words = line.split(whereSeparator: \.isWhitespace).prefix(maxWords)
        let title = String(words.joined(separator: " ").prefix(ChatsService.maxTitleLength))
        return title.isEmpty ? nil : title
    }
}
