/// Events of the auth domain.
public enum AuthEvents {
    /// An account was created: by `auth.register`, or on first use of a trusted uid.
    public struct UserRegistered: DomainEvent, Equatable {
        public static let topic = "user.registered"
        public var userID: String
        public var username: String
        /// The OS uid the account is linked to (peer credentials), if any.
        public var linkedUID: UInt32?

        public init(user: User) {
            self.userID = user.id
            self.username = user.username
            self.linkedUID = user.linkedUID
        }

        enum CodingKeys: String, CodingKey {
            case userID = "userId", username, linkedUID = "linkedUid"
        }
    }

    /// Sessions of the user ended: a logout, or a password change that revoked the others. Their
    /// connections' event subscriptions end too (`EventsService.endRevokedSubscriptions`).
    public struct SessionsRevoked: DomainEvent, Equatable {
        public static let topic = "user.sessions.revoked"
        public var userID: String
        /// `logout`, `passwordChanged` or `expired` (found expired when presented).
        public var reason: String

        public init(userID: String, reason: String) {
            self.userID = userID
            self.reason = reason
        }

        enum CodingKeys: String, CodingKey { case userID = "userId", reason }
    }

    public static let all: [any DomainEvent.Type] = [UserRegistered.self, SessionsRevoked.self]
}
