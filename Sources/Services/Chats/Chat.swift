import Foundation
import RPC

/// A conversation: its messages form a tree, and the chat shows one branch of it, the one ending at
/// `activeMessageId`.
public struct Chat: Codable, Sendable, Equatable {
    /// `cht_…`, opaque.
    public var id: String
    /// The module the chat acts in; nil when it has none (or the module was deleted).
    public var moduleId: String?
    /// 1–200 characters, trimmed.
    public var title: String
    /// The leaf of the active branch; nil while the chat is empty.
    public var activeMessageId: String?
    /// Messages on the active branch (what `chats.messages.list` returns in full).
    public var messageCount: Int
    /// The active branch's last message, shortened; nil while the chat is empty.
    public var lastMessage: MessagePreview?
    public var createdAt: Date
    /// Changes with a rename, an append and a branch selection.
    public var updatedAt: Date

    public init(
        id: String, moduleId: String?, title: String, activeMessageId: String?, messageCount: Int, lastMessage: MessagePreview?,
        createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.moduleId = moduleId
        self.title = title
        self.activeMessageId = activeMessageId
        self.messageCount = messageCount
        self.lastMessage = lastMessage
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The start of a chat's last message, for lists.
public struct MessagePreview: Codable, Sendable, Equatable {
    public var id: String
    public var role: MessageRole
    /// The first `ChatsService.previewLength` characters of the content.
    public var text: String
    public var createdAt: Date

    public init(id: String, role: MessageRole, text: String, createdAt: Date) {
        self.id = id
        self.role = role
        self.text = text
        self.createdAt = createdAt
    }
}

/// Who wrote a message.
public enum MessageRole: String, RPCStringEnum {
    case system, user, assistant
}

/// One message of a chat's tree. Messages never change once written: editing or regenerating one
/// appends a sibling (same parent) and makes its branch active.
public struct Message: Codable, Sendable, Equatable {
    /// `msg_…`, opaque.
    public var id: String
    public var chatId: String
    /// nil for a first message.
    public var parentId: String?
    public var role: MessageRole
    /// At most 1 MiB of UTF-8.
    public var content: String
    /// 1 for a first message, the parent's depth + 1 otherwise: its position on its branch.
    public var depth: Int
    public var createdAt: Date
    /// The files given with the message, in their order (those deleted since left out); absent
    /// when there are none, so a message without files reads as before files existed.
    public var attachments: [FileMetadata]?

    public init(
        id: String, chatId: String, parentId: String?, role: MessageRole, content: String, depth: Int, createdAt: Date,
        attachments: [FileMetadata]? = nil
    ) {
        self.id = id
        self.chatId = chatId
        self.parentId = parentId
        self.role = role
        self.content = content
        self.depth = depth
        self.createdAt = createdAt
        self.attachments = attachments
    }
}

/// A chat in a `chats.list` page of API version 2: the chat, with its module named.
public struct ChatListItem: Codable, Sendable, Equatable {
    public var id: String
    /// The module the chat acts in, with its title; nil when it has none.
    public var module: ModuleReference?
    public var title: String
    public var activeMessageId: String?
    public var messageCount: Int
    public var lastMessage: MessagePreview?
    public var createdAt: Date
    public var updatedAt: Date

    public init(_ stored: StoredChat) {
        let chat = stored.chat
        self.id = chat.id
        self.module = chat.moduleId.map { ModuleReference(id: $0, title: stored.moduleTitle ?? "") }
        self.title = chat.title
        self.activeMessageId = chat.activeMessageId
        self.messageCount = chat.messageCount
        self.lastMessage = chat.lastMessage
        self.createdAt = chat.createdAt
        self.updatedAt = chat.updatedAt
    }
}

/// A module named in another result: its id and title.
public struct ModuleReference: Codable, Sendable, Equatable {
    public var id: String
    public var title: String

    public init(id: String, title: String) {
        self.id = id
        self.title = title
    }
}
