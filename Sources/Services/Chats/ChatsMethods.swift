import Foundation
import RPC

/// The `chats.*` methods: the caller's chats and their message trees.
public enum Chats {
    public enum Create: RPCMethod {
        public static let name = "chats.create"
        public static let summary =
            "Creates an empty chat, optionally in one of the caller's modules (title: 1-200 characters, default \"New chat\")."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var moduleId: String?
            public var title: String?
            public init(moduleId: String? = nil, title: String? = nil) {
                self.moduleId = moduleId
                self.title = title
            }
        }
        public typealias Result = Chat
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    public enum Get: RPCMethod {
        public static let name = "chats.get"
        public static let summary = "One of the caller's chats, with its message count and last message."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = Chat
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    public enum List: RPCMethod {
        public static let name = "chats.list"
        public static let summary =
            "The caller's chats, newest first, a page at a time (limit 1-200, default 50), optionally only those of one module: pass nextCursor back as cursor for the next page."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var moduleId: String?
            public var cursor: String?
            public var limit: Int?
            public init(moduleId: String? = nil, cursor: String? = nil, limit: Int? = nil) {
                self.moduleId = moduleId
                self.cursor = cursor
                self.limit = limit
            }
        }
        public typealias Result = ChatsService.ChatPage
    }

    /// `chats.list` as API version 2 has it: each item names its module (`module: {id, title}`)
    /// instead of only its id, so an editor can show the list without a `modules.get` per chat.
    public enum ListV2: RPCMethod {
        public static let name = "chats.list"
        public static let summary =
            "The caller's chats, newest first, a page at a time (limit 1-200, default 50), optionally only those of one module; each item has its module's id and title. Pass nextCursor back as cursor for the next page."
        public static let rateClass: RPCRateClassName = .read
        public typealias Params = List.Params
        public typealias Result = KeysetPage<ChatListItem>
    }

    public enum Rename: RPCMethod {
        public static let name = "chats.rename"
        public static let summary = "Changes a chat's title (1-200 characters)."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public var title: String
            public init(id: String, title: String) {
                self.id = id
                self.title = title
            }
        }
        public typealias Result = Chat
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    public enum Delete: RPCMethod {
        public static let name = "chats.delete"
        public static let summary = "Deletes one of the caller's chats and all its messages."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var deleted: Bool
            public init(deleted: Bool) { self.deleted = deleted }
        }
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    public enum Fork: RPCMethod {
        public static let name = "chats.fork"
        public static let summary =
            "A new chat (same module) holding copies of the path from the first message down to messageId; the copy of messageId is its active leaf. The original chat is unchanged."
        public static let rateClass: RPCRateClassName = .expensive
        public struct Params: Codable, Sendable {
            public var messageId: String
            /// Default: the original's title followed by " (fork)".
            public var title: String?
            public init(messageId: String, title: String? = nil) {
                self.messageId = messageId
                self.title = title
            }
        }
        public typealias Result = Chat
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    public enum ExportFormat: String, RPCStringEnum {
        case json, markdown
    }

    public enum Export: RPCMethod {
        public static let name = "chats.export"
        public static let summary =
            "A chat as a document: json holds the chat and every message of its tree (with parentId), markdown the active branch as a readable transcript."
        public static let rateClass: RPCRateClassName = .expensive
        public struct Params: Codable, Sendable {
            public var chatId: String
            public var format: ExportFormat
            public init(chatId: String, format: ExportFormat) {
                self.chatId = chatId
                self.format = format
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var format: ExportFormat
            /// `application/json` or `text/markdown`.
            public var mediaType: String
            /// The document's text, ready to be written to a file.
            public var content: String
            public init(format: ExportFormat, mediaType: String, content: String) {
                self.format = format
                self.mediaType = mediaType
                self.content = content
            }
        }
        public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
    }

    /// `chats.messages.*`.
    public enum Messages {
        public enum List: RPCMethod {
            public static let name = "chats.messages.list"
            public static let summary =
                "The chat's active branch, first message first, a page at a time (limit 1-500, default 100): pass nextCursor back as cursor for the next page."
            public static let rateClass: RPCRateClassName = .read
            public struct Params: Codable, Sendable {
                public var chatId: String
                public var cursor: String?
                public var limit: Int?
                public init(chatId: String, cursor: String? = nil, limit: Int? = nil) {
                    self.chatId = chatId
                    self.cursor = cursor
                    self.limit = limit
                }
            }
            public typealias Result = ChatsService.MessagePage
            public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
        }

        public enum Get: RPCMethod {
            public static let name = "chats.messages.get"
            public static let summary = "One message of one of the caller's chats."
            public static let rateClass: RPCRateClassName = .read
            public struct Params: Codable, Sendable {
                public var id: String
                public init(id: String) { self.id = id }
            }
            public typealias Result = Message
            public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
        }

        /// `chats.messages.get` as API version 2 has it: an assistant message the agent wrote also
        /// says how (`generation`: run, provider, model, finish reason, usage, timings, the web
        /// searches with their results, the tool calls).
        public enum GetV2: RPCMethod {
            public static let name = "chats.messages.get"
            public static let summary =
                "One message of one of the caller's chats; an answer written by the agent has generation: its run, provider, model, finish reason, usage, latency, time to first token, and the web searches (query, results, credits, request id) and tool calls it made."
            public static let rateClass: RPCRateClassName = .read
            public typealias Params = Get.Params
            public typealias Result = MessageDetail
            public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
        }

        public enum Append: RPCMethod {
            public static let name = "chats.messages.append"
            public static let summary =
                "Adds a message (content: at most 1 MiB; attachments: up to 16 of the caller's file ids, shown with it) and makes its branch active. By default it follows the active branch's last message; parentId puts it after that message instead, siblingOf next to that message (an edit or a regeneration: a new branch). The reply comes once the message is committed."
            public static let rateClass: RPCRateClassName = .write
            public struct Params: Codable, Sendable {
                public var chatId: String
                public var role: MessageRole
                public var content: String
                public var parentId: String?
                public var siblingOf: String?
                /// Ids of the caller's files (at most 16, no duplicates): the message shows them, the agent reads them.
                public var attachments: [String]?
                public init(
                    chatId: String, role: MessageRole, content: String, parentId: String? = nil, siblingOf: String? = nil,
                    attachments: [String]? = nil
                ) {
                    self.chatId = chatId
                    self.role = role
                    self.content = content
                    self.parentId = parentId
                    self.siblingOf = siblingOf
                    self.attachments = attachments
                }
            }
            public typealias Result = Message
            public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
        }
    }

    /// `chats.branches.*`.
    public enum Branches {
        public enum Select: RPCMethod {
            public static let name = "chats.branches.select"
            public static let summary =
                "Makes the branch through messageId the chat's active one; it continues down through the newest child at each step. Returns the chat."
            public static let rateClass: RPCRateClassName = .write
            public struct Params: Codable, Sendable {
                public var messageId: String
                public init(messageId: String) { self.messageId = messageId }
            }
            public typealias Result = Chat
            public static var errors: [RPCErrorDescription] { [ChatsError.notFoundDescription] }
        }
    }
}
