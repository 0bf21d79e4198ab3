import Testing

@testable import RPC

/// Issue 17: a call costs 1 token plus 1 per full `RPCLimits.rateBytesPerToken` of its params, so
/// that big messages are limited by bytes as well as by count. Buckets on a clock the test moves.
@Suite("Rate limits weighted by size")
struct RPCRateLimitCostTests {
    static let writes = RPCRateClass("write", perSecond: 10, burst: 20)

    @Test("a call's cost is 1 plus 1 per full 64 KiB of params, at most the burst; 0 bytes per token counts 1 per call")
    func cost() {
        #expect(Self.writes.cost(paramsBytes: 0, bytesPerToken: 65536) == 1)
        #expect(Self.writes.cost(paramsBytes: 65535, bytesPerToken: 65536) == 1)
        #expect(Self.writes.cost(paramsBytes: 65536, bytesPerToken: 65536) == 2)
        #expect(Self.writes.cost(paramsBytes: 1 << 20, bytesPerToken: 65536) == 17)
        #expect(Self.writes.cost(paramsBytes: 16 << 20, bytesPerToken: 65536) == 20)
        #expect(Self.writes.cost(paramsBytes: 16 << 20, bytesPerToken: 0) == 1)
    }

    @Test("a 17-token call leaves 3 of a burst of 20: three small calls pass, the next is refused")
    func bigCallSpendsItsCost() {
        let clock = RPCRateLimitTests.ManualClock()
        let buckets = RPCTokenBuckets(now: { clock.now })
        #expect(buckets.take(caller: "uid:1", also: nil, Self.writes, cost: 17) == nil)
        for _ in 0..<3 { #expect(buckets.take(caller: "uid:1", Self.writes) == nil) }
        #expect(buckets.take(caller: "uid:1", Self.writes) == 0.1)
    }

    @Test("a refused big call waits until its whole cost is back, and a refusal costs nothing")
    func retryAfterIsTheTimeToEarnTheCost() {
        let clock = RPCRateLimitTests.ManualClock()
        let buckets = RPCTokenBuckets(now: { clock.now })
        let writes = RPCRateClass("write", perSecond: 4, burst: 20)  // times exact in binary
        #expect(buckets.take(caller: "uid:1", also: nil, writes, cost: 17) == nil)
        // 3 tokens left: 14 more at 4/s.
        #expect(buckets.take(caller: "uid:1", also: nil, writes, cost: 17) == 3.5)
        clock.advance(3.0)
        #expect(buckets.take(caller: "uid:1", also: nil, writes, cost: 17) == 0.5)
        clock.advance(0.5)
        #expect(buckets.take(caller: "uid:1", also: nil, writes, cost: 17) == nil)
    }

    @Test("a call costing more than the burst passes once the bucket is full, and empties it")
    func biggerThanTheBurst() {
        let clock = RPCRateLimitTests.ManualClock()
        let buckets = RPCTokenBuckets(now: { clock.now })
        #expect(buckets.take(caller: "uid:1", also: nil, Self.writes, cost: 1000) == nil)
        #expect(buckets.take(caller: "uid:1", also: nil, Self.writes, cost: 1000) == 2.0)
        clock.advance(2.0)
        #expect(buckets.take(caller: "uid:1", also: nil, Self.writes, cost: 1000) == nil)
        #expect(buckets.take(caller: "uid:1", Self.writes) == 0.1)
    }

    /// The fixtures' `echo` (class "read") through the connection engine with a 1 MiB param.
    static func connection(bytesPerToken: Int) async throws -> InProcessConnection {
        var limits = RPCLimits()
        limits.rateClasses = ["read": RPCRateClass("read", perSecond: 10, burst: 20)]
        limits.rateBytesPerToken = bytesPerToken
        let clock = RPCRateLimitTests.ManualClock()
        let middleware = RPCRateLimitMiddleware(
            buckets: RPCTokenBuckets(now: { clock.now }), limits: RPCLimitsControl(limits),
            caller: { _ in RPCRateCaller(uid: "uid:1") })
        return try await InProcessConnection(limits: limits, middleware: [middleware])
    }

    static func echo(_ id: Int, bytes: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"echo","params":["\#(String(repeating: "x", count: bytes))"]}"# + "\n"
    }

    @Test("through the middleware, 1 MiB of params costs 17: it and 3 small calls pass, the next is refused with cost and retryAfterMs")
    func middlewareChargesBySize() async throws {
        let connection = try await Self.connection(bytesPerToken: 65536)
        try await connection.send(Self.echo(1, bytes: 1 << 20))
        #expect(try await connection.nextJSON().at("result") != nil)
        for id in 2...4 {
            try await connection.send(Self.echo(id, bytes: 1))
            #expect(try await connection.nextJSON().at("result") != nil, "call \(id)")
        }
        try await connection.send(Self.echo(5, bytes: 1 << 20))
        let refused = try await connection.nextJSON()
        #expect(refused.at("error.code")?.int == -32017, "\(refused)")
        #expect(refused.at("error.data.cost")?.int == 17)
        #expect(refused.at("error.data.retryAfterMs")?.int == 1700)
    }

    @Test("with rateBytesPerToken 0, a 1 MiB call costs 1 like any other")
    func weightingOff() async throws {
        let connection = try await Self.connection(bytesPerToken: 0)
        for id in 1...20 {
            try await connection.send(Self.echo(id, bytes: id == 1 ? 1 << 20 : 1))
            #expect(try await connection.nextJSON().at("result") != nil, "call \(id)")
        }
        try await connection.send(Self.echo(21, bytes: 1 << 20))
        let refused = try await connection.nextJSON()
        #expect(refused.at("error.code")?.int == -32017, "\(refused)")
        #expect(refused.at("error.data.cost")?.int == 1)
        #expect(refused.at("error.data.retryAfterMs")?.int == 100)
    }
}
