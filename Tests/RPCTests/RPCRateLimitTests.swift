import Synchronization
import Testing

@testable import RPC

/// Token buckets on a clock the test moves: a budget is spent, refused with the exact wait, and
/// back after that wait, with no sleeping.
@Suite("Rate limits")
struct RPCRateLimitTests {
    final class ManualClock: Sendable {
        private let seconds = Mutex(1000.0)
        var now: Double { seconds.withLock { $0 } }
        func advance(_ by: Double) { seconds.withLock { $0 += by } }
    }

    static let reads = RPCRateClass("read", perSecond: 2, burst: 3)

    @Test("a burst is allowed, the next call waits exactly until a token is back, then is allowed")
    func reachedAndRecovered() {
        let clock = ManualClock()
        let buckets = RPCTokenBuckets(now: { clock.now })
        for _ in 0..<3 { #expect(buckets.take(caller: "usr_a", Self.reads) == nil) }
        #expect(buckets.take(caller: "usr_a", Self.reads) == 0.5)
        clock.advance(0.25)
        #expect(buckets.take(caller: "usr_a", Self.reads) == 0.25)
        clock.advance(0.25)
        #expect(buckets.take(caller: "usr_a", Self.reads) == nil)
        #expect(buckets.take(caller: "usr_a", Self.reads) == 0.5)
        // Refills to the burst, never beyond it.
        clock.advance(3600)
        for _ in 0..<3 { #expect(buckets.take(caller: "usr_a", Self.reads) == nil) }
        #expect(buckets.take(caller: "usr_a", Self.reads) != nil)
    }

    @Test("callers and classes have budgets of their own")
    func separateBudgets() {
        let clock = ManualClock()
        let buckets = RPCTokenBuckets(now: { clock.now })
        for _ in 0..<3 { _ = buckets.take(caller: "usr_a", Self.reads) }
        #expect(buckets.take(caller: "usr_a", Self.reads) != nil)
        #expect(buckets.take(caller: "usr_b", Self.reads) == nil)
        #expect(buckets.take(caller: "usr_a", RPCRateClass("write", perSecond: 1, burst: 1)) == nil)
    }

    @Test("memory is bounded: past maxBuckets, buckets that refilled are forgotten")
    func bounded() {
        let clock = ManualClock()
        let buckets = RPCTokenBuckets(maxBuckets: 10, now: { clock.now })
        for n in 0..<10 { _ = buckets.take(caller: "usr_\(n)", Self.reads) }
        clock.advance(10)  // all full again
        for n in 10..<15 { _ = buckets.take(caller: "usr_\(n)", Self.reads) }
        #expect(buckets.count <= 10)
        // Callers still mid-burst are kept: usr_14 is still refused after its burst.
        for _ in 0..<2 { _ = buckets.take(caller: "usr_14", Self.reads) }
        #expect(buckets.take(caller: "usr_14", Self.reads) != nil)
    }

    @Test("eviction keeps a slow class's spent bucket even when a fast class's buckets are full again")
    func evictionPerBucket() {
        let clock = ManualClock()
        let buckets = RPCTokenBuckets(maxBuckets: 2, now: { clock.now })
        let logins = RPCRateClass("auth", perSecond: 0.1, burst: 1)
        #expect(buckets.take(caller: "usr_a", logins) == nil)  // spent: full again only after 10 s
        _ = buckets.take(caller: "usr_b", Self.reads)
        clock.advance(2)  // usr_b's read bucket is full again, usr_a's login bucket is not
        _ = buckets.take(caller: "usr_c", Self.reads)
        #expect(buckets.take(caller: "usr_a", logins) != nil)
    }

    @Test("the refusal names the class, its rate and the wait in whole milliseconds, rounded up")
    func error() throws {
        let error = RPCRateLimitMiddleware.error(Self.reads, retryAfter: 0.2501)
        #expect(error.code == .rateLimited)
        #expect(error.data?.text == #"{"burst":3,"class":"read","cost":1,"perSecond":2,"retryAfterMs":251}"#)
    }
}

/// A class's `maxConcurrent` through the connection engine: the call over the limit is refused at
/// once, and once a running call answers the next is accepted.
@Suite("Calls in progress per caller")
struct RPCConcurrencyLimitTests {
    @Test("with maxConcurrent 1, a second long call is refused with -32018 until the first answers")
    func concurrency() async throws {
        var limits = RPCLimits()
        limits.rateClasses = ["agent": RPCRateClass("agent", perSecond: 1000, burst: 1000, maxConcurrent: 1)]
        let control = RPCLimitsControl(limits)
        let middleware = RPCRateLimitMiddleware(
            buckets: RPCTokenBuckets(), limits: control, caller: { _ in RPCRateCaller(uid: "uid:1", account: "usr_a") })
        let connection = try await InProcessConnection(limits: limits, middleware: [middleware])
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"wait","params":{"gate":"a"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","id":2,"method":"wait","params":{"gate":"b"}}"# + "\n")
        let refused = try await connection.nextJSON()
        #expect(refused.at("id")?.int == 2 && refused.at("error.code")?.int == -32018, "\(refused)")
        #expect(refused.at("error.data.maxConcurrent")?.int == 1)
        await connection.gates.open("a")
        #expect(try await connection.nextJSON().at("result")?.string == "a")
        await connection.gates.open("c")
        try await connection.send(#"{"jsonrpc":"2.0","id":3,"method":"wait","params":{"gate":"c"}}"# + "\n")
        #expect(try await connection.nextJSON().at("result")?.string == "c")
    }

    @Test("two accounts of one uid share the uid's maxConcurrent: the second account's call is refused while the first runs")
    func accountsShareTheUIDsConcurrency() async throws {
        var limits = RPCLimits()
        limits.rateClasses = ["agent": RPCRateClass("agent", perSecond: 1000, burst: 1000, maxConcurrent: 1)]
        let control = RPCLimitsControl(limits)
        let calls = Mutex(0)
        let middleware = RPCRateLimitMiddleware(
            buckets: RPCTokenBuckets(), limits: control,
            caller: { _ in
                RPCRateCaller(
                    uid: "uid:1",
                    account: calls.withLock {
                        $0 += 1
                        return "usr_\($0)"
                    })
            })
        let connection = try await InProcessConnection(limits: limits, middleware: [middleware])
        try await connection.send(#"{"jsonrpc":"2.0","id":1,"method":"wait","params":{"gate":"a"}}"# + "\n")
        try await connection.send(#"{"jsonrpc":"2.0","id":2,"method":"wait","params":{"gate":"b"}}"# + "\n")
        let refused = try await connection.nextJSON()
        #expect(refused.at("id")?.int == 2 && refused.at("error.code")?.int == -32018, "\(refused)")
        await connection.gates.open("a")
        #expect(try await connection.nextJSON().at("result")?.string == "a")
    }

    @Test("calls charge the uid and the account together: a refusal costs neither")
    func twoBuckets() {
        let buckets = RPCTokenBuckets(now: { 1000 })
        let reads = RPCRateClass("read", perSecond: 1, burst: 2)
        #expect(buckets.take(caller: "uid:1", also: "usr_a", reads) == nil)
        #expect(buckets.take(caller: "uid:1", also: "usr_b", reads) == nil)
        // The uid is spent: usr_c, fresh, is refused, and its bucket keeps its tokens.
        #expect(buckets.take(caller: "uid:1", also: "usr_c", reads) == 1)
        #expect(buckets.take(caller: "uid:2", also: "usr_c", reads) == nil)
        #expect(buckets.take(caller: "uid:3", also: "usr_c", reads) == nil)
        #expect(buckets.take(caller: "uid:4", also: "usr_c", reads) == 1)
    }
}
