import Foundation
import RPC

/// The `auth.*` methods: accounts, sessions and who a connection is.
public enum Auth {
    public struct Credentials: Codable, Sendable {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    public enum Register: RPCMethod {
        public static let name = "auth.register"
        public static let summary = "Creates an account with a password (username: 3-64 of [A-Za-z0-9._-]; password: 8+ characters)."
        public static let rateClass: RPCRateClassName = .register
        public typealias Params = Credentials
        public typealias Result = User
        // `-32024 Registration is closed` (auth.allow_registration off) is in docs/ERRORS.md, not
        // here: version 1's document is published and frozen.
        public static var errors: [RPCErrorDescription] { [AuthError.usernameTakenDescription] }
    }

    public enum Login: RPCMethod {
        public static let name = "auth.login"
        public static let summary =
            "Checks a username and password and opens a session: returns its token (shown once) and binds this connection to the account."
        public static let rateClass: RPCRateClassName = .auth
        public typealias Params = Credentials
        public typealias Result = AuthService.Login
        public static var errors: [RPCErrorDescription] {
            [AuthError.invalidCredentialsDescription, AuthError.tooManyLoginAttemptsDescription]
        }
    }

    public enum Authenticate: RPCMethod {
        public static let name = "auth.authenticate"
        public static let summary = "Binds this connection to the account of a session token: every later call on it acts as that user."
        public static let rateClass: RPCRateClassName = .auth
        public struct Params: Codable, Sendable {
            public var token: String
            public init(token: String) { self.token = token }
        }
        public typealias Result = User
        public static var errors: [RPCErrorDescription] { [AuthError.unauthorizedDescription] }
    }

    public enum Logout: RPCMethod {
        public static let name = "auth.logout"
        public static let summary = "Ends this connection's session (its token stops working); true when a session was ended."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = Bool
        public static var errors: [RPCErrorDescription] { [AuthError.unauthorizedDescription] }
    }

    public enum WhoAmI: RPCMethod {
        public static let name = "auth.whoami"
        public static let summary = "The account this connection acts as (through its token or its Unix peer credentials)."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = User
        public static var errors: [RPCErrorDescription] { [AuthError.unauthorizedDescription] }
    }

    /// Version 2 adds `usage` (version 1 is published and never changes).
    public enum WhoAmIV2: RPCMethod {
        public static let name = "auth.whoami"
        public static let summary =
            "The account this connection acts as (through its token or its Unix peer credentials), with its stored bytes and storage quota."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = AccountWithUsage
        public static var errors: [RPCErrorDescription] { [AuthError.unauthorizedDescription] }
    }

    public enum ChangePassword: RPCMethod {
        public static let name = "auth.changePassword"
        public static let summary =
            "Changes the caller's password and revokes the account's other sessions; returns how many were revoked. oldPassword may be omitted only by an account without a password."
        public static let rateClass: RPCRateClassName = .auth
        public struct Params: Codable, Sendable {
            public var oldPassword: String?
            public var newPassword: String
            public init(oldPassword: String?, newPassword: String) {
                self.oldPassword = oldPassword
                self.newPassword = newPassword
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var revokedSessions: Int
        }
        public static var errors: [RPCErrorDescription] {
            [AuthError.unauthorizedDescription, AuthError.invalidCredentialsDescription]
        }
    }
}
