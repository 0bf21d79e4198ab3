import RPC

/// Events of the chats domain. Each is filed under its chat and, through the chat, its module.
public enum ChatsEvents {
    public struct ChatCreated: DomainEvent, Equatable {
        public static let topic = "chat.created"
        public var userID: String
        public var chatId: String
        public var moduleId: String?
        public var title: String
        /// For `chats.fork`: the message the new chat was forked at.
        public var forkedFrom: String?
        public var chatID: String? { chatId }
        public var moduleID: String? { moduleId }

        public init(userID: String, chatId: String, moduleId: String?, title: String, forkedFrom: String? = nil) {
            self.userID = userID
            self.chatId = chatId
            self.moduleId = moduleId
            self.title = title
            self.forkedFrom = forkedFrom
        }

        enum CodingKeys: String, CodingKey { case chatId, moduleId, title, forkedFrom }
    }

    public struct ChatRenamed: DomainEvent, Equatable {
        public static let topic = "chat.renamed"
        public var userID: String
        public var chatId: String
        public var title: String
        public var chatID: String? { chatId }

        public init(userID: String, chatId: String, title: String) {
            self.userID = userID
            self.chatId = chatId
            self.title = title
        }

        enum CodingKeys: String, CodingKey { case chatId, title }
    }

    public struct ChatDeleted: DomainEvent, Equatable {
        public static let topic = "chat.deleted"
        public var userID: String
        public var chatId: String
        public var chatID: String? { chatId }

        public init(userID: String, chatId: String) {
            self.userID = userID
            self.chatId = chatId
        }

        enum CodingKeys: String, CodingKey { case chatId }
    }

    /// A message was appended (or copied by a fork). The text is not in the event: fetch it with
    /// `chats.messages.get`.
    public struct MessageCreated: DomainEvent, Equatable {
        public static let topic = "chat.message.created"
        public var userID: String
        public var chatId: String
        public var messageId: String
        public var parentId: String?
        public var role: MessageRole
        public var depth: Int
        public var chatID: String? { chatId }

        public init(userID: String, message: Message) {
            self.userID = userID
            self.chatId = message.chatId
            self.messageId = message.id
            self.parentId = message.parentId
            self.role = message.role
            self.depth = message.depth
        }

        enum CodingKeys: String, CodingKey { case chatId, messageId, parentId, role, depth }

        /// One per append, encoded in the append's transaction, where the generic encoder took ~7% of
        /// the writer thread's time (BENCHMARKS.md).
        public var json: String? {
            var text = #"{"chatId":"#
            JSONText.appendQuoted(chatId, to: &text)
            text += #","depth":"#
            text += String(depth)
            text += #","messageId":"#
            JSONText.appendQuoted(messageId, to: &text)
            if let parentId {
                text += #","parentId":"#
                JSONText.appendQuoted(parentId, to: &text)
            }
            text += #","role":"#
            JSONText.appendQuoted(role.rawValue, to: &text)
            text += "}"
            return text
        }
    }

    public static let all: [any DomainEvent.Type] = [ChatCreated.self, ChatRenamed.self, ChatDeleted.self, MessageCreated.self]
}
