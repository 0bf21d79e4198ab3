import Synchronization

/// A budget that a group of methods shares per caller: a token bucket holding at most `burst`
/// calls, refilled at `perSecond`, and optionally at most `maxConcurrent` calls running at once
/// (for long calls such as the agent's, where the rate says little).
public struct RPCRateClass: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var perSecond: Double
    public var burst: Int
    public var maxConcurrent: Int?

    public init(_ name: String, perSecond: Double, burst: Int, maxConcurrent: Int? = nil) {
        precondition(perSecond > 0 && burst > 0 && (maxConcurrent ?? 1) > 0)
        self.name = name
        self.perSecond = perSecond
        self.burst = burst
        self.maxConcurrent = maxConcurrent
    }

    public var description: String { "\(name) (\(burst) at once, \(perSecond)/s)" }
}

/// Token buckets by caller and class. Time comes from `now` (seconds on a monotonic clock), so
/// tests move it by hand instead of sleeping.
///
/// Memory is bounded: past `maxBuckets`, buckets that have refilled completely (they hold no
/// state worth keeping) are forgotten.
public final class RPCTokenBuckets: Sendable {
    private struct Key: Hashable {
        var caller: String
        var rateClass: String
    }
    private struct Bucket {
        var tokens: Double
        var updated: Double
        /// When it holds its whole burst again if nothing is taken: after that, dropping it
        /// changes nothing.
        var fullAt: Double
    }

    public let maxBuckets: Int
    private let now: @Sendable () -> Double
    private let buckets = Mutex<[Key: Bucket]>([:])

    public init(maxBuckets: Int = 100_000, now: @escaping @Sendable () -> Double = RPCTokenBuckets.monotonicSeconds) {
        self.maxBuckets = maxBuckets
        self.now = now
    }

    @Sendable public static func monotonicSeconds() -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
    private static let start = ContinuousClock.now

    /// Takes one call from `caller`'s bucket of `rateClass`. Returns nil when the call may go
    /// ahead, else the seconds until one token is back.
    public func take(caller: String, _ rateClass: RPCRateClass) -> Double? {
        let now = self.now()
        let key = Key(caller: caller, rateClass: rateClass.name)
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(rateClass.burst), updated: now, fullAt: now)
            bucket.tokens = min(Double(rateClass.burst), bucket.tokens + (now - bucket.updated) * rateClass.perSecond)
            bucket.updated = now
            let wait: Double?
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                wait = nil
            } else {
                wait = (1 - bucket.tokens) / rateClass.perSecond
            }
            bucket.fullAt = now + (Double(rateClass.burst) - bucket.tokens) / rateClass.perSecond
            if buckets[key] == nil, buckets.count >= maxBuckets { buckets = buckets.filter { $0.value.fullAt > now } }
            buckets[key] = bucket
            return wait
        }
    }

    /// How many buckets are kept (for tests and metrics).
    public var count: Int { buckets.withLock { $0.count } }
}

extension RPCError.Code {
    /// A caller went over a method class's rate (`RPCRateLimitMiddleware`).
    public static let rateLimited = RPCError.Code(-32017)
    /// A caller already has a method class's `maxConcurrent` calls running.
    public static let tooManyCallsInProgress = RPCError.Code(-32018)
}

/// Calls running now, by caller and class (`RPCRateClass.maxConcurrent`).
final class RPCCallsInProgress: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Counts a call in, unless `limit` are already running.
    func enter(_ key: String, limit: Int) -> Bool {
        counts.withLock { counts in
            let running = counts[key] ?? 0
            guard running < limit else { return false }
            counts[key] = running + 1
            return true
        }
    }

    func leave(_ key: String) {
        counts.withLock { counts in
            let running = (counts[key] ?? 1) - 1
            counts[key] = running > 0 ? running : nil  // no entry for idle callers: bounded memory
        }
    }
}

/// Refuses calls over their caller's budget, before they run: a token bucket per caller and
/// method class (`RPCLimits.rateClasses`; a batch counts as its length, since every member passes
/// through here). Refused calls get `-32017 Rate limited` with `retryAfterMs`.
///
/// The policy lives here, not in handlers: which class a method is in (`classify`) and who the
/// caller is (`caller`, the signed-in user or else the peer uid) come from the composition root.
public struct RPCRateLimitMiddleware: RPCMiddleware {
    let buckets: RPCTokenBuckets
    let limits: RPCLimitsControl
    let classify: @Sendable (_ method: String) -> String?
    let caller: @Sendable (RPCContext) -> String
    private let inProgress = RPCCallsInProgress()

    public init(
        buckets: RPCTokenBuckets, limits: RPCLimitsControl, classify: @escaping @Sendable (String) -> String?,
        caller: @escaping @Sendable (RPCContext) -> String
    ) {
        self.buckets = buckets
        self.limits = limits
        self.classify = classify
        self.caller = caller
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        // Unknown methods cost nothing to refuse; the classes are read each time (SIGHUP).
        guard context.route != nil, let name = classify(context.method) else { return next(request, context) }
        let current = limits.current
        guard current.rateLimiting, let rateClass = current.rateClasses[name] else { return next(request, context) }
        let caller = caller(context)
        if let wait = buckets.take(caller: caller, rateClass) { return .now(.error(Self.error(rateClass, retryAfter: wait))) }
        guard let limit = rateClass.maxConcurrent else { return next(request, context) }
        let key = caller + "\u{1F}" + rateClass.name
        guard inProgress.enter(key, limit: limit) else { return .now(.error(Self.busy(rateClass, limit: limit))) }
        let reply = next(request, context)
        let inProgress = self.inProgress
        reply.whenComplete { _ in inProgress.leave(key) }
        return reply
    }

    static func busy(_ rateClass: RPCRateClass, limit: Int) -> RPCError {
        struct Data: Encodable {
            var rateClass: String
            var maxConcurrent: Int

            enum CodingKeys: String, CodingKey { case rateClass = "class", maxConcurrent }
        }
        return RPCError(.tooManyCallsInProgress, "Too many calls in progress", data: try? JSONFragment(encoding: Data(rateClass: rateClass.name, maxConcurrent: limit)))
    }

    static func error(_ rateClass: RPCRateClass, retryAfter seconds: Double) -> RPCError {
        struct Data: Encodable {
            var rateClass: String
            var perSecond: Double
            var burst: Int
            var retryAfterMs: Int

            enum CodingKeys: String, CodingKey { case rateClass = "class", perSecond, burst, retryAfterMs }
        }
        let data = Data(rateClass: rateClass.name, perSecond: rateClass.perSecond, burst: rateClass.burst, retryAfterMs: max(1, Int((seconds * 1000).rounded(.up))))
        return RPCError(.rateLimited, "Rate limited", data: try? JSONFragment(encoding: data))
    }
}
