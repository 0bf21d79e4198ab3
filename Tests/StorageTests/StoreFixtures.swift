import Foundation
import GRDB
import Services
import Storage

/// The stores as these tests use them: on a group writer with an outbox whose events go nowhere
/// (the events themselves are tested in EventOutboxTests and over the socket), and write calls that
/// make the event the service would.
extension GroupCommitWriter {
    static func testing(_ writer: any DatabaseWriter) -> GroupCommitWriter {
        GroupCommitWriter(writer: writer, outbox: EventOutbox(clock: SystemClock(), publish: { _ in }))
    }
}

extension SQLiteAuthStore {
    init(writer: any DatabaseWriter) {
        self.init(writer: writer, groupWriter: .testing(writer), quota: .unlimited)
    }

    func insertUser(_ user: StoredUser) async throws {
        try await insertUser(user, event: AuthEvents.UserRegistered(user: user.user))
    }

    func deleteSession(tokenHash: Data) async throws {
        try await deleteSession(tokenHash: tokenHash, event: AuthEvents.SessionsRevoked(userID: "usr_1", reason: "logout"))
    }

    func setPasswordHash(_ hash: String, userID: String, revokingSessionsExcept keeping: Data?) async throws -> Int {
        try await setPasswordHash(
            hash, userID: userID, revokingSessionsExcept: keeping, event: AuthEvents.SessionsRevoked(userID: userID, reason: "passwordChanged"))
    }
}

extension SQLitePromptStore {
    init(writer: any DatabaseWriter) {
        self.init(writer: writer, groupWriter: .testing(writer), ledger: StorageLedger(quota: .unlimited))
    }

    func insert(_ prompt: Prompt, userID: String) async throws -> Int64 {
        try await insert(prompt, userID: userID, event: PromptsEvents.PromptCreated(userID: userID, prompt: prompt))
    }

    func update(id: String, userID: String, edit: @escaping @Sendable (Prompt) throws -> PromptChanges) async throws -> Prompt? {
        try await update(id: id, userID: userID, edit: edit, event: { PromptsEvents.PromptUpdated(userID: userID, prompt: $0) })
    }

    func delete(id: String, userID: String) async throws -> Bool {
        try await delete(id: id, userID: userID, event: PromptsEvents.PromptDeleted(userID: userID, promptId: id))
    }
}
