import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// The param checks the domains share (a title or name, a page's limit and cursor, a message's
/// placement), written once in Services (`InvalidParamsError`, `MessagePlacement`): each domain
/// still throws its own error, with the field and reason it always gave. Exact errors, so that a
/// change to the shared wording shows here. Through the container (`Dependencies.testing`), no
/// socket.
@Suite("Shared param checks", .timeLimit(.minutes(1)))
struct ParamChecksTests {
    let dependencies: Dependencies
    let alice: User

    init() async throws {
        let collaborators = Dependencies.Collaborators(clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""), collaborators: collaborators)
        alice = try await dependencies.auth.register(username: "alice", password: "password1")
    }

    static let long201 = String(repeating: "t", count: 201)

    @Test("titles and names: trimmed, not empty, at most the domain's length, in the domain's error")
    func titles() async throws {
        let chats = dependencies.chats
        let modules = dependencies.modules
        let prompts = dependencies.prompts
        let id = alice.id
        await #expect(throws: ChatsError.invalid(field: "title", reason: "must not be empty")) {
            try await chats.create(.init(title: " \n"), userID: id)
        }
        await #expect(throws: ChatsError.invalid(field: "title", reason: "at most 200 characters")) {
            try await chats.create(.init(title: Self.long201), userID: id)
        }
        let chat = try await chats.create(.init(title: "  Plans  "), userID: id)
        #expect(chat.title == "Plans")
        await #expect(throws: ChatsError.invalid(field: "title", reason: "must not be empty")) {
            try await chats.rename(.init(id: chat.id, title: ""), userID: id)
        }

        await #expect(throws: ModulesError.invalid(field: "title", reason: "must not be empty")) {
            try await modules.create(.init(title: "  "), userID: id)
        }
        await #expect(throws: ModulesError.invalid(field: "title", reason: "at most 200 characters")) {
            try await modules.create(.init(title: Self.long201), userID: id)
        }
        #expect(try await modules.create(.init(title: String(repeating: "t", count: 200)), userID: id).title.count == 200)

        await #expect(throws: PromptsError.invalid(field: "name", reason: "must not be empty")) {
            try await prompts.create(.init(name: " ", body: "b"), userID: id)
        }
        await #expect(throws: PromptsError.invalid(field: "name", reason: "at most 100 characters")) {
            try await prompts.create(.init(name: String(repeating: "n", count: 101), body: "b"), userID: id)
        }
        #expect(
            ChatsError.invalid(field: "title", reason: "must not be empty").rpcError
                == RPCError.invalidParams(field: "title", reason: "must not be empty"))
    }

    @Test("page limits and cursors: the same reasons in every list, naming the list the cursor is not from")
    func pages() async throws {
        let chats = dependencies.chats
        let id = alice.id
        let chat = try await chats.create(.init(), userID: id)
        let bad = "%%"
        await #expect(throws: ChatsError.invalid(field: "limit", reason: "between 1 and 200")) { try await chats.list(.init(limit: 0), userID: id) }
        await #expect(throws: ChatsError.invalid(field: "cursor", reason: "not a cursor from chats.list")) {
            try await chats.list(.init(cursor: bad), userID: id)
        }
        await #expect(throws: ChatsError.invalid(field: "limit", reason: "between 1 and 500")) {
            try await chats.messages(.init(chatId: chat.id, limit: 501), userID: id)
        }
        await #expect(throws: ChatsError.invalid(field: "cursor", reason: "not a cursor from chats.messages.list")) {
            try await chats.messages(.init(chatId: chat.id, cursor: bad), userID: id)
        }
        await #expect(throws: ModulesError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await dependencies.modules.list(.init(limit: 201), userID: id)
        }
        await #expect(throws: ModulesError.invalid(field: "cursor", reason: "not a cursor from modules.list")) {
            try await dependencies.modules.list(.init(cursor: bad), userID: id)
        }
        await #expect(throws: PromptsError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await dependencies.prompts.list(.init(limit: 0), userID: id)
        }
        await #expect(throws: PromptsError.invalid(field: "cursor", reason: "not a cursor from prompts.list")) {
            try await dependencies.prompts.list(.init(cursor: bad), userID: id)
        }
        await #expect(throws: EventsError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await dependencies.audit.list(.init(limit: 0), userID: id)
        }
        await #expect(throws: EventsError.invalid(field: "cursor", reason: "not a cursor from audit.list")) {
            try await dependencies.audit.list(.init(cursor: bad), userID: id)
        }
        await #expect(throws: AgentError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await dependencies.agent.runs(.init(limit: 201), userID: id)
        }
        await #expect(throws: AgentError.invalid(field: "cursor", reason: "not a cursor from agent.runs.list")) {
            try await dependencies.agent.runs(.init(cursor: bad), userID: id)
        }
        // A cursor a list gave is read back: the second page follows the first.
        for title in ["a", "b"] { _ = try await dependencies.modules.create(.init(title: title), userID: id) }
        let first = try await dependencies.modules.list(.init(limit: 1), userID: id)
        let cursor: String = try #require(first.nextCursor)
        let second = try await dependencies.modules.list(.init(cursor: cursor, limit: 1), userID: id)
        #expect(first.items.map(\.title) == ["b"] && second.items.map(\.title) == ["a"])
    }

    @Test("placement: parentId and siblingOf read once for chats.messages.append and agent.act; the agent edits only beside a user message")
    func placement() async throws {
        let chats = dependencies.chats
        let agent = dependencies.agent
        let id = alice.id
        let chat = try await chats.create(.init(), userID: id)
        let question = try await chats.append(.init(chatId: chat.id, role: .user, content: "q"), userID: id)
        let answer = try await chats.append(.init(chatId: chat.id, role: .assistant, content: "a"), userID: id)
        let notBoth = "give parentId or siblingOf, not both"
        await #expect(throws: ChatsError.invalid(field: "siblingOf", reason: notBoth)) {
            try await chats.append(.init(chatId: chat.id, role: .user, content: "x", parentId: answer.id, siblingOf: question.id), userID: id)
        }
        await #expect(throws: AgentError.invalid(field: "siblingOf", reason: notBoth)) {
            try await agent.act(.init(message: "x", parentId: answer.id, siblingOf: question.id), user: alice, onDelta: { _ in })
        }
        await #expect(
            throws: AgentError.invalid(field: "siblingOf", reason: "an edit is a sibling of a user message; \(answer.id) is an assistant message")
        ) {
            try await agent.act(.init(message: "x", siblingOf: answer.id), user: alice, onDelta: { _ in })
        }
        await #expect(throws: ChatsError.notFound(kind: "message", id: "msg_none")) {
            try await agent.act(.init(message: "x", parentId: "msg_none"), user: alice, onDelta: { _ in })
        }
        // The placements themselves: after the parent, beside the sibling, else after the active leaf.
        let edit = try await chats.append(.init(chatId: chat.id, role: .user, content: "q2", siblingOf: question.id), userID: id)
        #expect(edit.parentId == question.parentId && edit.depth == question.depth)
        let reply = try await chats.append(.init(chatId: chat.id, role: .assistant, content: "a2", parentId: edit.id), userID: id)
        #expect(reply.parentId == edit.id)
        let next = try await chats.append(.init(chatId: chat.id, role: .user, content: "q3"), userID: id)
        #expect(next.parentId == reply.id)
    }
}
