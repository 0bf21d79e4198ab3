/// Full-text search over the caller's modules, messages and files. The query is plain words, never a
/// query language: the service splits it on white space and the index matches every word (each
/// quoted as a phrase), so no input can fail to parse or reach another user's rows.
public struct SearchService: Sendable {
    public static let maxQueryLength = 1_000
    /// Words a query may hold, as the index's tokenizer splits them: each is a phrase FTS5 matches
    /// against every user's rows (the owner filter comes after), so 500 one-letter words in 1,000
    /// characters made one query scan the index 500 times over.
    public static let maxWords = 64
    public static let defaultLimit = 20
    public static let maxLimit = 100
    /// A last word shorter than this is matched whole only: a one-letter prefix expands to a large
    /// part of the vocabulary (measured: 3× the time of a two-letter one on 10,000 modules).
    public static let minPrefixLength = 2

    /// What `query` answers.
    public struct Results: Codable, Sendable, Equatable {
        /// Best first, across kinds.
        public var items: [SearchHit]

        public init(items: [SearchHit]) { self.items = items }
    }

    private let index: any SearchIndex
    private let replyBudget: ReplyBudget

    /// - Parameter replyBudget: the most bytes a reply may hold: the best hits that fit are
    ///   answered (the results are best first and not paged).
    public init(index: any SearchIndex, replyBudget: ReplyBudget = ReplyBudget()) {
        self.index = index
        self.replyBudget = replyBudget
    }

    /// The caller's best matches for `params.query`.
    ///
    /// A query that is not blank but has no letter or digit (`"*"`, `"🚀"`) matches nothing: the
    /// index only holds words.
    ///
    /// - Throws: `SearchError.invalid` (`query`: blank or over 1,000 characters; `limit`: outside
    ///   1–100; `kinds`: empty), `.overLimit` (`query`: over 64 words); `ReplyBudgetError` when the best hit
    ///   alone does not fit.
    public func query(_ params: Search.Query.Params, userID: String) async throws -> Results {
        let words = try Self.words(in: params.query)
        let limit = params.limit ?? Self.defaultLimit
        guard (1...Self.maxLimit).contains(limit) else {
            throw SearchError.invalid(field: "limit", reason: "between 1 and \(Self.maxLimit)")
        }
        let kinds = Set(params.kinds ?? SearchKind.allCases)
        guard !kinds.isEmpty else {
            throw SearchError.invalid(field: "kinds", reason: "at least one of \(SearchKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let last = words.last else { return Results(items: []) }
        let query = SearchQuery(
            userID: userID, words: words, lastWordIsPrefix: Self.wordCharacterCount(last) >= Self.minPrefixLength, kinds: kinds,
            limit: limit)
        var hits = try await index.search(query)
        var filler = ReplyBudget.Filler(replyBudget)
        if let past = try hits.firstIndex(where: { try !filler.add($0) }) { hits.removeSubrange(past...) }
        return Results(items: hits)
    }

    /// The query's words, separated by white space or control characters, that hold a letter or a
    /// digit (the others would match nothing and, ANDed, make the whole query match nothing).
    /// Control characters separate because SQLite reads a bound string up to its first NUL.
    ///
    /// - Throws: `SearchError.invalid` (`query`) when it is blank or too long, `.overLimit` when
    ///   it has more than `maxWords` words.
    static func words(in query: String) throws -> [String] {
        guard query.count <= maxQueryLength else {
            throw SearchError.invalid(field: "query", reason: "at most \(maxQueryLength) characters")
        }
        let words = query.split(whereSeparator: { character in
            character.isWhitespace || character.unicodeScalars.contains { $0.properties.generalCategory == .control }
        }).map(String.init)
        guard !words.isEmpty else { throw SearchError.invalid(field: "query", reason: "must not be blank") }
        let tokens = tokenCount(query)
        guard tokens <= maxWords else {
            throw SearchError.overLimit(field: "query", reason: "at most \(maxWords) words", limit: maxWords, actual: tokens)
        }
        return words.filter { wordCharacterCount($0) > 0 }
    }

    /// The words the index's tokenizer makes of `text`: runs of word characters (`a-b` is two, in
    /// one phrase), a combining mark continuing its word.
    static func tokenCount(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for scalar in text.unicodeScalars {
            if isWordCharacter(scalar) {
                if !inWord { count += 1 }
                inWord = true
            } else if !(inWord && scalar.properties.generalCategory == .nonspacingMark) {
                inWord = false
            }
        }
        return count
    }

    /// Letters, digits and private-use characters: what the index's tokenizer (unicode61) keeps as
    /// parts of words; everything else (punctuation, symbols, emoji) separates words.
    static func wordCharacterCount(_ word: String) -> Int {
        word.unicodeScalars.count(where: isWordCharacter)
    }

    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .decimalNumber, .letterNumber, .otherNumber, .privateUse:
            true
        default:
            false
        }
    }
}
