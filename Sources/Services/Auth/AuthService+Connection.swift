import RPC

/// The auth methods that bind or unbind the caller's connection.
extension AuthService {
    /// `auth.login`, binding the connection to the new session.
    func login(_ params: Auth.Credentials, on connection: RPCConnectionInfo) async throws -> Login {
        let (login, principal) = try await login(username: params.username, password: params.password)
        connection.attributes[AuthPrincipalKey.self] = principal
        connection.markSignedIn()
        return login
    }

    /// `auth.authenticate`, binding the connection to the token's session.
    func authenticate(token: String, on connection: RPCConnectionInfo) async throws -> User {
        let principal = try await authenticate(token: token)
        connection.attributes[AuthPrincipalKey.self] = principal
        connection.markSignedIn()
        return principal.user
    }

    /// `auth.logout`: ends the session and forgets the connection's principal.
    func logout(_ context: AuthenticatedContext) async throws -> Bool {
        context.request.connection.attributes[AuthPrincipalKey.self] = nil
        return try await logout(context.principal)
    }
}

extension AuthService {
    /// The id of the user `connection` signed in as with a password or token (for per-user
    /// policies such as rate limits); nil otherwise. A connection recognised by its peer uid is
    /// that uid's account, so such policies key it by uid from its first call on.
    public static func signedInUserID(on connection: RPCConnectionInfo) -> String? {
        guard let principal = connection.attributes[AuthPrincipalKey.self], principal.sessionTokenHash != nil else { return nil }
        return principal.user.id
    }
}

extension AuthService {
    /// The id of the user `connection` acts as when it was recognised by its peer uid (no session
    /// to check again on each call); nil otherwise. What a result cache may key on without
    /// skipping a session's revocation check.
    public static func peerUserID(on connection: RPCConnectionInfo) -> String? {
        guard let principal = connection.attributes[AuthPrincipalKey.self], principal.sessionTokenHash == nil else { return nil }
        return principal.user.id
    }
}

extension AuthService {
    /// The id of the user `connection` acts as now, however it was recognised; nil when none.
    public static func principalUserID(on connection: RPCConnectionInfo) -> String? {
        connection.attributes[AuthPrincipalKey.self]?.user.id
    }

}
