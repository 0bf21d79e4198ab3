import Synchronization

/// The rate class a method is in (`RPCMethod.rateClass`): which of `RPCLimits.rateClasses` its
/// calls spend, by the class's name.
public enum RPCRateClassName: String, Sendable, CaseIterable {
    /// Never limited: the protocol's own methods, liveness checks and what ends work (signing out,
    /// unsubscribing, cancelling a run).
    case exempt
    /// Reads of one item or one page.
    case read
    /// Changes: creating, updating, deleting, renaming, appending, selecting, subscribing.
    case write
    /// Calls whose cost grows with the data (full-text search, whole transcripts, history scans).
    case expensive
    /// Passwords and tokens: guessing them is what a limit must make slow.
    case auth
    /// New accounts: each one would be a budget of its own were calls not also charged to the uid;
    /// a few at once, then one a minute per uid.
    case register
    /// Long calls that a user runs a few of at once (`RPCRateClass.maxConcurrent`).
    case agent
    /// File content sent over the socket (`files.upload.chunk`): a budget of bytes of its own, so
    /// that an upload goes at disk speed without spending the caller's `write` budget, and a
    /// stream of chunks cannot starve their other writes.
    case upload
}

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

    /// What a call with `paramsBytes` of params costs, in tokens: 1, plus 1 per full
    /// `bytesPerToken` (0: every call costs 1), so that big messages are limited by bytes as well
    /// as by count. At most `burst`: a call bigger than that still passes once the bucket is full.
    public func cost(paramsBytes: Int, bytesPerToken: Int) -> Int {
        guard bytesPerToken > 0 else { return 1 }
        return min(burst, 1 + paramsBytes / bytesPerToken)
    }
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
        take(caller: caller, also: nil, rateClass)
    }

    /// Takes a call costing `cost` tokens (`RPCRateClass.cost`; at most the burst, so that any
    /// call can pass once the bucket is full) from the buckets of `caller` and of `other` (when
    /// given) at once: the call goes ahead only if both hold its cost, and then spends it from
    /// each; a refused call costs neither. Returns nil when the call may go ahead, else the
    /// seconds until both hold its cost.
    public func take(caller: String, also other: String?, _ rateClass: RPCRateClass, cost: Int = 1) -> Double? {
        let cost = Double(min(max(cost, 1), rateClass.burst))
        let now = self.now()
        let key = Key(caller: caller, rateClass: rateClass.name)
        let otherKey = other.map { Key(caller: $0, rateClass: rateClass.name) }
        return buckets.withLock { buckets in
            var bucket = Self.refilled(buckets[key], rateClass, now: now)
            var otherBucket = otherKey.map { Self.refilled(buckets[$0], rateClass, now: now) }
            let shortfall = max(cost - bucket.tokens, cost - (otherBucket?.tokens ?? cost))
            let wait: Double?
            if shortfall <= 0 {
                bucket.tokens -= cost
                otherBucket?.tokens -= cost
                wait = nil
            } else {
                wait = shortfall / rateClass.perSecond
            }
            store(bucket, at: key, rateClass, now: now, in: &buckets)
            if let otherKey, let otherBucket { store(otherBucket, at: otherKey, rateClass, now: now, in: &buckets) }
            return wait
        }
    }

    private static func refilled(_ stored: Bucket?, _ rateClass: RPCRateClass, now: Double) -> Bucket {
        var bucket = stored ?? Bucket(tokens: Double(rateClass.burst), updated: now, fullAt: now)
        bucket.tokens = min(Double(rateClass.burst), bucket.tokens + (now - bucket.updated) * rateClass.perSecond)
        bucket.updated = now
        return bucket
    }

    private func store(_ bucket: Bucket, at key: Key, _ rateClass: RPCRateClass, now: Double, in buckets: inout [Key: Bucket]) {
        var bucket = bucket
        bucket.fullAt = now + (Double(rateClass.burst) - bucket.tokens) / rateClass.perSecond
        if buckets[key] == nil, buckets.count >= maxBuckets { buckets = buckets.filter { $0.value.fullAt > now } }
        buckets[key] = bucket
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

/// Who a call is charged to (`RPCRateLimitMiddleware`): its peer uid's budget always, and also the
/// account's when the connection signed in with a password or token. Accounts then cannot
/// multiply a uid's budget, and one account used from several uids has one budget too.
public struct RPCRateCaller: Sendable {
    public var uid: String
    public var account: String?

    public init(uid: String, account: String? = nil) {
        self.uid = uid
        self.account = account
    }
}

/// Refuses calls over their caller's budget, before they run: a token bucket per caller and
/// method class (`RPCLimits.rateClasses`; a batch counts as its length, since every member passes
/// through here, each against its own method's class). A call costs 1 token plus 1 per full
/// `RPCLimits.rateBytesPerToken` of its params (`RPCRateClass.cost`), so that a client sending
/// megabytes as fast as it is answered is limited by what it makes the daemon parse. Refused calls
/// get `-32017 Rate limited` with `cost` and `retryAfterMs`. Calls from the peer uids of `RPCLimits.rateExemptUIDs` are never limited.
///
/// The policy lives here, not in handlers: which class a method is in is declared by its type
/// (`RPCMethod.rateClass`, on the call's route), and who the caller is (`caller`: the peer uid and
/// the signed-in account) comes from the composition root.
public struct RPCRateLimitMiddleware: RPCMiddleware {
    let buckets: RPCTokenBuckets
    let limits: RPCLimitsControl
    let caller: @Sendable (RPCContext) -> RPCRateCaller
    private let inProgress = RPCCallsInProgress()

    public init(buckets: RPCTokenBuckets, limits: RPCLimitsControl, caller: @escaping @Sendable (RPCContext) -> RPCRateCaller) {
        self.buckets = buckets
        self.limits = limits
        self.caller = caller
    }

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        // Unknown methods cost nothing to refuse; the classes are read each time (SIGHUP).
        guard let route = context.route, route.rateClass != .exempt else { return next(request, context) }
        let current = limits.current
        guard current.rateLimiting, let rateClass = current.rateClasses[route.rateClass.rawValue] else { return next(request, context) }
        if let uid = context.connection.peer?.uid, current.rateExemptUIDs.contains(uid) { return next(request, context) }
        let caller = caller(context)
        let cost = rateClass.cost(paramsBytes: request.params?.readableBytes ?? 0, bytesPerToken: current.rateBytesPerToken)
        if let wait = buckets.take(caller: caller.uid, also: caller.account, rateClass, cost: cost) {
            return .now(.error(Self.error(rateClass, cost: cost, retryAfter: wait)))
        }
        guard let limit = rateClass.maxConcurrent else { return next(request, context) }
        // Both the uid and the account hold a running call: N accounts from one uid still run
        // `limit` at once in all.
        let keys = [caller.uid + "\u{1F}" + rateClass.name] + (caller.account.map { [$0 + "\u{1F}" + rateClass.name] } ?? [])
        var entered: [String] = []
        for key in keys {
            guard inProgress.enter(key, limit: limit) else {
                for key in entered { inProgress.leave(key) }
                return .now(.error(Self.busy(rateClass, limit: limit)))
            }
            entered.append(key)
        }
        let reply = next(request, context)
        let inProgress = self.inProgress
        reply.whenComplete { _ in for key in keys { inProgress.leave(key) } }
        return reply
    }

    static func busy(_ rateClass: RPCRateClass, limit: Int) -> RPCError {
        struct Data: Encodable {
            var rateClass: String
            var maxConcurrent: Int

            enum CodingKeys: String, CodingKey {
                case rateClass = "class"
                case maxConcurrent
            }
        }
        return RPCError(
            .tooManyCallsInProgress, "Too many calls in progress",
            data: try? JSONFragment(encoding: Data(rateClass: rateClass.name, maxConcurrent: limit)))
    }

    /// The refusal of a call costing `cost` tokens, to retry after `seconds` (the time to earn
    /// that cost back).
    static func error(_ rateClass: RPCRateClass, cost: Int = 1, retryAfter seconds: Double) -> RPCError {
        struct Data: Encodable {
            var rateClass: String
            var perSecond: Double
            var burst: Int
            var cost: Int
            var retryAfterMs: Int

            enum CodingKeys: String, CodingKey {
                case rateClass = "class"
                case perSecond, burst, cost, retryAfterMs
            }
        }
        let data = Data(
            rateClass: rateClass.name, perSecond: rateClass.perSecond, burst: rateClass.burst, cost: cost,
            retryAfterMs: max(1, Int((seconds * 1000).rounded(.up))))
        return RPCError(.rateLimited, "Rate limited", data: try? JSONFragment(encoding: data))
    }

    /// The wait a refusal of `error(_:retryAfter:)` announces (nil for any other error). Decoded
    /// once per refusal, never for a call that runs.
    static func retryAfter(of error: RPCError) -> Duration? {
        struct Data: Decodable { var retryAfterMs: Int }
        guard error.code == .rateLimited, let data = try? error.data?.decode(Data.self) else { return nil }
        return .milliseconds(data.retryAfterMs)
    }
}
