/// Events of the chats domain.
public enum ChatsEvents {
    public struct ChatCreated: DomainEvent, Equatable {
        public static let name = "chat.created"
        public var userID: String
        public var chat: Chat

        public init(userID: String, chat: Chat) {
            self.userID = userID
            self.chat = chat
        }
    }

    public struct ChatRenamed: DomainEvent, Equatable {
        public static let name = "chat.renamed"
        public var userID: String
        public var chatID: String
        public var title: String

        public init(userID: String, chatID: String, title: String) {
            self.userID = userID
            self.chatID = chatID
            self.title = title
        }
    }

    public struct ChatDeleted: DomainEvent, Equatable {
        public static let name = "chat.deleted"
        public var userID: String
        public var chatID: String

        public init(userID: String, chatID: String) {
            self.userID = userID
            self.chatID = chatID
        }
    }

    public struct MessageCreated: DomainEvent, Equatable {
        public static let name = "chat.message.created"
        public var userID: String
        public var message: Message

        public init(userID: String, message: Message) {
            self.userID = userID
            self.message = message
        }
    }
}
