import Foundation
import GRDB
import Logging
import Services
import Storage
import Testing

@Suite("SQLite prompt store")
struct SQLitePromptStoreTests {
    static func database() async throws -> AgentDatabase {
        let database = try AgentDatabase.inMemory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        try await database.writer.write { db in
            for id in ["usr_1", "usr_2"] {
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, ?)", arguments: [id, id, "2026-01-01T00:00:00.000Z"])
            }
        }
        return database
    }

    static let date = Date(timeIntervalSince1970: 1_800_000_000.25)  // whole milliseconds: the schema keeps milliseconds

    static func prompt(_ id: String, _ name: String, body: String = "Hi {{user}}", variables: [String] = ["user"]) -> Prompt {
        Prompt(
            id: id, name: name, description: "", version: 1, latestVersion: 1, body: body, variables: variables, builtIn: false,
            createdAt: date, updatedAt: date, versionCreatedAt: date)
    }

    @Test("the migration seeds the built-in default system prompt, found for every user by id and by name")
    func seeded() async throws {
        let store = SQLitePromptStore(writer: try await Self.database().writer)
        for user in ["usr_1", "usr_2"] {
            let prompt = try #require(try await store.prompt(id: "prm_default_system", version: nil, userID: user))
            #expect(prompt.builtIn && prompt.name == "default.system" && prompt.version == 1 && prompt.latestVersion == 1)
            #expect(prompt.variables == ["user", "module.title", "date", "module.content"])
            // The seeded body is a valid template declaring exactly its placeholders.
            #expect(try PromptTemplate(parsing: prompt.body).variables == prompt.variables)
            #expect(try await store.prompt(named: "DEFAULT.SYSTEM", userID: user) == prompt)
            #expect(try await store.versions(id: "prm_default_system", userID: user)?.count == 1)
        }
        // The writes never reach it.
        #expect(try await store.delete(id: "prm_default_system", userID: "usr_1") == false)
        #expect(try await store.update(id: "prm_default_system", userID: "usr_1") { _ in PromptChanges(name: "x", updatedAt: Self.date) } == nil)
    }

    @Test("versions: an update with content adds the next one, an edit that throws changes nothing, delete removes them all")
    func versionsAndCascade() async throws {
        let database = try await Self.database()
        let store = SQLitePromptStore(writer: database.writer)
        _ = try await store.insert(Self.prompt("prm_1", "p"), userID: "usr_1")
        let later = Self.date + 60
        let updated = try #require(
            try await store.update(id: "prm_1", userID: "usr_1") { current in
                #expect(current.version == 1)
                return PromptChanges(description: "d", content: PromptContent(body: "Yo {{name}}", variables: ["name"]), updatedAt: later)
            })
        #expect(updated.version == 2 && updated.latestVersion == 2 && updated.body == "Yo {{name}}" && updated.description == "d")
        #expect(updated.versionCreatedAt == later && updated.createdAt == Self.date)
        #expect(try await store.prompt(id: "prm_1", version: 1, userID: "usr_1")?.body == "Hi {{user}}")
        #expect(try await store.prompt(id: "prm_1", version: 3, userID: "usr_1") == nil)

        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await store.update(id: "prm_1", userID: "usr_1") { _ in throw Refused() }
        }
        #expect(try await store.prompt(id: "prm_1", version: nil, userID: "usr_1") == updated)

        #expect(try await store.prompt(id: "prm_1", version: nil, userID: "usr_2") == nil)
        #expect(try await store.versions(id: "prm_1", userID: "usr_2") == nil)
        #expect(try await store.delete(id: "prm_1", userID: "usr_2") == false)
        #expect(try await store.delete(id: "prm_1", userID: "usr_1"))
        let left = try await database.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM prompt_versions WHERE prompt_id = 'prm_1'")
        }
        #expect(left == 0)
    }

    @Test("names are unique per user without case, on insert and on rename; a user's name may match a built-in's")
    func names() async throws {
        let store = SQLitePromptStore(writer: try await Self.database().writer)
        _ = try await store.insert(Self.prompt("prm_1", "Notes"), userID: "usr_1")
        _ = try await store.insert(Self.prompt("prm_2", "other"), userID: "usr_1")
        await #expect(throws: PromptStoreError.nameTaken) { try await store.insert(Self.prompt("prm_3", "NOTES"), userID: "usr_1") }
        await #expect(throws: PromptStoreError.nameTaken) {
            try await store.update(id: "prm_2", userID: "usr_1") { _ in PromptChanges(name: "notes", updatedAt: Self.date) }
        }
        _ = try await store.insert(Self.prompt("prm_4", "notes"), userID: "usr_2")
        _ = try await store.insert(Self.prompt("prm_5", "default.system"), userID: "usr_1")
        #expect(try await store.prompt(named: "default.system", userID: "usr_1")?.id == "prm_5")
        #expect(try await store.prompt(named: "default.system", userID: "usr_2")?.id == "prm_default_system")
    }
}
