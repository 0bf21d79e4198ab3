/// Why a harness call gave up. Every wait has a deadline, so a broken daemon fails a test instead
/// of hanging it.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A point in time after which a wait gives up.
struct Deadline {
    let instant: ContinuousClock.Instant

    init(_ timeout: Duration) { instant = .now + timeout }

    var hasPassed: Bool { ContinuousClock.now >= instant }

    /// The time left (zero once passed), for a read that must end by this deadline.
    var remaining: Duration { max(.zero, instant - .now) }

    /// Milliseconds left, rounded up, for `poll` (0 once passed).
    var pollMilliseconds: Int32 {
        let left = instant - .now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}
