/// What `SearchIndex.search` looks for.
public struct SearchQuery: Sendable, Equatable {
    public var userID: String
    /// Words that must all occur, as plain text: never query syntax. Each is matched as a phrase
    /// (`well-known` finds `well` directly followed by `known`), without case or diacritics.
    /// Not empty; each has at least one letter or digit.
    public var words: [String]
    /// Whether the last word also matches the words it begins (type-ahead); exact matches still
    /// rank above prefix-only ones.
    public var lastWordIsPrefix: Bool
    /// Not empty.
    public var kinds: Set<SearchKind>
    public var limit: Int

    public init(userID: String, words: [String], lastWordIsPrefix: Bool, kinds: Set<SearchKind>, limit: Int) {
        self.userID = userID
        self.words = words
        self.lastWordIsPrefix = lastWordIsPrefix
        self.kinds = kinds
        self.limit = limit
    }
}

/// The full-text index over the users' modules, messages and files (names and extracted text). `SQLiteSearchIndex` in Storage
/// implements it (SQLite FTS5, kept in sync with the tables by triggers, so nothing has to tell it
/// about changes).
public protocol SearchIndex: Sendable {
    /// The user's best matches among `query.kinds`, best first (by relevance, across kinds), at most
    /// `query.limit`. Another user's rows never appear.
    func search(_ query: SearchQuery) async throws -> [SearchHit]
}
