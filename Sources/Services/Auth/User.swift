import Foundation

/// An account, as clients see it (never its password hash).
public struct User: Codable, Sendable, Equatable {
    public var id: String
    /// Unique, compared without case; 3–64 characters of `[A-Za-z0-9._-]`.
    public var username: String
    /// The Unix uid recognised from the socket's peer credentials, when the account is linked.
    public var linkedUID: UInt32?
    /// False for an account that only signs in through its linked uid.
    public var hasPassword: Bool
    public var createdAt: Date

    public init(id: String, username: String, linkedUID: UInt32? = nil, hasPassword: Bool, createdAt: Date) {
        self.id = id
        self.username = username
        self.linkedUID = linkedUID
        self.hasPassword = hasPassword
        self.createdAt = createdAt
    }
}

/// An account with its stored bytes against its storage quota (`auth.whoami` from API version 2):
/// `User`'s members, then `usage`.
public struct AccountWithUsage: Codable, Sendable, Equatable {
    public var id: String
    public var username: String
    public var linkedUID: UInt32?
    public var hasPassword: Bool
    public var createdAt: Date
    public var usage: StorageUsage

    public init(user: User, usage: StorageUsage) {
        self.id = user.id
        self.username = user.username
        self.linkedUID = user.linkedUID
        self.hasPassword = user.hasPassword
        self.createdAt = user.createdAt
        self.usage = usage
    }
}

/// Who a connection acts as: a user, through a session token or through its peer credentials.
public struct AuthPrincipal: Sendable, Equatable {
    public var user: User
    /// The SHA-256 of the session token the connection authenticated with; nil when it was
    /// recognised by its Unix peer credentials.
    public var sessionTokenHash: Data?
    /// When that session expires (nil without a session): what a subscription opened with it
    /// lives until.
    public var sessionExpiresAt: Date?

    public init(user: User, sessionTokenHash: Data?, sessionExpiresAt: Date? = nil) {
        self.user = user
        self.sessionTokenHash = sessionTokenHash
        self.sessionExpiresAt = sessionExpiresAt
    }
}
