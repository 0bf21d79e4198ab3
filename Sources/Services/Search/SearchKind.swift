/// What `search.query` looks through: the caller's modules (title, description, content) or the
/// messages of their chats (content).
public enum SearchKind: String, Sendable, Hashable, CaseIterable {
    case modules
    case messages
}
