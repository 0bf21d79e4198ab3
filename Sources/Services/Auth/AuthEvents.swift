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

    public static let all: [any DomainEvent.Type] = [UserRegistered.self]
}
