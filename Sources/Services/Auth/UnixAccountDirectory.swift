/// The operating system's user database, to name an account linked to a uid.
public protocol UnixAccountDirectory: Sendable {
    /// The login name of `uid` (`getpwuid`), nil when it has none.
    func loginName(uid: UInt32) async -> String?
}

/// Knows no login names: linked accounts are named `uid-<uid>`.
public struct NoUnixAccounts: UnixAccountDirectory {
    public init() {}
    public func loginName(uid: UInt32) async -> String? { nil }
}
