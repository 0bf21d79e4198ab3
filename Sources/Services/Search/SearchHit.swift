/// One result of `search.query`: a module, a message or a file of the caller's, with a snippet of
/// the matching text.
public struct SearchHit: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case module
        case message
        case file
    }

    public var kind: Kind
    /// The module's id (`mod_…`), the message's, or the file's (`fil_…`).
    public var id: String
    /// For a message: its chat.
    public var chatId: String?
    /// For a message: the module its chat is about, when it has one.
    public var moduleId: String?
    /// For a message: `user`, `assistant` or `system`.
    public var role: String?
    /// For a file: its media type.
    public var mediaType: String?
    /// The module's title, the message's chat's title, or the file's name.
    public var title: String
    /// Up to 16 words around the best match, from the column that matches best (for a module:
    /// title, description or content; for a file: its name or its extracted text). Each matched word is wrapped in
    /// `SearchHit.highlightStart` and `.highlightEnd`; `…` marks text left out.
    public var snippet: String
    // No relevance score: BM25 weighs words by how many rows hold them across all users, so a
    // number would tell a caller how common a word is in other users' modules and messages.

    /// `⟦` (U+27E6): opens a highlighted match in `snippet`.
    public static let highlightStart = "\u{27E6}"
    /// `⟧` (U+27E7): closes a highlighted match in `snippet`.
    public static let highlightEnd = "\u{27E7}"
    /// `…` (U+2026): text left out at either end of `snippet`.
    public static let ellipsis = "\u{2026}"

    public init(
        kind: Kind, id: String, chatId: String? = nil, moduleId: String? = nil, role: String? = nil, mediaType: String? = nil, title: String,
        snippet: String
    ) {
        self.kind = kind
        self.id = id
        self.chatId = chatId
        self.moduleId = moduleId
        self.role = role
        self.mediaType = mediaType
        self.title = title
        self.snippet = snippet
    }
}
