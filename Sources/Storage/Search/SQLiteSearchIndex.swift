import GRDB
import Services

/// The search index on SQLite FTS5: `modules_fts` and `messages_fts` (0006), external-content
/// tables kept in sync with `modules` by triggers, and with `messages` by triggers for deletes and
/// `indexNewMessages` for inserts (0007: once per write batch, not once per row); `files_fts`
/// (0022) on `file_texts`, by triggers (a file's name when it is stored, its text when extracted).
///
/// Each kind is one query: the FTS5 match drives, then a join back to the base table on rowid
/// (`seq`) keeps the user's rows. Measured with this SQL on 10,000 modules of ~300 words (system
/// SQLite 3.40): under 1 ms for a rare word, ~8 ms for a word in 1,100 modules, 30–45 ms for a word
/// in all of them (sorting every match by BM25). An UNINDEXED `user_id` column in the index was
/// about twice as slow, a `rowid IN (the user's rows)` filter ten times. The kinds are read in one
/// transaction and merged by BM25 score, which stays here (see `SearchHit`: it would reveal other
/// users' data).
public struct SQLiteSearchIndex: SearchIndex {
    /// BM25 column weights of `modules_fts` (title, description, content): they multiply a word's
    /// count in each column, so a title match weighs like ten content matches (BM25 then saturates
    /// the total: ten matches do not score ten times one).
    static let moduleWeights = (title: 10.0, description: 4.0, content: 1.0)
    /// Tokens per snippet (FTS5 allows 1–64).
    static let snippetTokens = 16

    private let reader: any DatabaseReader
    /// The writer that runs `indexNewMessages` (its `beforeCommit`), caught up before each search
    /// so that a search sees every message committed before it; nil when nothing adds messages.
    private let indexer: GroupCommitWriter?

    public init(reader: any DatabaseReader, indexer: GroupCommitWriter?) {
        self.reader = reader
        self.indexer = indexer
    }

    /// Adds the messages inserted since the last call to `messages_fts`, in one statement, and
    /// records how far it got. The group-commit writer runs it before a commit, in the batch's
    /// transaction, at most every `beforeCommitInterval` (FTS5 writes a new index segment per
    /// transaction that adds to it, so indexing one append per transaction cost as much as the
    /// append; a batch of them costs little more than one); `search` catches it up first. It costs
    /// one indexed range read when there is nothing new.
    public static func indexNewMessages(_ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO messages_fts (rowid, content)
                SELECT seq, content FROM messages WHERE seq > (SELECT seq FROM search_progress WHERE name = 'messages')
                """
        ).execute()
        try db.cachedStatement(
            sql: """
                UPDATE search_progress SET seq = max(seq, coalesce((SELECT max(seq) FROM messages), 0)) WHERE name = 'messages'
                """
        ).execute()
    }

    public func search(_ query: SearchQuery) async throws -> [SearchHit] {
        let match = Self.matchExpression(words: query.words, lastWordIsPrefix: query.lastWordIsPrefix)
        try await indexer?.catchUpBeforeCommit()
        return try await reader.read { db in
            var scored: [(hit: SearchHit, score: Double)] = []
            if query.kinds.contains(.modules) {
                scored += try Self.modules(matching: match, userID: query.userID, limit: query.limit, db: db)
            }
            if query.kinds.contains(.messages) {
                scored += try Self.messages(matching: match, userID: query.userID, limit: query.limit, db: db)
            }
            if query.kinds.contains(.files) {
                scored += try Self.files(matching: match, userID: query.userID, limit: query.limit, db: db)
            }
            // Stable for equal scores: modules first, then messages, then files, then each kind's own order.
            let ranked = scored.enumerated().sorted { lhs, rhs in
                lhs.element.score != rhs.element.score ? lhs.element.score > rhs.element.score : lhs.offset < rhs.offset
            }
            return ranked.prefix(query.limit).map(\.element.hit)
        }
    }

    // The FTS table comes first in each join (CROSS JOIN fixes that order in SQLite): the match
    // yields the candidates, each checked against its base row by primary key. `-bm25` so that
    // higher is better.

    private static func modules(matching match: String, userID: String, limit: Int, db: Database) throws -> [(hit: SearchHit, score: Double)] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT m.id, m.title, snippet(modules_fts, -1, ?, ?, ?, ?) AS snippet,
                    -bm25(modules_fts, ?, ?, ?) AS score
                FROM modules_fts CROSS JOIN modules m ON m.seq = modules_fts.rowid
                WHERE modules_fts MATCH ? AND m.user_id = ?
                ORDER BY score DESC, m.seq DESC LIMIT ?
                """,
            arguments: snippetArguments + [moduleWeights.title, moduleWeights.description, moduleWeights.content, match, userID, limit])
        return rows.map { row in
            (SearchHit(kind: .module, id: row["id"], title: row["title"], snippet: row["snippet"]), row["score"])
        }
    }

    private static func messages(matching match: String, userID: String, limit: Int, db: Database) throws -> [(hit: SearchHit, score: Double)] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT m.id, m.chat_id, m.role, c.title, c.module_id, snippet(messages_fts, 0, ?, ?, ?, ?) AS snippet,
                    -bm25(messages_fts) AS score
                FROM messages_fts CROSS JOIN messages m ON m.seq = messages_fts.rowid JOIN chats c ON c.id = m.chat_id
                WHERE messages_fts MATCH ? AND m.user_id = ?
                ORDER BY score DESC, m.seq DESC LIMIT ?
                """,
            arguments: snippetArguments + [match, userID, limit])
        return rows.map { row in
            let hit = SearchHit(
                kind: .message, id: row["id"], chatId: row["chat_id"], moduleId: row["module_id"], role: row["role"], title: row["title"],
                snippet: row["snippet"])
            return (hit, row["score"])
        }
    }

    /// Files by name and extracted text (`files_fts`, 0022, on `file_texts`, which holds a copy of
    /// the name): a name match weighs like ten text matches, as a module's title does.
    private static func files(matching match: String, userID: String, limit: Int, db: Database) throws -> [(hit: SearchHit, score: Double)] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT f.id, f.name, f.media_type, snippet(files_fts, -1, ?, ?, ?, ?) AS snippet,
                    -bm25(files_fts, ?, ?) AS score
                FROM files_fts CROSS JOIN files f ON f.seq = files_fts.rowid
                WHERE files_fts MATCH ? AND f.user_id = ?
                ORDER BY score DESC, f.seq DESC LIMIT ?
                """,
            arguments: snippetArguments + [fileWeights.name, fileWeights.text, match, userID, limit])
        return rows.map { row in
            (SearchHit(kind: .file, id: row["id"], mediaType: row["media_type"], title: row["name"], snippet: row["snippet"]), row["score"])
        }
    }

    /// BM25 column weights of `files_fts` (name, text).
    static let fileWeights = (name: 10.0, text: 1.0)

    private static let snippetArguments: StatementArguments = [SearchHit.highlightStart, SearchHit.highlightEnd, SearchHit.ellipsis, snippetTokens]

    /// The FTS5 query for plain words: each one an FTS5 string (`"…"`, inner `"` doubled), so that
    /// nothing in it is syntax (`AND`, `NEAR(`, `title:`, `*`, parentheses are just text, which the
    /// tokenizer splits into words), all ANDed. With `lastWordIsPrefix`, the last word is
    /// `("w" OR "w"*)`: a word it begins matches too, and a document with the word itself matches
    /// both and ranks higher.
    ///
    /// `["swift", "co\"de"]` with a prefix → `"swift" AND ("co""de" OR "co""de"*)`.
    ///
    /// - Precondition: `words` is not empty and every word has a letter or digit (an empty phrase
    ///   matches nothing, and would empty the whole AND).
    static func matchExpression(words: [String], lastWordIsPrefix: Bool) -> String {
        let phrases = words.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        guard lastWordIsPrefix, let last = phrases.last else { return phrases.joined(separator: " AND ") }
        return (phrases.dropLast() + ["(\(last) OR \(last)*)"]).joined(separator: " AND ")
    }
}
