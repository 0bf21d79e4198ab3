import Crypto
import Foundation

/// Accounts, passwords, sessions and who a connection is. Every collaborator comes through the
/// initializer; the service knows no socket and no SQL.
public struct AuthService: Sendable {
    public struct Settings: Sendable {
        /// How long a session token is valid after `auth.login`.
        public var sessionLifetime: TimeInterval = 30 * 24 * 3600
        /// Failed logins for one username within `failedLoginWindow` before further attempts are
        /// refused (without running the KDF).
        public var maxFailedLogins = 5
        public var failedLoginWindow: TimeInterval = 15 * 60
        /// Unix uids recognised without a password, as the account linked to the uid (the
        /// composition root adds the daemon's own uid).
        public var trustedUIDs: Set<UInt32> = []
        /// Whether `auth.register` creates accounts (`auth.allow_registration`). A system instance
        /// turns it off: every account is then a trusted uid's.
        public var allowRegistration = true

        public init(
            sessionLifetime: TimeInterval = 30 * 24 * 3600, maxFailedLogins: Int = 5,
            failedLoginWindow: TimeInterval = 15 * 60, trustedUIDs: Set<UInt32> = [], allowRegistration: Bool = true
        ) {
            self.sessionLifetime = sessionLifetime
            self.maxFailedLogins = maxFailedLogins
            self.failedLoginWindow = failedLoginWindow
            self.trustedUIDs = trustedUIDs
            self.allowRegistration = allowRegistration
        }
    }

    /// What `login` answers: the token, shown once, its expiry and the account.
    public struct Login: Codable, Sendable, Equatable {
        public var token: String
        public var expiresAt: Date
        public var user: User
    }

    private let store: any AuthStore
    private let hasher: any PasswordHasher
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let accounts: any UnixAccountDirectory
    public let settings: Settings

    public init(
        store: any AuthStore, hasher: any PasswordHasher, clock: any WallClock, ids: any IDGenerator,
        accounts: any UnixAccountDirectory, settings: Settings
    ) {
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.ids = ids
        self.accounts = accounts
        self.settings = settings
    }

    // MARK: Accounts

    /// The id of the account named `username` (without case); nil when there is none. For the
    /// audit log of failed logins.
    public func userID(username: String) async throws -> String? {
        try await store.user(username: username)?.user.id
    }

    /// Creates an account with a password.
    ///
    /// - Throws: `AuthError.registrationClosed`, `.invalid` (username or password), `.usernameTaken`.
    public func register(username: String, password: String) async throws -> User {
        guard settings.allowRegistration else { throw AuthError.registrationClosed }
        try Self.validate(username: username, field: "username")
        try Self.validate(password: password, field: "password")
        // Fail fast before the slow hash; the insert below is what really guarantees uniqueness.
        if try await store.user(username: username) != nil { throw AuthError.usernameTaken(username) }
        let hash = try await hasher.hash(password)
        let user = User(id: ids.makeID(prefix: "usr_"), username: username, hasPassword: true, createdAt: clock.now())
        do {
            try await store.insertUser(StoredUser(user: user, passwordHash: hash), event: AuthEvents.UserRegistered(user: user))
        } catch AuthStoreError.usernameTaken {
            throw AuthError.usernameTaken(username)
        }
        return user
    }

    /// Checks a username and password and opens a session.
    ///
    /// An unknown username costs the same KDF run as a wrong password, and both count as a failed
    /// login for that username. After `maxFailedLogins` failures within `failedLoginWindow`,
    /// attempts are refused at once until the oldest of them leaves the window.
    ///
    /// An attempt is counted as a failure before the KDF runs (and forgiven when it succeeds): a
    /// check that only read the failures would let a burst of parallel guesses all pass it while
    /// the first ones are still hashing. A username no account can have is refused at once, and
    /// nothing is stored for it.
    ///
    /// - Throws: `AuthError.tooManyLoginAttempts`, `.invalidCredentials`.
    public func login(username: String, password: String) async throws -> (login: Login, principal: AuthPrincipal) {
        guard Self.isValid(username: username) else { throw AuthError.invalidCredentials }
        let now = clock.now()
        let key = username.lowercased()
        if let failures = try await store.countLoginAttempt(
            username: key, at: now, since: now.addingTimeInterval(-settings.failedLoginWindow), limit: settings.maxFailedLogins)
        {
            let allowedAt = failures[failures.count - settings.maxFailedLogins].addingTimeInterval(settings.failedLoginWindow)
            throw AuthError.tooManyLoginAttempts(retryAfterMs: max(1, Int((allowedAt.timeIntervalSince(now) * 1000).rounded(.up))))
        }
        let stored = try await store.user(username: username)
        let matches: Bool
        if let stored, let hash = stored.passwordHash {
            matches = try await hasher.verify(password, against: hash)
        } else {
            // Same cost as a verification, so that timing does not tell which usernames exist.
            _ = try await hasher.hash(password)
            matches = false
        }
        // A failure stays counted as it was recorded above.
        guard matches, let stored else { throw AuthError.invalidCredentials }
        try await store.clearFailedLogins(username: key)
        return try await openSession(for: stored.user)
    }

    /// Opens a new session for `user`: 32 random bytes (base64url), stored only as their SHA-256.
    func openSession(for user: User) async throws -> (login: Login, principal: AuthPrincipal) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let token = Self.base64URL(bytes)
        let tokenHash = Self.tokenHash(token)
        let now = clock.now()
        let expiresAt = now.addingTimeInterval(settings.sessionLifetime)
        try await store.insertSession(StoredSession(tokenHash: tokenHash, userID: user.id, createdAt: now, expiresAt: expiresAt))
        return (
            Login(token: token, expiresAt: expiresAt, user: user), AuthPrincipal(user: user, sessionTokenHash: tokenHash, sessionExpiresAt: expiresAt)
        )
    }

    /// The principal a session token stands for.
    ///
    /// - Throws: `AuthError.unauthorized` when the token is unknown, expired (the session is then
    ///   deleted) or its account is gone.
    public func authenticate(token: String) async throws -> AuthPrincipal {
        try await principal(sessionTokenHash: Self.tokenHash(token))
    }

    /// Checks that a session still holds (not expired, not revoked) and returns its principal.
    public func principal(sessionTokenHash tokenHash: Data) async throws -> AuthPrincipal {
        guard let session = try await store.session(tokenHash: tokenHash) else {
            throw AuthError.unauthorized(reason: "unknown or revoked token")
        }
        guard session.expiresAt > clock.now() else {
            try await store.deleteSession(tokenHash: tokenHash, event: AuthEvents.SessionsRevoked(userID: session.userID, reason: "expired"))
            throw AuthError.unauthorized(reason: "expired token")
        }
        guard let stored = try await store.user(id: session.userID) else {
            throw AuthError.unauthorized(reason: "unknown or revoked token")
        }
        return AuthPrincipal(user: stored.user, sessionTokenHash: tokenHash, sessionExpiresAt: session.expiresAt)
    }

    /// The account linked to a trusted Unix uid, created on first use: named after the uid's login
    /// name when that is a valid, free username, else `uid-<uid>`.
    ///
    /// - Throws: `AuthError.unauthorized` when `uid` is not trusted.
    public func principal(peerUID uid: UInt32) async throws -> AuthPrincipal {
        guard settings.trustedUIDs.contains(uid) else {
            throw AuthError.unauthorized(reason: "authenticate first: this uid is not trusted")
        }
        if let stored = try await store.user(linkedUID: uid) {
            return AuthPrincipal(user: stored.user, sessionTokenHash: nil)
        }
        var candidates: [String] = []
        if let name = await accounts.loginName(uid: uid), Self.isValid(username: name) { candidates.append(name) }
        candidates += ["uid-\(uid)", "uid-\(uid)-\(ids.makeID(prefix: "").prefix(8))"]
        for username in candidates {
            let user = User(id: ids.makeID(prefix: "usr_"), username: username, linkedUID: uid, hasPassword: false, createdAt: clock.now())
            do {
                try await store.insertUser(StoredUser(user: user, passwordHash: nil), event: AuthEvents.UserRegistered(user: user))
                return AuthPrincipal(user: user, sessionTokenHash: nil)
            } catch AuthStoreError.usernameTaken {
                continue
            } catch AuthStoreError.linkedUIDTaken {
                // Another connection from the same uid created it first.
                if let stored = try await store.user(linkedUID: uid) { return AuthPrincipal(user: stored.user, sessionTokenHash: nil) }
                throw AuthStoreError.linkedUIDTaken
            }
        }
        throw AuthError.usernameTaken("uid-\(uid)")
    }

    /// `auth.whoami` from API version 2: the account with its stored bytes and quota.
    public func whoami(_ user: User) async throws -> AccountWithUsage {
        AccountWithUsage(user: user, usage: try await store.storageUsage(userID: user.id))
    }

    /// Ends the session of `principal`, when it has one. Returns whether a session was deleted.
    public func logout(_ principal: AuthPrincipal) async throws -> Bool {
        guard let tokenHash = principal.sessionTokenHash else { return false }
        try await store.deleteSession(tokenHash: tokenHash, event: AuthEvents.SessionsRevoked(userID: principal.user.id, reason: "logout"))
        return true
    }

    /// Changes the password of `principal`'s account and revokes its other sessions (every session
    /// when the caller was recognised by peer credentials). `oldPassword` is required when the
    /// account has a password; a uid-only account may set its first one without.
    ///
    /// - Returns: how many sessions were revoked.
    /// - Throws: `AuthError.invalid`, `.invalidCredentials` (wrong old password).
    public func changePassword(_ principal: AuthPrincipal, oldPassword: String?, newPassword: String) async throws -> Int {
        try Self.validate(password: newPassword, field: "newPassword")
        guard let stored = try await store.user(id: principal.user.id) else {
            throw AuthError.unauthorized(reason: "the account no longer exists")
        }
        if let hash = stored.passwordHash {
            guard let oldPassword else { throw AuthError.invalid(field: "oldPassword", reason: "required: the account has a password") }
            guard try await hasher.verify(oldPassword, against: hash) else { throw AuthError.invalidCredentials }
        }
        let newHash = try await hasher.hash(newPassword)
        return try await store.setPasswordHash(
            newHash, userID: stored.user.id, revokingSessionsExcept: principal.sessionTokenHash,
            event: AuthEvents.SessionsRevoked(userID: stored.user.id, reason: "passwordChanged"))
    }

    // MARK: Rules

    static let usernameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)

    /// Whether an account could have this username (3 to 64 of `usernameCharacters`): anything else
    /// is refused before it is hashed, stored or logged.
    public static func isValid(username: String) -> Bool {
        (3...64).contains(username.unicodeScalars.count) && username.unicodeScalars.allSatisfy(usernameCharacters.contains)
    }

    static func validate(username: String, field: String) throws(AuthError) {
        guard isValid(username: username) else {
            throw .invalid(field: field, reason: "3 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
        }
    }

    static func validate(password: String, field: String) throws(AuthError) {
        guard password.count >= 8 else { throw .invalid(field: field, reason: "at least 8 characters") }
        guard password.utf8.count <= 4096 else { throw .invalid(field: field, reason: "at most 4096 bytes") }
    }

    /// The SHA-256 of a token's text: what the sessions table holds.
    public static func tokenHash(_ token: String) -> Data {
        Data(SHA256.hash(data: Array(token.utf8)))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
