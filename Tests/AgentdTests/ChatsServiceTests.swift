import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// ChatsService through the container (`Dependencies.testing`): in-memory SQLite, a test clock,
/// sequential ids, a recording event publisher. No socket.
@Suite("Chats service")
struct ChatsServiceTests {
    let clock = TestClock()
    let dependencies: Dependencies
    let chats: ChatsService
    let alice: User
    let bob: User

    init() async throws {
        let configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        chats = dependencies.chats
        alice = try await dependencies.auth.register(username: "alice", password: "password1")
        bob = try await dependencies.auth.register(username: "bob", password: "password1")
    }

    func append(_ chat: Chat, _ role: MessageRole, _ content: String, parentId: String? = nil, siblingOf: String? = nil, user: User? = nil)
        async throws -> Message
    {
        try await chats.append(
            .init(chatId: chat.id, role: role, content: content, parentId: parentId, siblingOf: siblingOf), userID: (user ?? alice).id)
    }

    func branch(_ chat: Chat, user: User? = nil) async throws -> [String] {
        try await chats.messages(.init(chatId: chat.id, limit: 500), userID: (user ?? alice).id).items.map(\.content)
    }

    func expectError(_ expected: ChatsError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any) async {
        do {
            _ = try await body()
            Issue.record("accepted; expected \(expected)", sourceLocation: sourceLocation)
        } catch let error as ChatsError {
            switch (error, expected) {
            case (.invalid(let field, _), .invalid(let expectedField, _)): #expect(field == expectedField, sourceLocation: sourceLocation)
            default: #expect(error == expected, sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("create (default title, in a module), get, rename, delete; events for each")
    func lifecycle() async throws {
        let module = try await dependencies.modules.create(.init(title: "Notes"), userID: alice.id)
        let chat = try await chats.create(.init(moduleId: module.id), userID: alice.id)
        #expect(chat.id.hasPrefix("cht_"))
        #expect(chat.title == ChatsService.defaultTitle)
        #expect(chat.moduleId == module.id)
        #expect(chat.messageCount == 0 && chat.lastMessage == nil && chat.activeMessageId == nil)
        #expect(try await chats.get(id: chat.id, userID: alice.id) == chat)

        clock.advance(by: 5)
        let renamed = try await chats.rename(.init(id: chat.id, title: "  Plans  "), userID: alice.id)
        #expect(renamed.title == "Plans")
        #expect(renamed.updatedAt == clock.now())
        #expect(renamed.createdAt == chat.createdAt)

        #expect(try await chats.delete(id: chat.id, userID: alice.id))
        await expectError(.notFound(kind: "chat", id: chat.id)) { try await chats.get(id: chat.id, userID: alice.id) }
        #expect(
            try await dependencies.recorded(ChatsEvents.ChatCreated.self) == [
                try RecordedEvent(ChatsEvents.ChatCreated(userID: alice.id, chatId: chat.id, moduleId: module.id, title: chat.title))
            ])
        #expect(
            try await dependencies.recorded(ChatsEvents.ChatRenamed.self) == [
                try RecordedEvent(ChatsEvents.ChatRenamed(userID: alice.id, chatId: chat.id, title: "Plans"))
            ])
        #expect(
            try await dependencies.recorded(ChatsEvents.ChatDeleted.self) == [
                try RecordedEvent(ChatsEvents.ChatDeleted(userID: alice.id, chatId: chat.id))
            ])
    }

    @Test("validation: title, limit, cursor, content size, parentId with siblingOf; another user's module")
    func validation() async throws {
        await expectError(.invalid(field: "title", reason: "")) { try await chats.create(.init(title: " "), userID: alice.id) }
        await expectError(.invalid(field: "title", reason: "")) {
            try await chats.create(.init(title: String(repeating: "t", count: 201)), userID: alice.id)
        }
        let theirModule = try await dependencies.modules.create(.init(title: "Bob's"), userID: bob.id)
        await expectError(.notFound(kind: "module", id: theirModule.id)) { try await chats.create(.init(moduleId: theirModule.id), userID: alice.id) }
        await expectError(.invalid(field: "limit", reason: "")) { try await chats.list(.init(limit: 0), userID: alice.id) }
        await expectError(.invalid(field: "cursor", reason: "")) { try await chats.list(.init(cursor: "%%"), userID: alice.id) }
        let chat = try await chats.create(.init(), userID: alice.id)
        await expectError(.invalid(field: "limit", reason: "")) { try await chats.messages(.init(chatId: chat.id, limit: 501), userID: alice.id) }
        await expectError(.invalid(field: "content", reason: "")) {
            try await append(chat, .user, String(repeating: "x", count: ChatsService.maxContentBytes + 1))
        }
        let first = try await append(chat, .user, "hello")
        await expectError(.invalid(field: "siblingOf", reason: "")) { try await append(chat, .user, "x", parentId: first.id, siblingOf: first.id) }
        #expect(try await branch(chat) == ["hello"], "a refused append leaves nothing behind")
    }

    @Test("appends follow the active leaf; the chat counts them and previews the last one")
    func appends() async throws {
        let chat = try await chats.create(.init(title: "Talk"), userID: alice.id)
        let question = try await append(chat, .user, "What is WAL?")
        #expect(question.parentId == nil && question.depth == 1 && question.chatId == chat.id)
        clock.advance(by: 1)
        let answer = try await append(chat, .assistant, String(repeating: "Write-ahead logging. ", count: 40))
        #expect(answer.parentId == question.id && answer.depth == 2)

        let got = try await chats.get(id: chat.id, userID: alice.id)
        #expect(got.messageCount == 2)
        #expect(got.activeMessageId == answer.id)
        #expect(got.lastMessage?.id == answer.id && got.lastMessage?.role == .assistant)
        #expect(got.lastMessage?.text == String(answer.content.prefix(ChatsService.previewLength)))
        #expect(got.updatedAt == answer.createdAt)
        #expect(try await chats.message(id: answer.id, userID: alice.id) == answer)
        #expect(
            try await dependencies.recorded(ChatsEvents.MessageCreated.self)
                == [question, answer].map { try RecordedEvent(ChatsEvents.MessageCreated(userID: alice.id, message: $0)) })
    }

    @Test("editing and regenerating make sibling branches; branches.select switches, following the newest child")
    func branches() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        let q1 = try await append(chat, .user, "q1")
        let a1 = try await append(chat, .assistant, "a1")
        _ = try await append(chat, .user, "q2")
        _ = try await append(chat, .assistant, "a2")
        #expect(try await branch(chat) == ["q1", "a1", "q2", "a2"])

        // Regenerate a1: a sibling with the same parent, now active; the old branch stays.
        let a1b = try await append(chat, .assistant, "a1 again", siblingOf: a1.id)
        #expect(a1b.parentId == q1.id && a1b.depth == 2)
        #expect(try await branch(chat) == ["q1", "a1 again"])
        #expect(try await chats.get(id: chat.id, userID: alice.id).messageCount == 2)

        // Edit the first message: a new root.
        let q1b = try await append(chat, .user, "q1 edited", siblingOf: q1.id)
        #expect(q1b.parentId == nil && q1b.depth == 1)
        #expect(try await branch(chat) == ["q1 edited"])

        // Back to the first branch: down from q1 through the newest child (a1 again).
        let selected = try await chats.selectBranch(messageID: q1.id, userID: alice.id)
        #expect(selected.activeMessageId == a1b.id)
        #expect(try await branch(chat) == ["q1", "a1 again"])
        // Selecting a1 goes down to a2.
        _ = try await chats.selectBranch(messageID: a1.id, userID: alice.id)
        #expect(try await branch(chat) == ["q1", "a1", "q2", "a2"])

        // An explicit parent continues from there.
        let after = try await append(chat, .user, "q2 alt", parentId: a1.id)
        #expect(after.depth == 3)
        #expect(try await branch(chat) == ["q1", "a1", "q2 alt"])
    }

    @Test("messages.list pages through the active branch in order with a cursor, also while appending")
    func messagePages() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        for n in 1...7 { _ = try await append(chat, n.isMultiple(of: 2) ? .assistant : .user, "m\(n)") }
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try await chats.messages(.init(chatId: chat.id, cursor: cursor, limit: 3), userID: alice.id)
            seen += page.items.map(\.content)
            cursor = page.nextCursor
            pages += 1
            if pages == 1 { _ = try await append(chat, .user, "m8") }
        } while cursor != nil
        #expect(seen == (1...8).map { "m\($0)" })
        #expect(pages == 3)
    }

    @Test("chats.list: newest first, by module, cursor stable while chats are added")
    func listing() async throws {
        let module = try await dependencies.modules.create(.init(title: "M"), userID: alice.id)
        var created: [Chat] = []
        for n in 1...5 {
            created.append(try await chats.create(.init(moduleId: n.isMultiple(of: 2) ? module.id : nil, title: "c\(n)"), userID: alice.id))
        }
        _ = try await chats.create(.init(title: "bob's"), userID: bob.id)
        let first = try await chats.list(.init(limit: 2), userID: alice.id)
        #expect(first.items.map(\.title) == ["c5", "c4"])
        _ = try await chats.create(.init(title: "c6"), userID: alice.id)
        let second = try await chats.list(.init(cursor: first.nextCursor, limit: 10), userID: alice.id)
        #expect(second.items.map(\.title) == ["c3", "c2", "c1"])
        #expect(second.nextCursor == nil)
        let inModule = try await chats.list(.init(moduleId: module.id), userID: alice.id)
        #expect(inModule.items.map(\.title) == ["c4", "c2"])

        // Deleting the module keeps its chats, without a module.
        _ = try await dependencies.modules.delete(id: module.id, userID: alice.id)
        #expect(try await chats.get(id: created[1].id, userID: alice.id).moduleId == nil)
    }

    @Test("fork copies the path to a message into a new chat; the original is unchanged")
    func fork() async throws {
        let module = try await dependencies.modules.create(.init(title: "M"), userID: alice.id)
        let chat = try await chats.create(.init(moduleId: module.id, title: "Origin"), userID: alice.id)
        _ = try await append(chat, .system, "be brief")
        let q = try await append(chat, .user, "q")
        _ = try await append(chat, .assistant, "a")
        let fork = try await chats.fork(.init(messageId: q.id), userID: alice.id)
        #expect(fork.id != chat.id)
        #expect(fork.title == "Origin (fork)")
        #expect(fork.moduleId == module.id)
        #expect(fork.messageCount == 2)
        #expect(try await branch(fork) == ["be brief", "q"])
        #expect(try await branch(chat) == ["be brief", "q", "a"])
        let copied = try await chats.messages(.init(chatId: fork.id), userID: alice.id).items
        #expect(copied.allSatisfy { $0.chatId == fork.id })
        #expect(copied[1].parentId == copied[0].id)
        #expect(!copied.map(\.id).contains(q.id))
        // The fork grows on its own.
        _ = try await append(fork, .assistant, "other answer")
        #expect(try await branch(chat) == ["be brief", "q", "a"])
        let named = try await chats.fork(.init(messageId: q.id, title: "Mine"), userID: alice.id)
        #expect(named.title == "Mine")
    }

    @Test("export: json holds the whole tree, markdown the active branch")
    func export() async throws {
        let chat = try await chats.create(.init(title: "Export me"), userID: alice.id)
        let q = try await append(chat, .user, "Question?")
        _ = try await append(chat, .assistant, "first answer")
        _ = try await append(chat, .assistant, "second answer", siblingOf: try await chats.get(id: chat.id, userID: alice.id).activeMessageId!)

        let json = try await chats.export(.init(chatId: chat.id, format: .json), userID: alice.id)
        #expect(json.mediaType == "application/json")
        let document = try JSON(parsing: json.content)
        #expect(document["format"]?.stringValue == "agentd.chat.v1")
        #expect(document["chat"]?["title"]?.stringValue == "Export me")
        #expect(document["messages"]?.arrayValue?.count == 3)
        #expect(document["messages"]?.arrayValue?.first?["id"]?.stringValue == q.id)

        let markdown = try await chats.export(.init(chatId: chat.id, format: .markdown), userID: alice.id)
        #expect(markdown.mediaType == "text/markdown")
        #expect(markdown.content.hasPrefix("# Export me\n"))
        #expect(markdown.content.contains("## User"))
        #expect(markdown.content.contains("Question?"))
        #expect(markdown.content.contains("second answer"))
        #expect(!markdown.content.contains("first answer"))
    }

    @Test("deleting a chat deletes its messages")
    func cascade() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        let message = try await append(chat, .user, "gone soon")
        _ = try await chats.delete(id: chat.id, userID: alice.id)
        await expectError(.notFound(kind: "message", id: message.id)) { try await chats.message(id: message.id, userID: alice.id) }
        let left = try await dependencies.database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") }
        #expect(left == 0)
    }

    @Test("another user's chat and messages answer exactly like missing ones, for every method")
    func isolation() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        let message = try await append(chat, .user, "private")
        let missingChat = ChatsError.notFound(kind: "chat", id: chat.id)
        let missingMessage = ChatsError.notFound(kind: "message", id: message.id)
        await expectError(missingChat) { try await chats.get(id: chat.id, userID: bob.id) }
        await expectError(missingChat) { try await chats.rename(.init(id: chat.id, title: "x"), userID: bob.id) }
        await expectError(missingChat) { try await chats.delete(id: chat.id, userID: bob.id) }
        await expectError(missingChat) { try await chats.export(.init(chatId: chat.id, format: .json), userID: bob.id) }
        await expectError(missingChat) { try await chats.messages(.init(chatId: chat.id), userID: bob.id) }
        await expectError(missingChat) { try await append(chat, .user, "intrusion", user: bob) }
        await expectError(missingMessage) { try await chats.message(id: message.id, userID: bob.id) }
        await expectError(missingMessage) { try await chats.fork(.init(messageId: message.id), userID: bob.id) }
        await expectError(missingMessage) { try await chats.selectBranch(messageID: message.id, userID: bob.id) }
        // Bob's own chat cannot adopt Alice's message as a parent or sibling.
        let bobs = try await chats.create(.init(), userID: bob.id)
        await expectError(missingMessage) { try await append(bobs, .user, "x", parentId: message.id, user: bob) }
        await expectError(missingMessage) { try await append(bobs, .user, "x", siblingOf: message.id, user: bob) }
        #expect(try await branch(chat) == ["private"])
        #expect(try await chats.get(id: chat.id, userID: alice.id).title == ChatsService.defaultTitle)
    }

    @Test("concurrent appends to one chat make one chain: every message's parent is the one before it")
    func concurrentAppends() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...64 { group.addTask { _ = try await append(chat, .user, "m\(n)") } }
            try await group.waitForAll()
        }
        let items = try await chats.messages(.init(chatId: chat.id, limit: 500), userID: alice.id).items
        #expect(items.count == 64)
        #expect(items.map(\.depth) == Array(1...64))
        #expect(Set(items.map(\.content)).count == 64)
        for (parent, child) in zip(items, items.dropFirst()) { #expect(child.parentId == parent.id) }
    }
}

extension ChatsServiceTests {
    @Test("a chat with a 3,000-message chain deletes (no cascade recursion along the parents)")
    func deepChatDeletes() async throws {
        let chat = try await chats.create(.init(), userID: alice.id)
        let depth = 3000
        // Appended concurrently: group commit makes this quick, and the chain is still one line.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...depth { group.addTask { _ = try await append(chat, .user, "m\(n)") } }
            try await group.waitForAll()
        }
        #expect(try await chats.get(id: chat.id, userID: alice.id).messageCount == depth)
        #expect(try await chats.delete(id: chat.id, userID: alice.id))
        let left = try await dependencies.database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM messages") }
        #expect(left == 0)
    }
}
