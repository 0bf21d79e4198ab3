import Crypto
import CryptoExtras
import Foundation

/// PBKDF2-HMAC-SHA256 with a 16-byte random salt, encoded as
/// `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>`.
///
/// The KDF runs on a `BlockingWorkRunner`, never on the cooperative pool: at 600,000 iterations it
/// takes ~100+ ms of CPU, which would otherwise starve every other task on that thread. The daemon
/// gives it threads of its own at a lower CPU priority (`PasswordHashingPool`).
/// Verification uses the iteration count stored in the hash, so raising `iterations` later keeps
/// old hashes valid. The comparison is constant-time (`SymmetricKey ==`).
public struct PBKDF2PasswordHasher: PasswordHasher {
    public static let defaultIterations = 600_000
    static let prefix = "pbkdf2-sha256"
    static let saltBytes = 16
    static let hashBytes = 32

    public let iterations: Int
    private let threadPool: any BlockingWorkRunner

    /// - Parameters:
    ///   - iterations: for new hashes; below 600,000 only in tests.
    ///   - threadPool: where the KDF runs (the daemon's `PasswordHashingPool`; an active
    ///     `NIOThreadPool` in tests).
    public init(iterations: Int = PBKDF2PasswordHasher.defaultIterations, threadPool: any BlockingWorkRunner) {
        precondition(iterations > 0, "iterations must be positive")
        self.iterations = iterations
        self.threadPool = threadPool
    }

    public func hash(_ password: String) async throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<Self.saltBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let iterations = self.iterations
        let key = try await threadPool.run {
            try Self.derive(password, salt: salt, iterations: iterations)
        }
        let hash = key.withUnsafeBytes { Data($0) }
        return "\(Self.prefix)$\(iterations)$\(Data(salt).base64EncodedString())$\(hash.base64EncodedString())"
    }

    public func verify(_ password: String, against encoded: String) async throws -> Bool {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.prefix,
            let iterations = Int(parts[1]), (1...10_000_000).contains(iterations),
            let salt = Data(base64Encoded: String(parts[2])), !salt.isEmpty,
            let expected = Data(base64Encoded: String(parts[3])), !expected.isEmpty
        else { return false }
        let key = try await threadPool.run {
            try Self.derive(password, salt: Array(salt), iterations: iterations, outputByteCount: expected.count)
        }
        return key == SymmetricKey(data: expected)
    }

    private static func derive(_ password: String, salt: [UInt8], iterations: Int, outputByteCount: Int = hashBytes) throws -> SymmetricKey {
        try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: outputByteCount,
            unsafeUncheckedRounds: iterations)
    }
}
