import Foundation

// The checks a call passes before anything is stored: its message, its options, and where its
// question goes (the chat and the placement in its tree).
extension AgentService {
    /// The chat `agent.act` answers in (nil: a new one) and where its question goes. The placement
    /// is read as `chats.messages.append` reads it (`MessagePlacement(parentId:siblingOf:)`); the
    /// agent also finds the chat through the placement message, and places an edit only beside a
    /// user message.
    ///
    /// - Throws: `AgentError.invalid` (`siblingOf`, `moduleId`), `ChatsError.notFound`.
    func target(of params: Agent.Act.Params, user: User) async throws -> (chat: Chat?, placement: MessagePlacement) {
        let placement = try MessagePlacement(parentId: params.parentId, siblingOf: params.siblingOf, invalid: AgentError.self)
        var chat: Chat?
        if let chatID = params.chatId {
            guard let found = try await chats.chat(id: chatID, userID: user.id) else { throw ChatsError.notFound(kind: "chat", id: chatID) }
            chat = found
        }
        if let anchorID = placement.anchorID {
            guard let anchor = try await chats.message(id: anchorID, userID: user.id), chat == nil || anchor.chatId == chat?.id else {
                throw ChatsError.notFound(kind: "message", id: anchorID)
            }
            if case .siblingOf = placement, anchor.role != .user {
                throw AgentError.invalid(
                    field: "siblingOf", reason: "an edit is a sibling of a user message; \(anchorID) is an \(anchor.role.rawValue) message")
            }
            if chat == nil { chat = try await chats.chat(id: anchor.chatId, userID: user.id) }
        }
        if let chat, let moduleID = params.moduleId, moduleID != chat.moduleId {
            throw AgentError.invalid(
                field: "moduleId", reason: "only for a new chat: chat \(chat.id) is in \(chat.moduleId.map { "module \($0)" } ?? "no module")")
        }
        return (chat, placement)
    }

    static func validate(message: String) throws {
        guard !message.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw AgentError.invalid(field: "message", reason: "must not be blank")
        }
        guard message.utf8.count <= ChatsService.maxContentBytes else {
            throw AgentError.invalid(field: "message", reason: "at most \(ChatsService.maxContentBytes) bytes of UTF-8")
        }
    }

    /// A chat's title from its first message: whitespace collapsed, cut to the title limit.
    static func title(from message: String) -> String {
        let collapsed = message.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard !collapsed.isEmpty else { return ChatsService.defaultTitle }
        guard collapsed.count > ChatsService.maxTitleLength else { return collapsed }
        return String(collapsed.prefix(ChatsService.maxTitleLength - 1)) + "…"
    }

    static func validate(_ options: Agent.Options) throws -> Agent.Options {
        var options = options
        if let temperature = options.temperature, !(0...2).contains(temperature) {
            throw AgentError.invalid(field: "temperature", reason: "between 0 and 2")
        }
        if let maxTokens = options.maxTokens, !(1...maxTokensLimit).contains(maxTokens) {
            throw AgentError.invalid(field: "maxTokens", reason: "between 1 and \(maxTokensLimit)")
        }
        if let model = options.model {
            let trimmed = model.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty, trimmed.count <= maxModelLength else {
                throw AgentError.invalid(field: "model", reason: "1-\(maxModelLength) characters")
            }
            options.model = trimmed
        }
        if let variables = options.variables, variables.count > maxVariables {
            throw AgentError.invalid(field: "variables", reason: "at most \(maxVariables)")
        }
        return options
    }
}
