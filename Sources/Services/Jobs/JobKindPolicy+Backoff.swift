extension JobKindPolicy {
    /// The wait before retry `retry` (from 1, the retry after attempt `retry`): the cap
    /// `min(maxBackoff, baseBackoff × 2^(retry-1))`, then between half of it and all of it, by
    /// `random` (uniform in 0..<1).
    ///
    /// Why not "full jitter" (anywhere from zero to the cap): a retry at once after a transient
    /// error (a provider rate-limiting us) mostly meets the same error; half the cap still spreads
    /// the retries of many jobs that failed together over a window as wide as the wait itself.
    public func backoff(beforeRetry retry: Int, random: Double) -> Duration {
        let exponent = min(max(retry - 1, 0), 62)
        let base = Self.seconds(baseBackoff)
        let cap = min(Self.seconds(maxBackoff), base * Double(UInt64(1) << UInt64(exponent)))
        let jitter = min(max(random, 0), 1)
        return .milliseconds(Int64((cap * (0.5 + 0.5 * jitter) * 1000).rounded()))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
