import Foundation

/// The caller's chats and their message trees. Every call is scoped to one user id; another
/// user's chat or message answers exactly like a missing one.
///
/// Messages are never changed or deleted one by one: an edit or a regeneration appends a sibling,
/// so every answer stays reachable and a chat's history is append-only (which is what lets appends
/// be group-committed, see `SQLiteChatStore`).
public struct ChatsService: Sendable {
    public static let defaultTitle = "New chat"
    public static let maxTitleLength = 200
    public static let maxContentBytes = 1 << 20
    public static let previewLength = 200
    public static let defaultChatLimit = 50
    public static let maxChatLimit = 200
    public static let defaultMessageLimit = 100
    public static let maxMessageLimit = 500

    /// What `list` answers: a page of chats.
    public typealias ChatPage = KeysetPage<Chat>
    /// What `messages` answers: a page of the active branch, in order.
    public typealias MessagePage = KeysetPage<Message>

    private let store: any ChatStore
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let generations: (any MessageGenerationSource)?
    private let replyBudget: ReplyBudget

    /// - Parameter generations: how the agent wrote its messages (`chats.messages.get` of API
    ///   version 2); nil answers every message without `generation`.
    /// - Parameter replyBudget: the most bytes a reply may hold: pages stop early, a larger message
    ///   or export is refused.
    public init(
        store: any ChatStore, clock: any WallClock, ids: any IDGenerator, generations: (any MessageGenerationSource)? = nil,
        replyBudget: ReplyBudget = ReplyBudget()
    ) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.generations = generations
        self.replyBudget = replyBudget
    }

    // MARK: Chats

    /// - Throws: `ChatsError.invalid`, `.notFound(kind: "module")`.
    public func create(_ params: Chats.Create.Params, userID: String) async throws -> Chat {
        let title = try params.title.map { try ChatsError.validTitle($0, maxLength: Self.maxTitleLength) } ?? Self.defaultTitle
        let new = NewChat(
            id: ids.makeID(prefix: "cht_"), moduleID: params.moduleId, title: title, createdAt: clock.now(), titleSetByUser: params.title != nil)
        return try await store.insert(
            new, userID: userID, event: ChatsEvents.ChatCreated(userID: userID, chatId: new.id, moduleId: new.moduleID, title: title))
    }

    /// - Throws: `ChatsError.notFound`.
    public func get(id: String, userID: String) async throws -> Chat {
        guard let chat = try await store.chat(id: id, userID: userID) else { throw ChatsError.notFound(kind: "chat", id: id) }
        return chat
    }

    /// Newest first; the keyset cursor keeps pages correct while chats are added.
    ///
    /// - Throws: `ChatsError.invalid` (`limit`, `cursor`).
    public func list(_ params: Chats.List.Params, userID: String) async throws -> ChatPage {
        let limit = try ChatsError.validLimit(params.limit, default: Self.defaultChatLimit, max: Self.maxChatLimit)
        let before = try params.cursor.map { try ChatsError.position(cursor: $0, from: Chats.List.name) }
        let rows = try await store.chats(ChatQuery(userID: userID, moduleID: params.moduleId, beforeSeq: before, limit: limit + 1))
        return try ChatPage(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.chat)
    }

    /// `chats.list` of API version 2: the same page, each chat with its module's id and title.
    ///
    /// - Throws: `ChatsError.invalid` (`limit`, `cursor`).
    public func listWithModules(_ params: Chats.List.Params, userID: String) async throws -> KeysetPage<ChatListItem> {
        let limit = try ChatsError.validLimit(params.limit, default: Self.defaultChatLimit, max: Self.maxChatLimit)
        let before = try params.cursor.map { try ChatsError.position(cursor: $0, from: Chats.List.name) }
        let rows = try await store.chats(ChatQuery(userID: userID, moduleID: params.moduleId, beforeSeq: before, limit: limit + 1))
        return try KeysetPage(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: ChatListItem.init)
    }

    /// The title is the user's from now on: a `chat.title` job never replaces it.
    ///
    /// - Throws: `ChatsError.invalid`, `.notFound`.
    public func rename(_ params: Chats.Rename.Params, userID: String) async throws -> Chat {
        let title = try ChatsError.validTitle(params.title, maxLength: Self.maxTitleLength)
        let event = ChatsEvents.ChatRenamed(userID: userID, chatId: params.id, title: title)
        guard let chat = try await store.rename(id: params.id, userID: userID, title: title, updatedAt: clock.now(), event: event) else {
            throw ChatsError.notFound(kind: "chat", id: params.id)
        }
        return chat
    }

    /// - Throws: `ChatsError.notFound`.
    public func delete(id: String, userID: String) async throws -> Bool {
        guard try await store.delete(id: id, userID: userID, event: ChatsEvents.ChatDeleted(userID: userID, chatId: id)) else {
            throw ChatsError.notFound(kind: "chat", id: id)
        }
        return true
    }

    /// A new chat with copies of the path down to `messageId` (new ids; same roles, contents,
    /// times and attachments), in the original's module.
    ///
    /// - Throws: `ChatsError.invalid` (`title`), `.notFound(kind: "message")`.
    public func fork(_ params: Chats.Fork.Params, userID: String) async throws -> Chat {
        let title = try params.title.map { try ChatsError.validTitle($0, maxLength: Self.maxTitleLength) }
        guard let path = try await store.path(to: params.messageId, userID: userID), let last = path.last,
            let original = try await store.chat(id: last.chatId, userID: userID)
        else { throw ChatsError.notFound(kind: "message", id: params.messageId) }
        let chatID = ids.makeID(prefix: "cht_")
        var copies: [Message] = []
        copies.reserveCapacity(path.count)
        for message in path {
            copies.append(
                Message(
                    id: ids.makeID(prefix: "msg_"), chatId: chatID, parentId: copies.last?.id, role: message.role,
                    content: message.content, depth: message.depth, createdAt: message.createdAt, attachments: message.attachments))
        }
        let forkTitle = title ?? Self.forkTitle(of: original.title)
        // "Title (fork)" of a title the user chose is theirs too: no title job replaces it.
        var titleSetByUser = title != nil
        if !titleSetByUser { titleSetByUser = try await store.titleSetByUser(chatID: original.id, userID: userID) == true }
        let created = ChatsEvents.ChatCreated(
            userID: userID, chatId: chatID, moduleId: original.moduleId, title: forkTitle, forkedFrom: params.messageId)
        return try await store.insertFork(
            NewChat(id: chatID, moduleID: original.moduleId, title: forkTitle, createdAt: clock.now(), titleSetByUser: titleSetByUser),
            messages: copies, userID: userID,
            events: [created] + copies.map { ChatsEvents.MessageCreated(userID: userID, message: $0) })
    }

    /// - Throws: `ChatsError.notFound`; `ReplyBudgetError` for a document past the reply budget
    ///   (refused before the messages are read when their content alone passes it).
    public func export(_ params: Chats.Export.Params, userID: String) async throws -> Chats.Export.Result {
        let chat = try await get(id: params.chatId, userID: userID)
        guard let size = try await store.contentSize(chatID: chat.id, userID: userID, scope: params.format == .json ? .all : .activeBranch) else {
            throw ChatsError.notFound(kind: "chat", id: chat.id)
        }
        // The document holds every content and a heading or a few keys per message: past the
        // budget already, whatever the escaping.
        try replyBudget.check(size: size.bytes + size.messages * Self.exportBytesPerMessage)
        let result = try await document(chat, format: params.format, userID: userID)
        // Now exactly: the document as a JSON string in the reply.
        try replyBudget.check(size: ReplySize.text(result.content) + ReplySize.itemOverhead)
        return result
    }

    /// Bytes a message adds to an export beside its content, at least (a markdown heading with its
    /// role and time).
    static let exportBytesPerMessage = 40

    private func document(_ chat: Chat, format: Chats.ExportFormat, userID: String) async throws -> Chats.Export.Result {
        switch format {
        case .json:
            guard let messages = try await store.allMessages(chatID: chat.id, userID: userID) else {
                throw ChatsError.notFound(kind: "chat", id: chat.id)
            }
            return .init(format: .json, mediaType: "application/json", content: try ChatTranscript.json(chat: chat, messages: messages))
        case .markdown:
            guard let branch = try await store.activeBranch(chatID: chat.id, userID: userID, afterDepth: 0, limit: Int.max) else {
                throw ChatsError.notFound(kind: "chat", id: chat.id)
            }
            return .init(format: .markdown, mediaType: "text/markdown", content: ChatTranscript.markdown(chat: chat, branch: branch))
        }
    }

    // MARK: Messages

    /// The active branch in order; the cursor is the last item's depth, so a page continues where
    /// the previous one ended even while messages are appended.
    ///
    /// - Throws: `ChatsError.invalid` (`limit`, `cursor`), `.notFound`.
    public func messages(_ params: Chats.Messages.List.Params, userID: String) async throws -> MessagePage {
        let limit = try ChatsError.validLimit(params.limit, default: Self.defaultMessageLimit, max: Self.maxMessageLimit)
        let after = try params.cursor.map { try ChatsError.position(cursor: $0, from: Chats.Messages.List.name) } ?? 0
        guard let rows = try await store.activeBranch(chatID: params.chatId, userID: userID, afterDepth: Int(clamping: after), limit: limit + 1)
        else {
            throw ChatsError.notFound(kind: "chat", id: params.chatId)
        }
        return try MessagePage(rows: rows, limit: limit, budget: replyBudget, position: { Int64($0.depth) }, item: { $0 })
    }

    /// - Throws: `ChatsError.notFound`, `ReplyBudgetError`.
    public func message(id: String, userID: String) async throws -> Message {
        guard let message = try await store.message(id: id, userID: userID) else { throw ChatsError.notFound(kind: "message", id: id) }
        return try replyBudget.check(message)
    }

    /// `chats.messages.get` of API version 2: the message with how the agent generated it.
    ///
    /// - Throws: `ChatsError.notFound`, `ReplyBudgetError`.
    public func messageDetail(id: String, userID: String) async throws -> MessageDetail {
        let message = try await message(id: id, userID: userID)
        let generation = message.role == .assistant ? try await generations?.generation(messageID: id, userID: userID) : nil
        return try replyBudget.check(MessageDetail(message, generation: generation))
    }

    /// - Throws: `ChatsError.invalid` (`content`, `parentId` with `siblingOf`), `.notFound`;
    ///   `FilesError.invalid`/`.tooLarge` (`attachments`), `.notFound` (an attachment not the user's).
    public func append(_ params: Chats.Messages.Append.Params, userID: String) async throws -> Message {
        guard params.content.utf8.count <= Self.maxContentBytes else {
            throw ChatsError.invalid(field: "content", reason: "at most \(Self.maxContentBytes) bytes of UTF-8")
        }
        let placement = try MessagePlacement(parentId: params.parentId, siblingOf: params.siblingOf, invalid: ChatsError.self)
        let attachments = try Attachments.validate(params.attachments)
        return try await store.append(
            NewMessage(
                id: ids.makeID(prefix: "msg_"), chatID: params.chatId, placement: placement, role: params.role, content: params.content,
                createdAt: clock.now(), attachments: attachments),
            userID: userID, event: { ChatsEvents.MessageCreated(userID: userID, message: $0) })
    }

    /// - Throws: `ChatsError.notFound(kind: "message")`.
    public func selectBranch(messageID: String, userID: String) async throws -> Chat {
        guard let chat = try await store.selectBranch(messageID: messageID, userID: userID, updatedAt: clock.now()) else {
            throw ChatsError.notFound(kind: "message", id: messageID)
        }
        return chat
    }

    // MARK: Titles

    /// "Title (fork)", shortened so the result stays within the title limit.
    static func forkTitle(of title: String) -> String {
        let suffix = " (fork)"
        return String(title.prefix(maxTitleLength - suffix.count)) + suffix
    }
}
