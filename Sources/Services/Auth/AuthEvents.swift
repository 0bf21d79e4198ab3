/// Events of the auth domain.
public enum AuthEvents {
    /// An account was created: by `auth.register`, or on first use of a trusted uid.
    public struct UserRegistered: DomainEvent, Equatable {
        public static let name = "user.registered"
        public var user: User

        public init(user: User) { self.user = user }
    }
}
