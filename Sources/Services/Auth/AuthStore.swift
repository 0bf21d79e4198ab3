import Foundation

/// A user row: the account and its password hash (nil for a uid-only account).
public struct StoredUser: Sendable, Equatable {
    public var user: User
    public var passwordHash: String?

    public init(user: User, passwordHash: String?) {
        self.user = user
        self.passwordHash = passwordHash
    }
}

/// A session row. The token itself is never stored, only its SHA-256.
public struct StoredSession: Sendable, Equatable {
    public var tokenHash: Data
    public var userID: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(tokenHash: Data, userID: String, createdAt: Date, expiresAt: Date) {
        self.tokenHash = tokenHash
        self.userID = userID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// Conflicts a store reports on `insertUser`.
public enum AuthStoreError: Error, Equatable, Sendable {
    /// Another account has this username (compared without case).
    case usernameTaken
    /// Another account is linked to this uid.
    case linkedUIDTaken
}

/// Where accounts, sessions and failed logins live. `SQLiteAuthStore` in Storage implements it.
public protocol AuthStore: Sendable {
    /// Inserts the user and, in the same transaction, `event` (the outbox).
    /// - Throws: `AuthStoreError.usernameTaken` or `.linkedUIDTaken` on a conflict.
    func insertUser(_ user: StoredUser, event: AuthEvents.UserRegistered) async throws
    /// Finds a user by username, without case.
    func user(username: String) async throws -> StoredUser?
    func user(id: String) async throws -> StoredUser?
    func user(linkedUID: UInt32) async throws -> StoredUser?
    /// The user's stored bytes and the quota they count against.
    func storageUsage(userID: String) async throws -> StorageUsage
    /// Sets the password hash and, in the same transaction, deletes the user's sessions except
    /// `keeping` (nil: all of them). Returns how many sessions were deleted.
    /// `event` is stored with the change when sessions were deleted.
    func setPasswordHash(_ hash: String, userID: String, revokingSessionsExcept keeping: Data?, event: AuthEvents.SessionsRevoked) async throws -> Int

    /// Inserts a session, and deletes the user's sessions that expired by its `createdAt`.
    func insertSession(_ session: StoredSession) async throws
    func session(tokenHash: Data) async throws -> StoredSession?
    /// `event` is stored with the change when the session existed.
    func deleteSession(tokenHash: Data, event: AuthEvents.SessionsRevoked) async throws

    /// Counts a login attempt for `username` (without case) as a failed login at `date` before its
    /// password is checked, unless `limit` failures after `since` are recorded already; the check
    /// and the count are one transaction, so parallel attempts cannot all pass the check. Forgets
    /// every username's failures before `since`.
    /// - Returns: nil when counted; the failures after `since`, oldest first, when refused.
    func countLoginAttempt(username: String, at date: Date, since: Date, limit: Int) async throws -> [Date]?
    func clearFailedLogins(username: String) async throws
}
