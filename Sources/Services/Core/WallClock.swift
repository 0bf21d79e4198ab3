import Foundation

/// The current date, injected so that services can be tested with a clock the test moves.
///
/// ```swift
/// let expiresAt = clock.now().addingTimeInterval(3600)
/// ```
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system's wall clock.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}
