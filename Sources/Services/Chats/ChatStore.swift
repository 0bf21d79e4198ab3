import Foundation

/// A chat row with its position in the owner's list (`seq` grows with every insert).
public struct StoredChat: Sendable, Equatable {
    public var seq: Int64
    public var chat: Chat
    /// The title of the chat's module, when it has one.
    public var moduleTitle: String?

    public init(seq: Int64, chat: Chat, moduleTitle: String? = nil) {
        self.seq = seq
        self.chat = chat
        self.moduleTitle = moduleTitle
    }
}

/// What `ChatStore.chats` selects.
public struct ChatQuery: Sendable, Equatable {
    public var userID: String
    /// Only chats in this module.
    public var moduleID: String?
    /// Only rows with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int

    public init(userID: String, moduleID: String? = nil, beforeSeq: Int64? = nil, limit: Int) {
        self.userID = userID
        self.moduleID = moduleID
        self.beforeSeq = beforeSeq
        self.limit = limit
    }
}

/// A new chat, as the service built it.
public struct NewChat: Sendable, Equatable {
    public var id: String
    public var moduleID: String?
    public var title: String
    public var createdAt: Date
    /// The user chose the title (`chats.create` or `chats.fork` with one): no title job replaces it.
    public var titleSetByUser: Bool

    public init(id: String, moduleID: String?, title: String, createdAt: Date, titleSetByUser: Bool = false) {
        self.id = id
        self.moduleID = moduleID
        self.title = title
        self.createdAt = createdAt
        self.titleSetByUser = titleSetByUser
    }
}

/// A message to append, as the service built it; the store finds its parent and depth.
public struct NewMessage: Sendable, Equatable {
    public var id: String
    public var chatID: String
    public var placement: MessagePlacement
    public var role: MessageRole
    public var content: String
    public var createdAt: Date
    /// File ids, checked (`Attachments.validate`); the store refuses one that is not the user's.
    public var attachments: [String]

    public init(
        id: String, chatID: String, placement: MessagePlacement, role: MessageRole, content: String, createdAt: Date, attachments: [String] = []
    ) {
        self.id = id
        self.chatID = chatID
        self.placement = placement
        self.role = role
        self.content = content
        self.createdAt = createdAt
        self.attachments = attachments
    }
}

/// Which messages `ChatStore.contentSize` counts.
public enum ChatContentScope: Sendable {
    case all
    case activeBranch
}

/// What `ChatStore.contentSize` answers.
public struct ChatContentSize: Sendable, Equatable {
    public var messages: Int
    /// Bytes of UTF-8 of the messages' contents.
    public var bytes: Int

    public init(messages: Int, bytes: Int) {
        self.messages = messages
        self.bytes = bytes
    }
}

/// Where chats and their messages live. `SQLiteChatStore` in Storage implements it. Every call is
/// scoped to one user: another user's chat or message is the same as a missing one, and the store
/// reports either as `ChatsError.notFound`. A write stores its events in the same transaction (the
/// outbox), only when it changes something.
public protocol ChatStore: Sendable {
    /// Inserts an empty chat and returns it.
    ///
    /// - Throws: `ChatsError.notFound(kind: "module")` when `moduleID` is not one of the user's.
    func insert(_ chat: NewChat, userID: String, event: ChatsEvents.ChatCreated) async throws -> Chat
    func chat(id: String, userID: String) async throws -> Chat?
    /// Newest first (by `seq`), at most `query.limit` rows.
    func chats(_ query: ChatQuery) async throws -> [StoredChat]
    /// The user's rename: the title is theirs from now on (`retitle` no longer changes it). nil
    /// when the user has no such chat.
    func rename(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat?
    /// The daemon's rename (a `chat.title` job): changes the title only while the user has not
    /// chosen one, checked in the same statement, so a user's rename committed first always wins.
    /// nil when it changed nothing (the user named the chat, or it is gone).
    func retitle(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat?
    /// Whether the chat's title is its user's (`rename`, or given at creation); nil when the user
    /// has no such chat. A title job reads it to skip the model for a chat it may not rename.
    func titleSetByUser(chatID: String, userID: String) async throws -> Bool?
    /// Deletes the chat and all its messages; false when the user has no such chat.
    func delete(id: String, userID: String, event: ChatsEvents.ChatDeleted) async throws -> Bool

    func message(id: String, userID: String) async throws -> Message?
    /// The active branch from depth `afterDepth + 1`, in order, at most `limit` messages; nil when
    /// the user has no such chat.
    func activeBranch(chatID: String, userID: String, afterDepth: Int, limit: Int) async throws -> [Message]?
    /// The path from the first message down to `messageID`, in order; nil when the user has no such
    /// message.
    func path(to messageID: String, userID: String) async throws -> [Message]?
    /// Every message of the chat, parents before children; nil when the user has no such chat.
    func allMessages(chatID: String, userID: String) async throws -> [Message]?
    /// How many messages, and how many bytes of content, the chat holds (`scope: .all`) or its
    /// active branch does, counted by the database without reading the messages out; nil when the
    /// user has no such chat. `chats.export` refuses a chat past the reply budget with it.
    func contentSize(chatID: String, userID: String, scope: ChatContentScope) async throws -> ChatContentSize?
    /// The newest messages of the path down to `messageID`, back from it (always included) while
    /// their content adds up to at most `maxContentBytes`, in order; nil when the user has no such
    /// message. The agent reads the history that can fit its context window this way, not the
    /// whole branch.
    func pathTail(to messageID: String, userID: String, maxContentBytes: Int) async throws -> [Message]?

    /// Appends a message, makes it the chat's active leaf and returns it, with the event `event`
    /// makes of it. Concurrent appends may be committed together; the call returns once the
    /// message is committed.
    ///
    /// - Throws: `ChatsError.notFound` for a chat, or a placement message, that is not the user's
    ///   (or, for a placement message, not in that chat); `FilesError.notFound` for an attachment
    ///   that is not one of the user's files.
    func append(_ message: NewMessage, userID: String, event: @escaping @Sendable (Message) -> ChatsEvents.MessageCreated) async throws -> Message
    /// Makes the branch through `messageID` active: its leaf is found by following the newest child
    /// from that message down. Returns the chat; nil when the user has no such message.
    func selectBranch(messageID: String, userID: String, updatedAt: Date) async throws -> Chat?
    /// Inserts a new chat holding `messages` (already copied, with new ids, parents and chat id), the
    /// last one active, in one transaction, and returns it.
    func insertFork(_ chat: NewChat, messages: [Message], userID: String, events: [any DomainEvent]) async throws -> Chat
}
