import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// ModulesService through the container (`Dependencies.testing`): in-memory SQLite, a test clock,
/// sequential ids, a recording event publisher. No socket.
@Suite("Modules service")
struct ModulesServiceTests {
    let clock = TestClock()
    let dependencies: Dependencies
    let modules: ModulesService
    let alice: User
    let bob: User

    init() async throws {
        let configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        modules = dependencies.modules
        alice = try await dependencies.auth.register(username: "alice", password: "password1")
        bob = try await dependencies.auth.register(username: "bob", password: "password1")
    }

    func create(_ title: String, description: String? = nil, tags: [String]? = nil, for user: User? = nil) async throws -> Module {
        try await modules.create(.init(title: title, description: description, tags: tags), userID: (user ?? alice).id)
    }

    func expectInvalid(_ field: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any) async {
        do {
            _ = try await body()
            Issue.record("accepted; expected an invalid \(field)", sourceLocation: sourceLocation)
        } catch let error as ModulesError {
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

    @Test("create, get, update (partial), delete; events for each")
    func crud() async throws {
        let created = try await modules.create(
            .init(title: "  Intro  ", description: "first", content: "# Hello", tags: ["b", "a", "b"]), userID: alice.id)
        #expect(created.id.hasPrefix("mod_"))
        #expect(created.title == "Intro")
        #expect(created.tags == ["a", "b"])
        #expect(created.createdAt == clock.now())
        #expect(try await modules.get(id: created.id, userID: alice.id) == created)

        clock.advance(by: 60)
        let updated = try await modules.update(.init(id: created.id, content: "# Changed"), userID: alice.id)
        #expect(updated.title == "Intro")
        #expect(updated.description == "first")
        #expect(updated.content == "# Changed")
        #expect(updated.tags == ["a", "b"])
        #expect(updated.createdAt == created.createdAt)
        #expect(updated.updatedAt == clock.now())
        #expect(try await modules.get(id: created.id, userID: alice.id) == updated)

        let retagged = try await modules.update(.init(id: created.id, title: "New", tags: []), userID: alice.id)
        #expect(retagged.title == "New")
        #expect(retagged.tags == [])
        #expect(try await modules.get(id: created.id, userID: alice.id) == retagged)

        #expect(try await modules.delete(id: created.id, userID: alice.id))
        await #expect(throws: ModulesError.notFound(id: created.id)) { try await modules.get(id: created.id, userID: alice.id) }
        await #expect(throws: ModulesError.notFound(id: created.id)) { try await modules.delete(id: created.id, userID: alice.id) }

        #expect(
            try await dependencies.recorded(ModulesEvents.ModuleCreated.self) == [
                try RecordedEvent(ModulesEvents.ModuleCreated(userID: alice.id, module: created))
            ])
        #expect(
            try await dependencies.recorded(ModulesEvents.ModuleUpdated.self) == [
                try RecordedEvent(ModulesEvents.ModuleUpdated(userID: alice.id, moduleId: created.id, fields: ["content"])),
                try RecordedEvent(ModulesEvents.ModuleUpdated(userID: alice.id, moduleId: created.id, fields: ["tags", "title"])),
            ])
        #expect(
            try await dependencies.recorded(ModulesEvents.ModuleDeleted.self) == [
                try RecordedEvent(ModulesEvents.ModuleDeleted(userID: alice.id, moduleId: created.id))
            ])
    }

    @Test("concurrent partial updates of different fields both hold")
    func concurrentPartialUpdates() async throws {
        let module = try await create("Original")
        let service = modules
        let userID = alice.id
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<10 {
                group.addTask { _ = try await service.update(.init(id: module.id, title: "Title \(index)"), userID: userID) }
                group.addTask { _ = try await service.update(.init(id: module.id, content: "Content \(index)"), userID: userID) }
                group.addTask { _ = try await service.update(.init(id: module.id, tags: ["t\(index)"]), userID: userID) }
            }
            try await group.waitForAll()
        }
        let final = try await modules.get(id: module.id, userID: alice.id)
        #expect(final.title.hasPrefix("Title "))
        #expect(final.content.hasPrefix("Content "))
        #expect(final.tags.count == 1)
    }

    @Test("validation errors name their field")
    func validation() async throws {
        await expectInvalid("title") { try await create("   ") }
        await expectInvalid("title") { try await create(String(repeating: "x", count: 201)) }
        _ = try await create(String(repeating: "é", count: 200))
        await expectInvalid("content") {
            try await modules.create(.init(title: "t", content: String(repeating: "a", count: (1 << 20) + 1)), userID: alice.id)
        }
        _ = try await modules.create(.init(title: "t", content: String(repeating: "a", count: 1 << 20)), userID: alice.id)
        await expectInvalid("tags") { try await create("t", tags: (0..<33).map { "t\($0)" }) }
        await expectInvalid("tags[1]") { try await create("t", tags: ["ok", ""]) }
        await expectInvalid("tags[0]") { try await create("t", tags: [String(repeating: "x", count: 65)]) }
        await expectInvalid("tags[1]") { try await create("t", tags: ["ok", "a\u{1F}b"]) }
        await expectInvalid("tags[0]") { try await create("t", tags: ["line\nbreak"]) }
        let module = try await create("t")
        await expectInvalid("title") { try await modules.update(.init(id: module.id, title: ""), userID: alice.id) }
        await expectInvalid("limit") { try await modules.list(.init(limit: 0), userID: alice.id) }
        await expectInvalid("limit") { try await modules.list(.init(limit: 201), userID: alice.id) }
        await expectInvalid("cursor") { try await modules.list(.init(cursor: "not a cursor!"), userID: alice.id) }
        await expectInvalid("cursor") { try await modules.list(.init(cursor: Data("abc".utf8).base64EncodedString()), userID: alice.id) }
    }

    @Test("pagination: 3 pages, newest first, correct while a module is inserted between pages")
    func pagination() async throws {
        var created: [Module] = []
        for index in 0..<7 { created.append(try await create("m\(index)")) }
        let newestFirst = created.reversed().map(\.id)

        let first = try await modules.list(.init(limit: 3), userID: alice.id)
        #expect(first.items.map(\.id) == Array(newestFirst[0..<3]))
        let cursor1 = try #require(first.nextCursor)

        let inserted = try await create("inserted between pages")
        let second = try await modules.list(.init(cursor: cursor1, limit: 3), userID: alice.id)
        #expect(second.items.map(\.id) == Array(newestFirst[3..<6]))
        let cursor2 = try #require(second.nextCursor)

        let third = try await modules.list(.init(cursor: cursor2, limit: 3), userID: alice.id)
        #expect(third.items.map(\.id) == Array(newestFirst[6..<7]))
        #expect(third.nextCursor == nil)

        let all = try await modules.list(.init(), userID: alice.id)
        #expect(all.items.map(\.id) == [inserted.id] + newestFirst)
        #expect(all.nextCursor == nil)
    }

    @Test("tag filters exactly; query matches title or description without case, wildcards literal")
    func filters() async throws {
        let swift = try await create("Swift notes", tags: ["lang", "swift"])
        let rust = try await create("Rust notes", description: "About SWIFTly moving code", tags: ["lang"])
        let percent = try await create("100% done", tags: ["Lang"])
        _ = try await create("Other", description: "a_b")

        #expect(try await modules.list(.init(tag: "lang"), userID: alice.id).items.map(\.id) == [rust.id, swift.id])
        #expect(try await modules.list(.init(tag: "Lang"), userID: alice.id).items.map(\.id) == [percent.id])
        #expect(try await modules.list(.init(tag: "lan"), userID: alice.id).items.isEmpty)
        #expect(try await modules.list(.init(query: "swift"), userID: alice.id).items.map(\.id) == [rust.id, swift.id])
        #expect(try await modules.list(.init(tag: "swift", query: "SWIFT"), userID: alice.id).items.map(\.id) == [swift.id])
        #expect(try await modules.list(.init(query: "%"), userID: alice.id).items.map(\.id) == [percent.id])
        #expect(try await modules.list(.init(query: "_"), userID: alice.id).items.count == 1)
    }

    @Test("another user's module answers -32030 like a missing one, and never appears in their list")
    func isolation() async throws {
        let module = try await create("Alice's", tags: ["shared"])
        let notFound = ModulesError.notFound(id: module.id)
        #expect(notFound.rpcError.code.rawValue == -32030)
        await #expect(throws: notFound) { try await modules.get(id: module.id, userID: bob.id) }
        await #expect(throws: notFound) { try await modules.update(.init(id: module.id, title: "mine"), userID: bob.id) }
        await #expect(throws: notFound) { try await modules.delete(id: module.id, userID: bob.id) }
        await #expect(throws: ModulesError.notFound(id: "mod_missing")) { try await modules.get(id: "mod_missing", userID: bob.id) }
        #expect(try await modules.list(.init(), userID: bob.id).items.isEmpty)
        #expect(try await modules.list(.init(tag: "shared"), userID: bob.id).items.isEmpty)
        // Untouched for its owner.
        #expect(try await modules.get(id: module.id, userID: alice.id) == module)
    }
}
