import AgentdTesting
import Foundation
import GRDB
import RPC
import Services
import Storage
import Testing

@testable import Daemon
@testable import Storage

/// SearchService through the container (`Dependencies.testing`): the real FTS5 index on in-memory
/// SQLite. Modules are made through ModulesService; chats and messages are inserted with SQL (the
/// chats domain has no service in this branch), which fires the same triggers.
@Suite("Search service")
struct SearchServiceTests {
    let dependencies: Dependencies
    let modules: ModulesService
    let search: SearchService
    let alice: User
    let bob: User

    init() async throws {
        let configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        let collaborators = Dependencies.Collaborators(
            clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        modules = dependencies.modules
        search = dependencies.search
        alice = try await dependencies.auth.register(username: "alice", password: "password1")
        bob = try await dependencies.auth.register(username: "bob", password: "password1")
    }

    // MARK: Helpers

    func module(_ title: String, description: String? = nil, content: String = "", for user: User? = nil) async throws -> Module {
        try await modules.create(.init(title: title, description: description, content: content), userID: (user ?? alice).id)
    }

    /// Inserts a chat row; returns its id.
    func chat(_ title: String, module: Module? = nil, for user: User? = nil) async throws -> String {
        let id = "cht_" + UUID().uuidString
        let userID = (user ?? alice).id
        try await dependencies.database.writer.write { db in
            try db.execute(
                sql: "INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [id, userID, module?.id, title, Self.timestamp, Self.timestamp])
        }
        return id
    }

    /// Inserts a message row (depth one more than its parent's); returns its id.
    func message(_ content: String, in chatID: String, role: String = "user", parent: String? = nil, for user: User? = nil) async throws -> String {
        let id = "msg_" + UUID().uuidString
        let userID = (user ?? alice).id
        try await dependencies.database.writer.write { db in
            let depth = try parent.map { try Int.fetchOne(db, sql: "SELECT depth + 1 FROM messages WHERE id = ?", arguments: [$0]) ?? 1 } ?? 1
            try db.execute(
                sql: "INSERT INTO messages (id, chat_id, user_id, parent_id, role, content, depth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [id, chatID, userID, parent, role, content, depth, Self.timestamp])
            // What the group-commit writer does before each commit of the chats store.
            try SQLiteSearchIndex.indexNewMessages(db)
        }
        return id
    }

    func sql(_ statement: String, _ arguments: StatementArguments = []) async throws {
        try await dependencies.database.writer.write { db in try db.execute(sql: statement, arguments: arguments) }
    }

    func find(_ query: String, kinds: [SearchKind]? = nil, limit: Int? = nil, as user: User? = nil) async throws -> [SearchHit] {
        try await search.query(.init(query: query, kinds: kinds, limit: limit), userID: (user ?? alice).id).items
    }

    /// The rowids the FTS index itself holds for `word` (no join with the base table, so a row
    /// deleted without its index entry would still show here).
    func indexed(_ table: String, _ word: String) async throws -> [Int64] {
        try await dependencies.database.writer.read { db in
            try Int64.fetchAll(db, sql: "SELECT rowid FROM \(table) WHERE \(table) MATCH ? ORDER BY rowid", arguments: ["\"\(word)\""])
        }
    }

    func seq(ofModule id: String) async throws -> Int64 {
        try await dependencies.database.writer.read { db in
            try #require(try Int64.fetchOne(db, sql: "SELECT seq FROM modules WHERE id = ?", arguments: [id]))
        }
    }

    func expectInvalid(_ field: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any) async {
        do {
            _ = try await body()
            Issue.record("accepted; expected an invalid \(field)", sourceLocation: sourceLocation)
        } catch let error as SearchError {
            guard case .invalid(let actual, _) = error else {
                Issue.record("\(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(actual == field, sourceLocation: sourceLocation)
            #expect(error.rpcError.code == .invalidParams, sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    static let timestamp = "2027-01-15T08:00:00.000Z"

    /// Modules that match none of the tests' words, so that words are rare in the corpus as they
    /// would be (BM25 gives words found in half the rows almost no weight).
    func filler(for user: User? = nil) async throws {
        let chatID = try await chat("Small talk", for: user)
        for (title, content) in [
            ("Groceries", "milk eggs bread"), ("Travel", "train tickets hotel"), ("Music", "guitar chords"), ("Garden", "tomatoes basil"),
        ] {
            _ = try await module(title, content: content, for: user)
            _ = try await message("\(title): \(content)?", in: chatID, for: user)
        }
    }

    // MARK: Ranking and snippets

    @Test("a title match ranks above a description match, above a content-only match; snippets highlight the word")
    func ranking() async throws {
        try await filler()
        // Oldest first: the newest-first tie-break would put them in the opposite order.
        let inTitle = try await module("Concurrency", content: "Actors and tasks.")
        let inDescription = try await module("Chapter two", description: "About concurrency", content: "Threads.")
        let inContent = try await module("Weekly notes", content: "We talked about concurrency for a while, then lunch.")
        let hits = try await find("concurrency")
        #expect(hits.map(\.id) == [inTitle.id, inDescription.id, inContent.id])
        #expect(hits.map(\.title) == ["Concurrency", "Chapter two", "Weekly notes"])
        #expect(hits.map(\.snippet) == ["⟦Concurrency⟧", "About ⟦concurrency⟧", "We talked about ⟦concurrency⟧ for a while, then lunch."])
        #expect(hits.allSatisfy { $0.kind == .module && $0.chatId == nil && $0.moduleId == nil && $0.role == nil })
    }

    @Test("all words must match, in any order and column; a long text's snippet is a window around them with …")
    func snippetWindow() async throws {
        try await filler()
        let words = (1...60).map { "word\($0)" }
        var content = words
        content[30] = "needle"
        let long = try await module("Haystack", content: content.joined(separator: " "))
        let other = try await module("Only needle", content: "no thread here")

        let hits = try await find("needle")
        #expect(Set(hits.map(\.id)) == [long.id, other.id])
        let snippet = try #require(hits.first { $0.id == long.id }?.snippet)
        #expect(snippet.hasPrefix("…") && snippet.hasSuffix("…"), "\(snippet)")
        #expect(snippet.contains(" ⟦needle⟧ "), "\(snippet)")
        #expect(snippet.split(separator: " ").count <= SQLiteSearchIndex.snippetTokens, "\(snippet)")
        #expect(try await find("needle haystack").map(\.id) == [long.id])
        #expect(try await find("haystack needle").map(\.id) == [long.id])
        #expect(try await find("needle haystack thread").isEmpty)
    }

    @Test("case and diacritics are ignored (also decomposed accents); snippets keep the original text")
    func diacritics() async throws {
        try await filler()
        let cafe = try await module("Café Society", content: "Crème brûlée recipes")
        for query in ["cafe", "CAFÉ", "cafe\u{301}", "creme brulee", "BRÛLÉE", "society café"] {
            #expect(try await find(query).map(\.id) == [cafe.id], "\(query)")
        }
        #expect(try await find("cafe").first?.snippet == "⟦Café⟧ Society")
        #expect(try await find("brulee").first?.snippet == "Crème ⟦brûlée⟧ recipes")
        // Other scripts fold case; unicode61 removes diacritics of Latin letters only.
        let greek = try await module("Αθήνα", content: "Ελληνικά κείμενα")
        #expect(try await find("ΑΘΉΝΑ").map(\.id) == [greek.id])
        #expect(try await find("αθηνα").isEmpty)
    }

    @Test("the last word also matches as a prefix (two characters or more); whole-word matches rank first")
    func prefix() async throws {
        try await filler()
        let exact = try await module("Notes", content: "the swift compiler is rather slow today")
        let longer = try await module("River", content: "swiftly moving")
        // Without the whole-word preference the shorter module would rank first.
        #expect(try await find("swift").map(\.id) == [exact.id, longer.id])
        let typed = try await find("swif")
        #expect(Set(typed.map(\.id)) == [exact.id, longer.id])
        #expect(Set(typed.map(\.snippet)) == ["the ⟦swift⟧ compiler is rather slow today", "⟦swiftly⟧ moving"])
        #expect(try await find("compiler swif").map(\.id) == [exact.id])
        // Only the last word is a prefix.
        #expect(try await find("swif compiler").isEmpty)
        // One character is matched whole only.
        #expect(try await find("s").isEmpty)
        let letter = try await module("Vitamin C", content: "oranges")
        #expect(try await find("c").map(\.id) == [letter.id])
    }

    // MARK: Kinds, limit, isolation

    @Test("kinds: both by default, or only modules, or only messages; message hits name their chat, its module and the role")
    func kinds() async throws {
        try await filler()
        let checklist = try await module("Deploy checklist", content: "rollout steps")
        let release = try await chat("Release chat", module: checklist)
        let question = try await message("how do we rollout the release", in: release)
        let answer = try await message("the rollout starts on Monday", in: release, role: "assistant", parent: question)
        let loose = try await chat("Loose chat")
        let unattached = try await message("rollout of nothing in particular at all", in: loose)

        let both = try await find("rollout")
        #expect(Set(both.map(\.id)) == [checklist.id, question, answer, unattached])

        #expect(try await find("rollout", kinds: [.modules]).map(\.id) == [checklist.id])
        let messages = try await find("rollout", kinds: [.messages])
        #expect(Set(messages.map(\.id)) == [question, answer, unattached])
        let hit = try #require(messages.first { $0.id == answer })
        #expect(
            hit
                == SearchHit(
                    kind: .message, id: answer, chatId: release, moduleId: checklist.id, role: "assistant", title: "Release chat",
                    snippet: "the ⟦rollout⟧ starts on Monday"))
        let other = try #require(messages.first { $0.id == unattached })
        #expect(other.chatId == loose && other.moduleId == nil && other.role == "user" && other.title == "Loose chat")
        #expect(try await find("rollout", kinds: [.messages, .modules, .messages]).count == 4)
    }

    @Test("modules and messages are merged by relevance, not listed kind after kind")
    func mergedAcrossKinds() async throws {
        try await filler()
        let room = try await chat("Room")
        let padding = (1...40).map { "filler\($0)" }.joined(separator: " ")
        let weakModule = try await module("Long read", content: "\(padding) harbour \(padding)")
        let weakMessage = try await message("\(padding) harbour \(padding)", in: room)
        let strongModule = try await module("Harbour", content: "harbour views")
        let strongMessage = try await message("harbour harbour", in: room)
        let hits = try await find("harbour").map(\.id)
        #expect(hits.count == 4)
        #expect(Set(hits.prefix(2)) == [strongModule.id, strongMessage], "\(hits)")
        #expect(Set(hits.suffix(2)) == [weakModule.id, weakMessage], "\(hits)")
    }

    @Test("limit keeps the best: the first n of the full ranking, across kinds; 20 by default")
    func limit() async throws {
        try await filler()
        let room = try await chat("Room")
        for count in 1...3 {
            _ = try await module("Lorem \(count)", content: Array(repeating: "lorem", count: count).joined(separator: " ") + " ipsum dolor sit amet")
            _ = try await message(Array(repeating: "lorem", count: count).joined(separator: " ") + " consectetur", in: room)
        }
        let all = try await find("lorem", limit: 100)
        #expect(all.count == 6)
        #expect(Set(all.map(\.kind)) == [.module, .message])
        for limit in [1, 2, 4] {
            #expect(try await find("lorem", limit: limit) == Array(all.prefix(limit)), "limit \(limit)")
        }
        for index in 0..<25 { _ = try await module("Bulk \(index)", content: "repeated") }
        #expect(try await find("repeated").count == 20)
        #expect(try await find("repeated", limit: 100).count == 25)
    }

    @Test("another user's modules and messages never appear, whatever the query")
    func isolation() async throws {
        try await filler()
        try await filler(for: bob)
        let mine = try await module("Secret plan", content: "the secret is cocoa")
        let myChat = try await chat("Secret chat")
        let myMessage = try await message("my secret message", in: myChat)
        let theirs = try await module("Secret plan", content: "the secret is cocoa", for: bob)
        let theirChat = try await chat("Secret chat", for: bob)
        let theirMessage = try await message("my secret message", in: theirChat, for: bob)

        for query in ["secret", "secr", "cocoa", "message", "plan"] {
            let aliceSees = Set(try await find(query, limit: 100).map(\.id))
            let bobSees = Set(try await find(query, limit: 100, as: bob).map(\.id))
            #expect(aliceSees.isDisjoint(with: [theirs.id, theirMessage]), "\(query): \(aliceSees)")
            #expect(bobSees.isDisjoint(with: [mine.id, myMessage]), "\(query): \(bobSees)")
        }
        #expect(Set(try await find("secret").map(\.id)) == [mine.id, myMessage])
        #expect(Set(try await find("secret", as: bob).map(\.id)) == [theirs.id, theirMessage])
    }

    // MARK: Keeping the index in sync

    @Test("an update re-indexes title, description and content; a tags-only update keeps the entry")
    func updates() async throws {
        try await filler()
        let created = try await module("Old name", description: "first draft", content: "original body")
        let seq = try await seq(ofModule: created.id)
        _ = try await modules.update(.init(id: created.id, title: "New name"), userID: alice.id)
        #expect(try await find("old").isEmpty)
        #expect(try await find("new name").map(\.id) == [created.id])
        #expect(try await find("original").map(\.title) == ["New name"])

        _ = try await modules.update(.init(id: created.id, description: "final version", content: "rewritten body"), userID: alice.id)
        #expect(try await find("draft").isEmpty)
        #expect(try await find("original").isEmpty)
        #expect(try await find("final").map(\.id) == [created.id])
        #expect(try await find("rewritten").map(\.snippet) == ["⟦rewritten⟧ body"])

        _ = try await modules.update(.init(id: created.id, tags: ["x"]), userID: alice.id)
        #expect(try await find("rewritten").map(\.id) == [created.id])
        #expect(try await indexed("modules_fts", "rewritten") == [seq])
        #expect(try await indexed("modules_fts", "original").isEmpty)
        #expect(try await indexed("modules_fts", "old").isEmpty)

        let room = try await chat("Room")
        let edited = try await message("draft answer", in: room)
        try await sql("UPDATE messages SET content = 'polished answer' WHERE id = ?", [edited])
        #expect(try await find("draft").isEmpty)
        #expect(try await find("polished").map(\.id) == [edited])
        #expect(try await indexed("messages_fts", "draft").isEmpty)
    }

    @Test("deleting a module, a chat (its messages go by cascade) or a user removes their rows from the index")
    func deletes() async throws {
        try await filler()
        let doomed = try await module("Doomed", content: "ephemeral words")
        _ = try await modules.delete(id: doomed.id, userID: alice.id)
        #expect(try await find("ephemeral").isEmpty)
        #expect(try await indexed("modules_fts", "ephemeral").isEmpty)

        // A message tree: root, a reply, a reply to that, and a sibling branch.
        let thread = try await chat("Thread")
        let root = try await message("transient root", in: thread)
        let reply = try await message("transient reply", in: thread, role: "assistant", parent: root)
        _ = try await message("transient deeper", in: thread, parent: reply)
        _ = try await message("transient sibling", in: thread, role: "assistant", parent: root)
        let survivor = try await chat("Survivor")
        let kept = try await message("transient but kept", in: survivor)
        #expect(try await find("transient", limit: 100).count == 5)
        try await sql("DELETE FROM chats WHERE id = ?", [thread])
        #expect(try await find("transient", limit: 100).map(\.id) == [kept])
        #expect(try await indexed("messages_fts", "transient").count == 1)

        // Deleting a module keeps its chats (module_id becomes null): their messages stay found.
        let topic = try await module("Topic", content: "subject")
        let about = try await chat("About it", module: topic)
        let onTopic = try await message("lasting remark", in: about)
        #expect(try await find("lasting").first?.moduleId == topic.id)
        _ = try await modules.delete(id: topic.id, userID: alice.id)
        let after = try await find("lasting")
        #expect(after.map(\.id) == [onTopic])
        #expect(after.first?.moduleId == nil)

        // A user's deletion cascades to their modules, chats and messages.
        _ = try await module("Bob's", content: "vanishing module", for: bob)
        let bobsChat = try await chat("Bob's chat", for: bob)
        _ = try await message("vanishing message", in: bobsChat, for: bob)
        #expect(try await find("vanishing", as: bob).count == 2)
        try await sql("DELETE FROM users WHERE id = ?", [bob.id])
        #expect(try await indexed("modules_fts", "vanishing").isEmpty)
        #expect(try await indexed("messages_fts", "vanishing").isEmpty)
    }

    // MARK: Hostile input and validation

    @Test("query syntax in the input is plain text: nothing errors, and each finds what its words say")
    func hostileQueries() async throws {
        try await filler()
        let target = try await module(
            "C++ \"quoted\" title:x NEAR(a b)", content: "café 🚀 launch and or not; {title}: col ^start end* (paren")
        let room = try await chat("Room")
        let said = try await message("we said \"launch\" AND meant it", in: room)
        let expectations: [(String, Set<String>)] = [
            ("\"", []), ("\"\"", []), ("*", []), ("'", []), ("(", []), (")", []), ("-", []), (":", []), ("^", []), ("🚀", []),
            ("NEAR(", [target.id]), ("NEAR(a b)", [target.id]), ("near/3", []), ("title:x", [target.id]), ("title: x", [target.id]),
            ("{title}: col", [target.id]), ("AND OR NOT", [target.id]), ("and or not", [target.id]), ("NOT launch", [target.id]),
            ("launch AND", [target.id, said]), ("OR", [target.id]), ("(paren", [target.id]), ("paren)", [target.id]),
            ("((((((", []), ("\"quoted", [target.id]), ("\"quoted\"", [target.id]), ("quoted\"", [target.id]),
            ("\"launch\"", [target.id, said]), ("launch*", [target.id, said]), ("*launch", [target.id, said]),
            ("^start", [target.id]), ("end*", [target.id]), ("-launch", [target.id, said]), ("+launch", [target.id, said]),
            ("🚀 launch", [target.id, said]), ("🚀launch", [target.id, said]), ("CAFÉ 🚀", [target.id]), ("c++", [target.id]),
            ("launch\u{0}\"", [target.id, said]), ("launch\u{0}garbage", []), ("\u{1}launch\u{7f}", [target.id, said]),
            ("rowid", []), ("modules_fts", []), ("'; DROP TABLE modules; --", []), ("\\", []), ("%_", []),
        ]
        for (query, expected) in expectations {
            do {
                let hits = try await find(query, limit: 100)
                #expect(Set(hits.map(\.id)) == expected, "\(query.debugDescription)")
            } catch {
                Issue.record("\(query.debugDescription): \(error)")
            }
        }
        let long = String(repeating: "launch          ", count: 62) + "  launch"  // 1,000 characters, 63 words
        #expect(long.count == SearchService.maxQueryLength)
        #expect(Set(try await find(long).map(\.id)) == [target.id, said])
        let manyWords = String((0..<64).map { _ in "a " }.joined().dropLast())  // the most words a query may have
        #expect(try await find(manyWords).map(\.id) == [target.id])
        #expect(try await modules.get(id: target.id, userID: alice.id).content.hasPrefix("café"))
    }

    @Test("blank or over-long queries, a limit outside 1-100 and no kinds are -32602 naming the field")
    func validation() async throws {
        for blank in ["", " ", "\n\t ", "\u{0}", "\u{3000}"] {
            await expectInvalid("query") { try await find(blank) }
        }
        await expectInvalid("query") { try await find(String(repeating: "x", count: 1_001)) }
        await expectInvalid("query") { try await find(String(repeating: "é", count: 1_001)) }
        _ = try await find(String(repeating: "é", count: 1_000))
        // 65 words (500 one-letter words once made one query scan the index 500 times), also when
        // punctuation joins them.
        for tooMany in [String((0..<500).map { _ in "a " }.joined().dropLast()), String(repeating: "a-", count: 64) + "a"] {
            do {
                _ = try await find(tooMany)
                Issue.record("accepted \(tooMany.count) characters of words")
            } catch let error as SearchError {
                guard case .overLimit("query", _, 64, let actual) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(actual == (tooMany.hasPrefix("a-") ? 65 : 500))
                #expect(error.rpcError.code == .invalidParams)
            }
        }
        _ = try await find(String(repeating: "a-", count: 63) + "a")
        // A combining accent continues its word; an emoji separates two.
        _ = try await find(String(repeating: "cafe\u{301} ", count: 64))
        _ = try await find(String(repeating: "🚀launch🚀", count: 64))
        await #expect(throws: SearchError.self) { try await find(String(repeating: "🚀a", count: 65)) }
        await expectInvalid("limit") { try await find("x", limit: 0) }
        await expectInvalid("limit") { try await find("x", limit: 101) }
        _ = try await find("x", limit: 100)
        await expectInvalid("kinds") { try await find("x", kinds: []) }
        #expect(SearchError.invalid(field: "query", reason: "r").rpcError == RPCError.invalidParams(field: "query", reason: "r"))
    }
}

extension SearchServiceTests {
    @Test("messages appended through the chats service are searchable once committed, also when many share a batch")
    func appendedMessagesAreIndexed() async throws {
        let chat = try await dependencies.chats.create(.init(title: "Batch"), userID: alice.id)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...50 {
                group.addTask {
                    _ = try await dependencies.chats.append(.init(chatId: chat.id, role: .user, content: "batched word\(n) zebra"), userID: alice.id)
                }
            }
            try await group.waitForAll()
        }
        let hits = try await dependencies.search.query(.init(query: "zebra", limit: 100), userID: alice.id)
        #expect(hits.items.count == 50)
        // Deleting the chat takes its messages out of the index.
        _ = try await dependencies.chats.delete(id: chat.id, userID: alice.id)
        #expect(try await dependencies.search.query(.init(query: "zebra", limit: 100), userID: alice.id).items.isEmpty)
    }
}
