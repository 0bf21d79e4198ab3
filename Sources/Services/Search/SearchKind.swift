/// What `search.query` looks through: the caller's modules (title, description, content), the
/// messages of their chats (content), or their files (name, extracted text).
public enum SearchKind: String, Sendable, Hashable, CaseIterable {
    case modules
    case messages
    case files
}
