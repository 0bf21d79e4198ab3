import Foundation
import Services
import Synchronization

/// A wall clock the test moves by hand.
public final class TestClock: WallClock {
    // Only touched under the mutex.
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = Mutex(start) }

    public func now() -> Date { current.withLock { $0 } }

    public func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// `usr_1`, `usr_2`, …: predictable ids.
public final class SequentialIDs: IDGenerator {
    public init() {}

    // Only touched under the mutex.
    private let next = Mutex(0)

    public func makeID(prefix: String) -> String {
        prefix
            + String(
                next.withLock {
                    $0 += 1
                    return $0
                })
    }
}

/// A fast hasher that counts its calls: `fake$<password>`.
public final class FakeHasher: PasswordHasher {
    public init() {}

    // Only touched under the mutex.
    private let counts = Mutex((hashes: 0, verifications: 0))

    public var hashes: Int { counts.withLock { $0.hashes } }
    public var verifications: Int { counts.withLock { $0.verifications } }
    /// Every call that would run the KDF.
    public var kdfRuns: Int { counts.withLock { $0.hashes + $0.verifications } }

    public func hash(_ password: String) async throws -> String {
        counts.withLock { $0.hashes += 1 }
        return "fake$" + password
    }

    public func verify(_ password: String, against encoded: String) async throws -> Bool {
        counts.withLock { $0.verifications += 1 }
        return encoded == "fake$" + password
    }
}

/// A user database with fixed login names.
public struct FakeAccounts: UnixAccountDirectory {
    public var names: [UInt32: String] = [:]
    public init(names: [UInt32: String] = [:]) { self.names = names }
    public func loginName(uid: UInt32) async -> String? { names[uid] }
}
