import RPC

/// Hashes passwords with a slow, salted KDF and checks them in constant time.
///
/// Both calls are slow on purpose (about 100 ms and more); implementations run the work off the
/// Swift cooperative pool so that other tasks keep running meanwhile. Either may throw
/// `PasswordHashingBusyError` when too many hashes are already waiting for a thread.
public protocol PasswordHasher: Sendable {
    /// A self-describing encoded hash (algorithm, parameters, salt and hash), to store as is.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches `encoded`, a value `hash` returned. False for an encoding this
    /// hasher does not understand.
    func verify(_ password: String, against encoded: String) async throws -> Bool
}

extension RPCError.Code {
    /// Too many password hashes waiting for the hashing threads (`auth.max_waiting_hashes`), docs/ERRORS.md.
    public static let passwordHashingBusy = RPCError.Code(-32025)
}

/// A hash refused at once because `limit` hashes already wait for a hashing thread
/// (`auth.max_waiting_hashes`): the queue of slow KDF runs is bounded in the whole daemon, whatever
/// uid or username the logins come from. `auth.login`, `auth.register` and `auth.changePassword`
/// answer it; nothing was checked or stored.
public struct PasswordHashingBusyError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// The hashes that may wait for a thread.
    public var limit: Int

    public init(limit: Int) { self.limit = limit }

    public static let setting = "auth.max_waiting_hashes"

    public var rpcError: RPCError {
        RPCError(.passwordHashingBusy, "Too many password checks waiting", data: LimitData(setting: Self.setting, limit: limit))
    }

    private struct LimitData: Encodable {
        var setting: String
        var limit: Int
    }
}
