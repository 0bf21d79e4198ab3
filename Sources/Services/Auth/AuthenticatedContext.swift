import Foundation
import Logging
import RPC

/// The connection attribute holding who the connection acts as.
enum AuthPrincipalKey: RPCConnectionAttributeKey {
    typealias Value = AuthPrincipal
}

/// The context of a call that needs a user: `user` is not optional, and the only way to make one
/// is the throwing init, so a handler registered with `onAuthenticated` cannot skip the check.
public struct AuthenticatedContext: Sendable {
    public let principal: AuthPrincipal
    public let request: RPCContext

    public var user: User { principal.user }

    /// The request's logger with the caller's user id.
    public var logger: Logger {
        var logger = request.logger
        logger[metadataKey: "user"] = .string(principal.user.id)
        return logger
    }

    /// Resolves the connection's principal: the session it authenticated with (checked again on
    /// every call, so a revoked or expired session stops working at once), else its Unix peer
    /// credentials when the uid is trusted (the linked account, created on first use and then
    /// cached on the connection).
    ///
    /// - Throws: `AuthError.unauthorized`.
    public init(_ context: RPCContext, auth: AuthService) async throws {
        let attributes = context.connection.attributes
        // A login or authenticate sent before this call binds first (AuthBindingOrderMiddleware).
        if let pending = attributes[PendingBindingsKey.self] { await pending.waitUntilIdle() }
        if let principal = attributes[AuthPrincipalKey.self] {
            if let tokenHash = principal.sessionTokenHash {
                do {
                    self.principal = try await auth.principal(sessionTokenHash: tokenHash)
                } catch let error as AuthError {
                    attributes[AuthPrincipalKey.self] = nil
                    throw error
                }
            } else {
                self.principal = principal
            }
        } else if let peer = context.connection.peer {
            let principal = try await auth.principal(peerUID: peer.uid)
            self.principal = attributes.setIfAbsent(AuthPrincipalKey.self, principal)
        } else {
            throw AuthError.unauthorized(reason: "authenticate first (auth.login or auth.authenticate)")
        }
        self.request = context
    }
}
