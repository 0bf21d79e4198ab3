import AgentdTesting
import Foundation
import Services
import Storage
import Synchronization
import Testing

@testable import Daemon
@testable import Services

/// A chat store that counts the messages its reads return (issue 17, item 3: the agent must not
/// read a whole long branch to send the part of it that fits the context window).
final class CountingChatStore: ChatStore {
    let base: any ChatStore
    private let read = Mutex(0)
    var messagesRead: Int { read.withLock { $0 } }

    init(_ base: any ChatStore) { self.base = base }

    private func counted(_ messages: [Message]?) -> [Message]? {
        read.withLock { $0 += messages?.count ?? 0 }
        return messages
    }

    func insert(_ chat: NewChat, userID: String, event: ChatsEvents.ChatCreated) async throws -> Chat {
        try await base.insert(chat, userID: userID, event: event)
    }
    func chat(id: String, userID: String) async throws -> Chat? { try await base.chat(id: id, userID: userID) }
    func chats(_ query: ChatQuery) async throws -> [StoredChat] { try await base.chats(query) }
    func rename(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat? {
        try await base.rename(id: id, userID: userID, title: title, updatedAt: updatedAt, event: event)
    }
    func retitle(id: String, userID: String, title: String, updatedAt: Date, event: ChatsEvents.ChatRenamed) async throws -> Chat? {
        try await base.retitle(id: id, userID: userID, title: title, updatedAt: updatedAt, event: event)
    }
    func titleSetByUser(chatID: String, userID: String) async throws -> Bool? { try await base.titleSetByUser(chatID: chatID, userID: userID) }
    func delete(id: String, userID: String, event: ChatsEvents.ChatDeleted) async throws -> Bool {
        try await base.delete(id: id, userID: userID, event: event)
    }
    func message(id: String, userID: String) async throws -> Message? { counted(try await base.message(id: id, userID: userID).map { [$0] })?.first }
    func activeBranch(chatID: String, userID: String, afterDepth: Int, limit: Int) async throws -> [Message]? {
        counted(try await base.activeBranch(chatID: chatID, userID: userID, afterDepth: afterDepth, limit: limit))
    }
    func path(to messageID: String, userID: String) async throws -> [Message]? { counted(try await base.path(to: messageID, userID: userID)) }
    func allMessages(chatID: String, userID: String) async throws -> [Message]? {
        counted(try await base.allMessages(chatID: chatID, userID: userID))
    }
    func contentSize(chatID: String, userID: String, scope: ChatContentScope) async throws -> ChatContentSize? {
        try await base.contentSize(chatID: chatID, userID: userID, scope: scope)
    }
    func pathTail(to messageID: String, userID: String, maxContentBytes: Int) async throws -> [Message]? {
        counted(try await base.pathTail(to: messageID, userID: userID, maxContentBytes: maxContentBytes))
    }
    func append(_ message: NewMessage, userID: String, event: @escaping @Sendable (Message) -> ChatsEvents.MessageCreated) async throws -> Message {
        try await base.append(message, userID: userID, event: event)
    }
    func selectBranch(messageID: String, userID: String, updatedAt: Date) async throws -> Chat? {
        try await base.selectBranch(messageID: messageID, userID: userID, updatedAt: updatedAt)
    }
    func insertFork(_ chat: NewChat, messages: [Message], userID: String, events: [any DomainEvent]) async throws -> Chat {
        try await base.insertFork(chat, messages: messages, userID: userID, events: events)
    }
}

/// Ids that cannot collide with the graph's `SequentialIDs`.
struct RandomIDs: IDGenerator {
    func makeID(prefix: String) -> String { prefix + UUID().uuidString }
}

extension AgentServiceTests {
    @Test("agent.act on a 300-message branch reads only the newest messages that can fit the window, and counts the rest as dropped")
    func longBranchReadsOnlyItsTail() async throws {
        // 400 tokens, 50 kept for the answer: 350 tokens, 1,400 bytes of text at most.
        let provider = ScriptedLLMProvider(window: 400, scripts: [ScriptedLLMProvider.answer(["ok"]), ScriptedLLMProvider.answer(["again"])])
        let graph = try await graph(provider)
        let chat = try await graph.chats.create(.init(), userID: graph.alice.id)
        for index in 0..<300 {
            _ = try await graph.chats.append(
                .init(
                    chatId: chat.id, role: index.isMultiple(of: 2) ? .user : .assistant, content: "\(index % 10)" + String(repeating: "x", count: 499)
                ),
                userID: graph.alice.id)
        }
        let writes = GroupCommitWriter(writer: graph.dependencies.database.writer, outbox: EventOutbox(clock: clock, publish: { _ in }))
        let chats = CountingChatStore(
            SQLiteChatStore(writer: graph.dependencies.database.writer, groupWriter: writes, ledger: StorageLedger(quota: .unlimited)))
        let agent = AgentService(
            store: SQLiteAgentStore(writer: graph.dependencies.database.writer, groupWriter: writes, ledger: StorageLedger(quota: .unlimited)),
            chats: chats, prompts: graph.dependencies.prompts,
            modules: graph.dependencies.modules, provider: provider, webSearch: nil, clock: clock, ids: RandomIDs(),
            metrics: LLMMetrics(factory: PrometheusMetrics().factory), logger: Dependencies.quietLogger)

        let answer = try await agent.act(.init(chatId: chat.id, message: "newest"), user: graph.alice) { _ in }
        // What fits: the question and two 500-byte messages (as when the whole branch was read).
        #expect(answer.context.keptMessages == 3 && answer.context.droppedMessages == 298, "\(answer.context)")
        #expect(try #require(provider.requests.first).messages.map { $0.content?.first } == ["8", "9", "n"])
        // At most 1,400 bytes of text plus the question: 3 messages and the question.
        #expect(chats.messagesRead <= 4, "read \(chats.messagesRead) messages of a 301-message branch")

        // Regenerating the answer reads as little.
        let before = chats.messagesRead
        let again = try await agent.regenerate(.init(messageId: answer.message.id), user: graph.alice) { _ in }
        #expect(again.context.keptMessages == 3 && again.context.droppedMessages == 298, "\(again.context)")
        #expect(chats.messagesRead - before <= 6, "read \(chats.messagesRead - before) messages to regenerate")
    }
}

extension AgentServiceTests {
    @Test("SQLiteChatStore.pathTail and contentSize: bounded by bytes, the message itself always, another user's nothing")
    func storeReadsBoundedByBytes() async throws {
        let graph = try await graph(ScriptedLLMProvider(scripts: []))
        let store = SQLiteChatStore(
            writer: graph.dependencies.database.writer,
            groupWriter: GroupCommitWriter(writer: graph.dependencies.database.writer, outbox: EventOutbox(clock: clock, publish: { _ in })),
            ledger: StorageLedger(quota: .unlimited))
        let chat = try await graph.chats.create(.init(), userID: graph.alice.id)
        var ids: [String] = []
        for index in 0..<5 {
            // 100 bytes each, "é" two of them.
            let message = try await graph.chats.append(
                .init(chatId: chat.id, role: .user, content: "\(index)é" + String(repeating: "x", count: 97)), userID: graph.alice.id)
            ids.append(message.id)
        }
        let last = try #require(ids.last)
        #expect(try await store.pathTail(to: last, userID: graph.alice.id, maxContentBytes: 0)?.map(\.id) == [last])
        #expect(try await store.pathTail(to: last, userID: graph.alice.id, maxContentBytes: 299)?.map(\.id) == Array(ids.suffix(2)))
        #expect(try await store.pathTail(to: last, userID: graph.alice.id, maxContentBytes: 300)?.map(\.id) == Array(ids.suffix(3)))
        #expect(try await store.pathTail(to: ids[1], userID: graph.alice.id, maxContentBytes: 10_000)?.map(\.id) == Array(ids.prefix(2)))
        #expect(try await store.pathTail(to: last, userID: graph.bob.id, maxContentBytes: 10_000) == nil)

        // A side branch counts for the whole chat, not for the active branch.
        _ = try await graph.chats.append(
            .init(chatId: chat.id, role: .user, content: String(repeating: "s", count: 50), siblingOf: ids[4]), userID: graph.alice.id)
        #expect(try await store.contentSize(chatID: chat.id, userID: graph.alice.id, scope: .all) == ChatContentSize(messages: 6, bytes: 550))
        #expect(
            try await store.contentSize(chatID: chat.id, userID: graph.alice.id, scope: .activeBranch) == ChatContentSize(messages: 5, bytes: 450))
        #expect(try await store.contentSize(chatID: chat.id, userID: graph.bob.id, scope: .all) == nil)
        let empty = try await graph.chats.create(.init(), userID: graph.alice.id)
        #expect(try await store.contentSize(chatID: empty.id, userID: graph.alice.id, scope: .activeBranch) == ChatContentSize(messages: 0, bytes: 0))
    }
}
