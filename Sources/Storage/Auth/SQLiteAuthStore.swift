import Foundation
import GRDB
import Services
import Synchronization

/// The auth domain's store on SQLite: tables `users`, `sessions` (0001) and `login_failures` (0002).
/// Reads and writes go through GRDB's async API, on its own queues, never on an event loop; a
/// write with an event (a new account) through the shared `GroupCommitWriter`.
///
/// The account linked to a uid is kept in memory once read: every new connection from the
/// editor's uid looks it up, and the read was a fifth of what agentd added to an agent run's first
/// token. This store is the only writer of `users`, so it drops the copy whenever it changes one.
public struct SQLiteAuthStore: AuthStore {
    private let writer: any DatabaseWriter
    private let writes: GroupCommitWriter
    private let linkedUsers = LinkedUserCache()
    /// What `storageUsage` reports beside the count (the other stores enforce it).
    private let quota: StorageQuota

    public init(writer: any DatabaseWriter, groupWriter: GroupCommitWriter, quota: StorageQuota) {
        self.writer = writer
        self.writes = groupWriter
        self.quota = quota
    }

    public func storageUsage(userID: String) async throws -> StorageUsage {
        StorageUsage(storedBytes: try await writer.unsafeRead { db in try StorageLedger.storedBytes(userID: userID, db: db) }, quota: quota)
    }

    public func insertUser(_ stored: StoredUser, event: AuthEvents.UserRegistered) async throws {
        let writes = self.writes
        do {
            defer { linkedUsers.invalidate() }
            try await writes.write { db in
                try db.cachedStatement(sql: "INSERT INTO users (id, username, password_hash, linked_uid, created_at) VALUES (?, ?, ?, ?, ?)").execute(
                    arguments: [
                        stored.user.id, stored.user.username, stored.passwordHash, stored.user.linkedUID.map { Int64($0) },
                        Timestamp.text(stored.user.createdAt),
                    ])
                try writes.record(event, in: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            if error.message?.contains("users.linked_uid") == true { throw AuthStoreError.linkedUIDTaken }
            throw AuthStoreError.usernameTaken
        }
    }

    public func user(username: String) async throws -> StoredUser? {
        try await fetchUser(where: "username = ?", username)
    }

    public func user(id: String) async throws -> StoredUser? {
        try await fetchUser(where: "id = ?", id)
    }

    public func user(linkedUID: UInt32) async throws -> StoredUser? {
        if let cached = linkedUsers[linkedUID] { return cached }
        let generation = linkedUsers.generation
        let stored = try await fetchUser(where: "linked_uid = ?", Int64(linkedUID))
        if let stored { linkedUsers.store(stored, for: linkedUID, readAt: generation) }
        return stored
    }

    private func fetchUser(where condition: String, _ value: some DatabaseValueConvertible & Sendable) async throws -> StoredUser? {
        try await writer.unsafeRead { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT id, username, password_hash, linked_uid, created_at FROM users WHERE \(condition)"),
                arguments: [value]
            )
            .map(Self.storedUser)
        }
    }

    private static func storedUser(_ row: Row) throws -> StoredUser {
        let hash: String? = row["password_hash"]
        let uid: Int64? = row["linked_uid"]
        let user = User(
            id: row["id"], username: row["username"], linkedUID: uid.map { UInt32(truncatingIfNeeded: $0) },
            hasPassword: hash != nil, createdAt: try Timestamp.date(row["created_at"]))
        return StoredUser(user: user, passwordHash: hash)
    }

    public func setPasswordHash(_ hash: String, userID: String, revokingSessionsExcept keeping: Data?, event: AuthEvents.SessionsRevoked) async throws
        -> Int
    {
        let writes = self.writes
        // After the commit: a read that began before it must not leave the old account cached.
        defer { linkedUsers.invalidate() }
        return try await writes.write { db in
            try db.cachedStatement(sql: "UPDATE users SET password_hash = ? WHERE id = ?").execute(arguments: [hash, userID])
            if let keeping {
                try db.cachedStatement(sql: "DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?").execute(arguments: [userID, keeping])
            } else {
                try db.cachedStatement(sql: "DELETE FROM sessions WHERE user_id = ?").execute(arguments: [userID])
            }
            let revoked = db.changesCount
            if revoked > 0 { try writes.record(event, in: db) }
            return revoked
        }
    }

    public func insertSession(_ session: StoredSession) async throws {
        try await writer.write { db in
            // Expired sessions are otherwise deleted only when presented: forget the user's here.
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?").execute(arguments: [
                session.userID, Timestamp.text(session.createdAt),
            ])
            try db.cachedStatement(sql: "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)").execute(arguments: [
                session.tokenHash, session.userID, Timestamp.text(session.createdAt), Timestamp.text(session.expiresAt),
            ])
        }
    }

    public func session(tokenHash: Data) async throws -> StoredSession? {
        try await writer.unsafeRead { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT user_id, created_at, expires_at FROM sessions WHERE token_hash = ?"), arguments: [tokenHash])
            else {
                return nil
            }
            return StoredSession(
                tokenHash: tokenHash, userID: row["user_id"],
                createdAt: try Timestamp.date(row["created_at"]), expiresAt: try Timestamp.date(row["expires_at"]))
        }
    }

    public func deleteSession(tokenHash: Data, event: AuthEvents.SessionsRevoked) async throws {
        let writes = self.writes
        try await writes.write { db in
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE token_hash = ?").execute(arguments: [tokenHash])
            if db.changesCount > 0 { try writes.record(event, in: db) }
        }
    }

    /// Records a failed login for `username` (without case) at `date`, and forgets every
    /// username's failures before `pruneBefore`. Not part of `AuthStore` any more (logins count
    /// their attempt with `countLoginAttempt`): kept for the store's own tests and tools.
    public func recordFailedLogin(username: String, at date: Date, pruneBefore: Date) async throws {
        try await writer.write { db in
            try db.cachedStatement(sql: "DELETE FROM login_failures WHERE failed_at < ?").execute(arguments: [Timestamp.text(pruneBefore)])
            try db.cachedStatement(sql: "INSERT INTO login_failures (username, failed_at) VALUES (?, ?)").execute(arguments: [
                username, Timestamp.text(date),
            ])
        }
    }

    public func countLoginAttempt(username: String, at date: Date, since: Date, limit: Int) async throws -> [Date]? {
        // Through the group writer: its jobs run one after another, so the read and the insert
        // are atomic with respect to every other attempt, and a burst shares its commits.
        try await writes.write { db in
            try db.cachedStatement(sql: "DELETE FROM login_failures WHERE failed_at <= ?").execute(arguments: [Timestamp.text(since)])
            let failures = try String.fetchAll(
                db.cachedStatement(sql: "SELECT failed_at FROM login_failures WHERE username = ? AND failed_at > ? ORDER BY failed_at"),
                arguments: [username, Timestamp.text(since)])
            if failures.count >= limit { return try failures.map(Timestamp.date) }
            try db.cachedStatement(sql: "INSERT INTO login_failures (username, failed_at) VALUES (?, ?)").execute(arguments: [
                username, Timestamp.text(date),
            ])
            return nil
        }
    }

    /// The failed logins for `username` (without case) after `since`, oldest first.
    public func failedLogins(username: String, since: Date) async throws -> [Date] {
        try await writer.unsafeRead { db in
            try String.fetchAll(
                db.cachedStatement(sql: "SELECT failed_at FROM login_failures WHERE username = ? AND failed_at > ? ORDER BY failed_at"),
                arguments: [username, Timestamp.text(since)]
            )
            .map(Timestamp.date)
        }
    }

    public func clearFailedLogins(username: String) async throws {
        try await writes.write { db in
            try db.cachedStatement(sql: "DELETE FROM login_failures WHERE username = ?").execute(arguments: [username])
        }
    }
}

/// Accounts by linked uid, as last read. `invalidate()` (after every change to `users`) empties it
/// and bumps the generation; a read that began under an older generation is not stored, so a
/// read racing a change can never cache what the change replaced.
final class LinkedUserCache: Sendable {
    private struct State {
        var users: [UInt32: StoredUser] = [:]
        var generation = 0
    }

    private let state = Mutex(State())

    subscript(uid: UInt32) -> StoredUser? { state.withLock { $0.users[uid] } }

    var generation: Int { state.withLock { $0.generation } }

    func store(_ user: StoredUser, for uid: UInt32, readAt generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.users[uid] = user
        }
    }

    func invalidate() {
        state.withLock { state in
            state.users = [:]
            state.generation += 1
        }
    }
}
