import Foundation
import Logging
import Services
import Storage
import Testing

@Suite("SQLite auth store")
struct SQLiteAuthStoreTests {
    static func store() async throws -> SQLiteAuthStore {
        let database = try AgentDatabase.inMemory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        return SQLiteAuthStore(writer: database.writer)
    }

    static let date = Date(timeIntervalSince1970: 1_800_000_000.25)  // whole milliseconds: the schema keeps milliseconds

    static func user(_ id: String, _ username: String, uid: UInt32? = nil) -> StoredUser {
        StoredUser(
            user: User(id: id, username: username, linkedUID: uid, hasPassword: uid == nil, createdAt: date), passwordHash: uid == nil ? "h" : nil)
    }

    @Test("users round-trip by id, username (any case) and linked uid; conflicts name what is taken")
    func users() async throws {
        let store = try await Self.store()
        let alice = Self.user("usr_1", "Alice")
        let linked = Self.user("usr_2", "uid-1000", uid: 1000)
        try await store.insertUser(alice)
        try await store.insertUser(linked)
        #expect(try await store.user(id: "usr_1") == alice)
        #expect(try await store.user(username: "aLiCe") == alice)
        #expect(try await store.user(linkedUID: 1000) == linked)
        #expect(try await store.user(linkedUID: 1001) == nil)
        await #expect(throws: AuthStoreError.usernameTaken) { try await store.insertUser(Self.user("usr_3", "ALICE")) }
        await #expect(throws: AuthStoreError.linkedUIDTaken) { try await store.insertUser(Self.user("usr_4", "other", uid: 1000)) }
    }

    @Test("sessions: insert, find, delete; a password change revokes all but the kept one")
    func sessions() async throws {
        let store = try await Self.store()
        try await store.insertUser(Self.user("usr_1", "alice"))
        let sessions = (0..<3).map { StoredSession(tokenHash: Data([UInt8($0)]), userID: "usr_1", createdAt: Self.date, expiresAt: Self.date + 60) }
        for session in sessions { try await store.insertSession(session) }
        #expect(try await store.session(tokenHash: Data([1])) == sessions[1])
        try await store.deleteSession(tokenHash: Data([2]))
        #expect(try await store.session(tokenHash: Data([2])) == nil)
        #expect(try await store.setPasswordHash("new", userID: "usr_1", revokingSessionsExcept: Data([0])) == 1)
        #expect(try await store.session(tokenHash: Data([0])) != nil)
        #expect(try await store.user(id: "usr_1")?.passwordHash == "new")
    }

    @Test("the account linked to a uid is cached, and a password change is seen at once: the copy is dropped")
    func linkedAccountCache() async throws {
        let store = try await Self.store()
        #expect(try await store.user(linkedUID: 1000) == nil, "a miss is not cached")
        let linked = Self.user("usr_2", "uid-1000", uid: 1000)
        try await store.insertUser(linked)
        #expect(try await store.user(linkedUID: 1000) == linked)
        #expect(try await store.user(linkedUID: 1000) == linked, "served again (from memory)")
        _ = try await store.setPasswordHash("set", userID: "usr_2", revokingSessionsExcept: nil)
        let changed = try #require(try await store.user(linkedUID: 1000))
        #expect(changed.passwordHash == "set" && changed.user.hasPassword, "\(changed)")
    }

    @Test("failed logins: counted per username without case, pruned by age, cleared")
    func failedLogins() async throws {
        let store = try await Self.store()
        for offset in [0.0, 10, 20] {
            try await store.recordFailedLogin(username: "bob", at: Self.date + offset, pruneBefore: Self.date - 900)
        }
        try await store.recordFailedLogin(username: "carol", at: Self.date, pruneBefore: Self.date - 900)
        #expect(try await store.failedLogins(username: "BOB", since: Self.date - 1) == [Self.date, Self.date + 10, Self.date + 20])
        #expect(try await store.failedLogins(username: "bob", since: Self.date + 5).count == 2)
        try await store.recordFailedLogin(username: "dave", at: Self.date + 1000, pruneBefore: Self.date + 15)
        #expect(try await store.failedLogins(username: "bob", since: .distantPast) == [Self.date + 20])
        #expect(try await store.failedLogins(username: "carol", since: .distantPast).isEmpty)
        try await store.clearFailedLogins(username: "Bob")
        #expect(try await store.failedLogins(username: "bob", since: .distantPast).isEmpty)
    }

    @Test("login attempts are counted before they are checked: of 10 parallel attempts with a limit of 3, 3 are counted, 7 refused")
    func countLoginAttempt() async throws {
        let store = try await Self.store()
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    do {
                        let refused = try await store.countLoginAttempt(username: "bob", at: Self.date, since: Self.date - 900, limit: 3)
                        return refused.map { "refused \($0.count)" } ?? "counted"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(outcomes == ["counted": 3, "refused 3": 7])
        // Past the window they are forgotten: counted again.
        #expect(try await store.countLoginAttempt(username: "BOB".lowercased(), at: Self.date + 901, since: Self.date + 1, limit: 3) == nil)
        #expect(try await store.failedLogins(username: "bob", since: .distantPast) == [Self.date + 901])
    }
}
