import Foundation

/// Whether a session still exists, for the events domain to end the subscriptions of revoked
/// sessions. `AuthService` is one.
public protocol SessionChecker: Sendable {
    func isSessionValid(tokenHash: Data) async -> Bool
}

extension AuthService: SessionChecker {
    public func isSessionValid(tokenHash: Data) async -> Bool {
        (try? await principal(sessionTokenHash: tokenHash)) != nil
    }
}
