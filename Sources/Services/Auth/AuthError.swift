import RPC

extension RPCError.Code {
    // Auth (-32020…-32029), docs/ERRORS.md.
    public static let unauthorized = RPCError.Code(-32020)
    public static let invalidCredentials = RPCError.Code(-32021)
    public static let usernameTaken = RPCError.Code(-32022)
    public static let tooManyLoginAttempts = RPCError.Code(-32023)
    /// `auth.register` on a daemon whose `auth.allow_registration` is off.
    public static let registrationClosed = RPCError.Code(-32024)
}

/// The auth domain's errors, and how they appear on the wire.
public enum AuthError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// No principal, or a token that is unknown, expired or revoked.
    case unauthorized(reason: String)
    /// Wrong username or password (the reply never says which).
    case invalidCredentials
    case usernameTaken(String)
    /// Too many failed logins for this username; try again after `retryAfterMs`.
    case tooManyLoginAttempts(retryAfterMs: Int)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// `auth.allow_registration` is off.
    case registrationClosed

    public var rpcError: RPCError {
        switch self {
        case .unauthorized(let reason):
            RPCError(.unauthorized, "Unauthorized", data: ["reason": reason])
        case .invalidCredentials:
            RPCError(.invalidCredentials, "Invalid username or password")
        case .usernameTaken(let username):
            RPCError(.usernameTaken, "Username is taken", data: ["username": username])
        case .tooManyLoginAttempts(let retryAfterMs):
            RPCError(.tooManyLoginAttempts, "Too many failed login attempts", data: ["retryAfterMs": retryAfterMs])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .registrationClosed:
            RPCError(.registrationClosed, "Registration is closed", data: ["setting": "auth.allow_registration"])
        }
    }

    static let unauthorizedDescription = RPCErrorDescription(
        .unauthorized, "Unauthorized", data: "{reason}: no principal on this connection, or its token is unknown, expired or revoked")
    static let invalidCredentialsDescription = RPCErrorDescription(.invalidCredentials, "Invalid username or password")
    static let usernameTakenDescription = RPCErrorDescription(.usernameTaken, "Username is taken", data: "{username}")
    static let tooManyLoginAttemptsDescription = RPCErrorDescription(
        .tooManyLoginAttempts, "Too many failed login attempts", data: "{retryAfterMs}: when a new attempt is allowed")
}
