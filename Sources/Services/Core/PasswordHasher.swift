/// Hashes passwords with a slow, salted KDF and checks them in constant time.
///
/// Both calls are slow on purpose (about 100 ms and more); implementations run the work off the
/// Swift cooperative pool so that other tasks keep running meanwhile.
public protocol PasswordHasher: Sendable {
    /// A self-describing encoded hash (algorithm, parameters, salt and hash), to store as is.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches `encoded`, a value `hash` returned. False for an encoding this
    /// hasher does not understand.
    func verify(_ password: String, against encoded: String) async throws -> Bool
}
