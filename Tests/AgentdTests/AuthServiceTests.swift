import AgentdTesting
import Foundation
import GRDB
import NIOPosix
import Services
import Testing

@testable import Daemon

/// AuthService through the container (`Dependencies.testing`): in-memory SQLite, a test clock, a
/// fast hasher, a recording event publisher. No socket.
@Suite("Auth service")
struct AuthServiceTests {
    let clock = TestClock()
    let hasher = FakeHasher()
    let auth: AuthService
    let dependencies: Dependencies

    static let trustedUID: UInt32 = 4242

    init() async throws {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.trustedUIDs = [Self.trustedUID]
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: hasher, accounts: FakeAccounts(names: [Self.trustedUID: "alice"]))
        dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        auth = dependencies.auth
    }

    @Test("register creates an account and publishes user.registered; the username is taken after, in any case")
    func register() async throws {
        let user = try await auth.register(username: "bob.smith", password: "correct horse")
        #expect(user.username == "bob.smith")
        #expect(user.hasPassword)
        #expect(user.linkedUID == nil)
        #expect(user.id.hasPrefix("usr_"))
        #expect(try await dependencies.recorded(AuthEvents.UserRegistered.self) == [try RecordedEvent(AuthEvents.UserRegistered(user: user))])
        await #expect(throws: AuthError.usernameTaken("BOB.smith")) {
            try await auth.register(username: "BOB.smith", password: "another one")
        }
    }

    @Test(
        "register validates the username and the password",
        arguments: [
            ("ab", "long enough", "username"), (String(repeating: "a", count: 65), "long enough", "username"),
            ("bad name", "long enough", "username"), ("ünïcode", "long enough", "username"), ("carol", "short", "password"),
        ])
    func registerValidation(username: String, password: String, field: String) async throws {
        do {
            _ = try await auth.register(username: username, password: password)
            Issue.record("accepted \(username) / \(password)")
        } catch let error as AuthError {
            guard case .invalid(let actual, _) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(actual == field)
            #expect(error.rpcError.code == .invalidParams)
        }
    }

    @Test("login: the right password opens a session whose token authenticates; a wrong one does not")
    func login() async throws {
        let user = try await auth.register(username: "dave", password: "password1")
        let (login, principal) = try await auth.login(username: "DAVE", password: "password1")
        #expect(login.user == user)
        #expect(login.expiresAt == clock.now().addingTimeInterval(auth.settings.sessionLifetime))
        #expect(login.token.count == 43, "32 bytes in base64url without padding")
        #expect(principal.sessionTokenHash == AuthService.tokenHash(login.token))
        #expect(try await auth.authenticate(token: login.token).user == user)

        await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "dave", password: "password2") }
        await #expect(throws: AuthError.unauthorized(reason: "unknown or revoked token")) { try await auth.authenticate(token: "nope") }
    }

    @Test("an unknown username runs the KDF too, and fails like a wrong password")
    func unknownUsername() async throws {
        let before = hasher.kdfRuns
        await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "nobody", password: "whatever1") }
        #expect(hasher.kdfRuns == before + 1)
    }

    @Test("5 failures within 15 minutes: further attempts are refused without the KDF until the oldest leaves the window")
    func throttling() async throws {
        _ = try await auth.register(username: "erin", password: "password1")
        for _ in 0..<5 {
            await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "erin", password: "wrong-pass") }
            clock.advance(by: 60)
        }
        // The first failure was 5 minutes ago: it leaves the 15-minute window in 10 minutes.
        let runs = hasher.kdfRuns
        await #expect(throws: AuthError.tooManyLoginAttempts(retryAfterMs: 600_000)) {
            try await auth.login(username: "Erin", password: "password1")
        }
        #expect(hasher.kdfRuns == runs, "a throttled attempt must not run the KDF")
        clock.advance(by: 600)
        // One failure left the window: one attempt is allowed, and a success clears the count.
        _ = try await auth.login(username: "erin", password: "password1")
        for _ in 0..<4 {
            await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "erin", password: "wrong-pass") }
        }
        _ = try await auth.login(username: "erin", password: "password1")
    }

    @Test("throttling also counts unknown usernames")
    func throttlingUnknown() async throws {
        for _ in 0..<5 {
            await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "ghost", password: "whatever1") }
        }
        await #expect(throws: AuthError.tooManyLoginAttempts(retryAfterMs: 900_000)) {
            try await auth.login(username: "ghost", password: "whatever1")
        }
    }

    @Test("changePassword checks the old password and revokes the other sessions, not the caller's")
    func changePassword() async throws {
        _ = try await auth.register(username: "frank", password: "password1")
        let (first, current) = try await auth.login(username: "frank", password: "password1")
        let (second, _) = try await auth.login(username: "frank", password: "password1")
        await #expect(throws: AuthError.invalidCredentials) {
            try await auth.changePassword(current, oldPassword: "wrong-pass", newPassword: "password2")
        }
        await #expect(throws: AuthError.invalid(field: "oldPassword", reason: "required: the account has a password")) {
            try await auth.changePassword(current, oldPassword: nil, newPassword: "password2")
        }
        #expect(try await auth.changePassword(current, oldPassword: "password1", newPassword: "password2") == 1)
        #expect(try await auth.authenticate(token: first.token).user.username == "frank")
        await #expect(throws: AuthError.self) { try await auth.authenticate(token: second.token) }
        await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "frank", password: "password1") }
        _ = try await auth.login(username: "frank", password: "password2")
    }

    @Test("logout ends the session: its token stops working")
    func logout() async throws {
        _ = try await auth.register(username: "grace", password: "password1")
        let (login, principal) = try await auth.login(username: "grace", password: "password1")
        #expect(try await auth.logout(principal))
        await #expect(throws: AuthError.unauthorized(reason: "unknown or revoked token")) { try await auth.authenticate(token: login.token) }
    }

    @Test("a token past its expiry is refused")
    func expiredToken() async throws {
        _ = try await auth.register(username: "heidi", password: "password1")
        let (login, _) = try await auth.login(username: "heidi", password: "password1")
        clock.advance(by: auth.settings.sessionLifetime - 1)
        _ = try await auth.authenticate(token: login.token)
        clock.advance(by: 1)
        await #expect(throws: AuthError.unauthorized(reason: "expired token")) { try await auth.authenticate(token: login.token) }
        await #expect(throws: AuthError.unauthorized(reason: "unknown or revoked token")) { try await auth.authenticate(token: login.token) }
    }

    @Test("a trusted uid gets its linked account, created once, named after its login name")
    func trustedUID() async throws {
        let first = try await auth.principal(peerUID: Self.trustedUID)
        #expect(first.user.username == "alice")
        #expect(first.user.linkedUID == Self.trustedUID)
        #expect(!first.user.hasPassword)
        #expect(first.sessionTokenHash == nil)
        let again = try await auth.principal(peerUID: Self.trustedUID)
        #expect(again.user == first.user)
        #expect(try await dependencies.recorded(AuthEvents.UserRegistered.self).count == 1)
        // A uid-only account has no password to log in with, and may set one without an old one.
        await #expect(throws: AuthError.invalidCredentials) { try await auth.login(username: "alice", password: "whatever1") }
        #expect(try await auth.changePassword(first, oldPassword: nil, newPassword: "password1") == 0)
        _ = try await auth.login(username: "alice", password: "password1")
    }

    @Test("the linked account is named uid-<uid> when the login name is taken")
    func trustedUIDNameTaken() async throws {
        _ = try await auth.register(username: "alice", password: "password1")
        let principal = try await auth.principal(peerUID: Self.trustedUID)
        #expect(principal.user.username == "uid-\(Self.trustedUID)")
    }

    @Test("an untrusted uid is not recognised: Unauthorized")
    func untrustedUID() async throws {
        do {
            _ = try await auth.principal(peerUID: 777)
            Issue.record("an untrusted uid was recognised")
        } catch let error as AuthError {
            #expect(error.rpcError.code.rawValue == -32020)
        }
    }

    @Test("the database holds the token's SHA-256 and the password's hash, never the token or the password")
    func storedOnlyAsHashes() async throws {
        _ = try await auth.register(username: "ivan", password: "password1")
        let (login, _) = try await auth.login(username: "ivan", password: "password1")
        let (hashes, passwordHash) = try await dependencies.database.writer.read { db in
            (
                try Data.fetchAll(db, sql: "SELECT token_hash FROM sessions"),
                try String.fetchOne(db, sql: "SELECT password_hash FROM users WHERE username = 'ivan'")
            )
        }
        #expect(hashes == [AuthService.tokenHash(login.token)])
        #expect(hashes.first?.count == 32)
        #expect(passwordHash == "fake$password1", "what the hasher returned (the fake keeps the password visible)")
    }

    @Test("many connections of one trusted uid at once create one account")
    func concurrentFirstUse() async throws {
        let auth = self.auth
        let ids = try await withThrowingTaskGroup(of: String.self, returning: Set<String>.self) { group in
            for _ in 0..<16 { group.addTask { try await auth.principal(peerUID: Self.trustedUID).user.id } }
            return try await group.reduce(into: []) { $0.insert($1) }
        }
        #expect(ids.count == 1)
        #expect(try await dependencies.recorded(AuthEvents.UserRegistered.self).count == 1)
    }
}

/// The real hasher, with few iterations (the KDF is the same; 600,000 takes seconds in a debug build).
@Suite("PBKDF2 password hasher")
struct PBKDF2PasswordHasherTests {
    @Test("hash then verify; another password or a tampered hash fails; the format is pbkdf2-sha256$n$salt$hash")
    func roundTrip() async throws {
        let hasher = PBKDF2PasswordHasher(iterations: 1000, threadPool: NIOThreadPool.singleton)
        let hash = try await hasher.hash("correct horse")
        let parts = hash.split(separator: "$")
        #expect(parts.count == 4)
        #expect(parts[0] == "pbkdf2-sha256")
        #expect(parts[1] == "1000")
        #expect(Data(base64Encoded: String(parts[2]))?.count == 16)
        #expect(Data(base64Encoded: String(parts[3]))?.count == 32)
        #expect(try await hasher.verify("correct horse", against: hash))
        #expect(try await !hasher.verify("correct horsE", against: hash))
        #expect(try await !hasher.verify("correct horse", against: hash.replacingOccurrences(of: "$1000$", with: "$1001$")))
        #expect(try await !hasher.verify("correct horse", against: "garbage"))
        #expect(try await hasher.hash("correct horse") != hash, "a fresh salt each time")
        #expect(PBKDF2PasswordHasher.defaultIterations == 600_000)
    }

    @Test("a known PBKDF2-HMAC-SHA256 vector (RFC 7914 §11: P=passwd, S=salt, c=1)")
    func knownVector() async throws {
        let hasher = PBKDF2PasswordHasher(iterations: 1, threadPool: NIOThreadPool.singleton)
        let salt = Data("salt".utf8).base64EncodedString()
        let expected = Data([
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05,
            0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc,
        ]).base64EncodedString()
        #expect(try await hasher.verify("passwd", against: "pbkdf2-sha256$1$\(salt)$\(expected)"))
    }
}
