/// Events of the agent domain, one per change of a run's status. Each is filed under the run's chat
/// (and through it, its module). Texts are not in the events: fetch them with `agent.runs.get` and
/// `chats.messages.get`.
public enum AgentEvents {
    public struct RunStarted: DomainEvent, Equatable {
        public static let topic = "agent.run.started"
        public var userID: String
        public var runId: String
        public var chatId: String
        public var userMessageId: String
        public var provider: String
        public var model: String?
        public var chatID: String? { chatId }

        public init(userID: String, runId: String, chatId: String, userMessageId: String, provider: String, model: String?) {
            self.userID = userID
            self.runId = runId
            self.chatId = chatId
            self.userMessageId = userMessageId
            self.provider = provider
            self.model = model
        }

        enum CodingKeys: String, CodingKey { case runId, chatId, userMessageId, provider, model }
    }

    public struct RunCompleted: DomainEvent, Equatable {
        public static let topic = "agent.run.completed"
        public var userID: String
        public var runId: String
        public var chatId: String
        public var messageId: String?
        public var finishReason: LLMFinishReason
        public var usage: LLMUsage
        public var chatID: String? { chatId }

        public init(userID: String, runId: String, chatId: String, messageId: String?, finishReason: LLMFinishReason, usage: LLMUsage) {
            self.userID = userID
            self.runId = runId
            self.chatId = chatId
            self.messageId = messageId
            self.finishReason = finishReason
            self.usage = usage
        }

        enum CodingKeys: String, CodingKey { case runId, chatId, messageId, finishReason, usage }
    }

    public struct RunFailed: DomainEvent, Equatable {
        public static let topic = "agent.run.failed"
        public var userID: String
        public var runId: String
        public var chatId: String
        /// An `LLMError.Kind`, `interrupted` or `internal`.
        public var errorKind: String
        public var chatID: String? { chatId }

        public init(userID: String, runId: String, chatId: String, errorKind: String) {
            self.userID = userID
            self.runId = runId
            self.chatId = chatId
            self.errorKind = errorKind
        }

        enum CodingKeys: String, CodingKey { case runId, chatId, errorKind }
    }

    /// The partial answer, when anything arrived, is `messageId`.
    public struct RunCancelled: DomainEvent, Equatable {
        public static let topic = "agent.run.cancelled"
        public var userID: String
        public var runId: String
        public var chatId: String
        public var messageId: String?
        public var chatID: String? { chatId }

        public init(userID: String, runId: String, chatId: String, messageId: String?) {
            self.userID = userID
            self.runId = runId
            self.chatId = chatId
            self.messageId = messageId
        }

        enum CodingKeys: String, CodingKey { case runId, chatId, messageId }
    }

    public static let all: [any DomainEvent.Type] = [RunStarted.self, RunCompleted.self, RunFailed.self, RunCancelled.self]
}
