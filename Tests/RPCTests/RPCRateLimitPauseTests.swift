import NIOCore
import NIOEmbedded
import Testing

@testable import RPC

/// The tarpit (issue 17): after a `-32017` the connection is not read, and what it already sent
/// does not run, until the refusal's `retryAfterMs` has passed (at most a second). A flooder that
/// resends at once gets one refusal per wait instead of one per message. In process: the buckets
/// and the event loop run on clocks the test moves.
@Suite("Rate-limit pause")
struct RPCRateLimitPauseTests {
    /// Counts the reads the connection handler asks of the channel (it sits between the handler
    /// and the socket).
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        // @unchecked: touched on the event loop only, and by the test after `submit`.
        typealias OutboundIn = Any
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    struct Setup {
        var connection: InProcessConnection
        var clock: RPCRateLimitTests.ManualClock
        var reads: ReadCounter
    }

    /// The fixtures' "read" class (`subtract`, `echo`, …) gets `perSecond` and `burst`; the other
    /// classes are not limited.
    static func setup(perSecond: Double, burst: Int, configure: (inout RPCLimits) -> Void = { _ in }) async throws -> Setup {
        var limits = RPCLimits()
        limits.rateClasses = ["read": RPCRateClass("read", perSecond: perSecond, burst: burst)]
        configure(&limits)
        let clock = RPCRateLimitTests.ManualClock()
        let middleware = RPCRateLimitMiddleware(
            buckets: RPCTokenBuckets(now: { clock.now }), limits: RPCLimitsControl(limits),
            caller: { _ in RPCRateCaller(uid: "uid:1") })
        let connection = try await InProcessConnection(limits: limits, middleware: [middleware])
        let counter = ReadCounter()
        let channel = connection.channel
        try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(counter, position: .first) }.get()
        return Setup(connection: connection, clock: clock, reads: counter)
    }

    static func subtract(_ id: Int) -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"subtract","params":[42,23]}"# + "\n"
    }

    /// Asks the handler to read, as NIO does after each read burst; returns how many reads reached
    /// the channel.
    static func askToRead(_ setup: Setup) async throws -> Int {
        let channel = setup.connection.channel
        let counter = setup.reads
        return try await channel.eventLoop.submit {
            channel.read()
            return counter.reads
        }.get()
    }

    @Test("after a -32017 nothing already sent runs and the connection is not read until retryAfterMs has passed")
    func pausedUntilRetryAfter() async throws {
        let setup = try await Self.setup(perSecond: 2, burst: 1)
        let connection = setup.connection
        let loop = connection.channel.testingEventLoop
        // A flooder: four calls at once, none waiting for its reply.
        try await connection.send((1...4).map(Self.subtract).joined())
        #expect(try await connection.nextJSON().at("result")?.int == 19)
        let refused = try await connection.nextJSON()
        #expect(refused.at("id")?.int == 2 && refused.at("error.code")?.int == -32017, "\(refused)")
        #expect(refused.at("error.data.retryAfterMs")?.int == 500)
        try await connection.expectNothingWritten()
        let readsBefore = setup.reads.reads
        #expect(try await Self.askToRead(setup) == readsBefore, "a throttled connection is not read")

        await loop.advanceTime(by: .milliseconds(499))
        try await connection.expectNothingWritten()
        // The wait is over: the next message runs (refused again: the bucket's clock stood still),
        // and only that one.
        await loop.advanceTime(by: .milliseconds(1))
        let again = try await connection.nextJSON()
        #expect(again.at("id")?.int == 3 && again.at("error.code")?.int == -32017, "\(again)")
        try await connection.expectNothingWritten()
        #expect(try await Self.askToRead(setup) == readsBefore)

        // Half a second later a token is back: the last message runs, and the connection is read
        // again (the read asked for while paused).
        setup.clock.advance(0.5)
        await loop.advanceTime(by: .milliseconds(500))
        let served = try await connection.nextJSON()
        #expect(served.at("id")?.int == 4 && served.at("result")?.int == 19, "\(served)")
        #expect(setup.reads.reads == readsBefore + 1)
        #expect(try await Self.askToRead(setup) == readsBefore + 2)
    }

    @Test("a flooder that never waits gets one refusal per pause: 1,000 calls over 5 s of a 2-per-second class answer 11 and refuse 11")
    func flooderRefusedOncePerPause() async throws {
        let setup = try await Self.setup(perSecond: 2, burst: 1)
        let connection = setup.connection
        let loop = connection.channel.testingEventLoop
        try await connection.send((1...1000).map(Self.subtract).joined())
        var served = 0
        var refused = 0
        func collect() async throws {
            while let buffer = try await connection.channel.readOutbound(as: ByteBuffer.self) {
                let text = String(buffer: buffer)
                served += text.components(separatedBy: #""result":19"#).count - 1
                refused += text.components(separatedBy: "-32017").count - 1
            }
        }
        try await collect()
        // Steps of 125 ms: exact in binary, so the bucket refills exactly when the pause ends.
        for _ in 0..<40 {
            setup.clock.advance(0.125)
            await loop.advanceTime(by: .milliseconds(125))
            try await collect()
        }
        // Each pause ends as the next token is back: one refusal, then one call served, per 500 ms.
        #expect(served == 11, "served \(served)")
        #expect(refused == 11, "refused \(refused)")
    }

    @Test("the pause is at most a second, whatever retryAfterMs says")
    func pauseCapped() async throws {
        let setup = try await Self.setup(perSecond: 0.1, burst: 1)
        let connection = setup.connection
        let loop = connection.channel.testingEventLoop
        try await connection.send((1...3).map(Self.subtract).joined())
        #expect(try await connection.nextJSON().at("result")?.int == 19)
        #expect(try await connection.nextJSON().at("error.data.retryAfterMs")?.int == 10_000)
        await loop.advanceTime(by: .milliseconds(999))
        try await connection.expectNothingWritten()
        await loop.advanceTime(by: .milliseconds(1))
        #expect(try await connection.nextJSON().at("id")?.int == 3)
    }

    @Test("a batch with refused members is answered whole; the message after it waits for the pause")
    func batchThenPause() async throws {
        let setup = try await Self.setup(perSecond: 2, burst: 3)
        let connection = setup.connection
        let loop = connection.channel.testingEventLoop
        let members = (1...5).map { Self.subtract($0).dropLast() }.joined(separator: ",")
        try await connection.send("[\(members)]\n" + Self.subtract(6) + #"{"jsonrpc":"2.0","id":7,"method":"echo","params":{}}"# + "\n")
        guard case .array(let replies) = try await connection.nextJSON() else {
            Issue.record("not a batch reply")
            return
        }
        #expect(replies.count == 5)
        #expect(replies.filter { $0.at("result")?.int == 19 }.count == 3)
        #expect(replies.filter { $0.at("error.code")?.int == -32017 }.count == 2)
        // Not even the next call runs meanwhile: it was read after the refusal.
        try await connection.expectNothingWritten()
        setup.clock.advance(0.5)
        await loop.advanceTime(by: .milliseconds(500))
        #expect(try await connection.nextJSON().at("id")?.int == 6)
        #expect(try await connection.nextJSON().at("id")?.int == 7)
    }

    @Test("input closed while paused: the messages held still run after the pause, then the connection closes")
    func inputClosedWhilePaused() async throws {
        let setup = try await Self.setup(perSecond: 2, burst: 1)
        let connection = setup.connection
        let channel = connection.channel
        try await connection.send((1...3).map(Self.subtract).joined())
        #expect(try await connection.nextJSON().at("id")?.int == 1)
        #expect(try await connection.nextJSON().at("error.code")?.int == -32017)
        try await channel.eventLoop.submit { channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }.get()
        try await connection.expectNothingWritten()
        #expect(channel.isActive, "closed with a message not answered")
        setup.clock.advance(0.5)
        await channel.testingEventLoop.advanceTime(by: .milliseconds(500))
        let served = try await connection.nextJSON()
        #expect(served.at("id")?.int == 3 && served.at("result")?.int == 19, "\(served)")
        try await channel.closeFuture.get()
    }

    @Test("calls that run are not paused, and an unlimited method never starts a pause")
    func noPauseWithoutRefusal() async throws {
        let setup = try await Self.setup(perSecond: 2, burst: 100)
        let connection = setup.connection
        try await connection.send((1...50).map(Self.subtract).joined())
        for id in 1...50 { #expect(try await connection.nextJSON().at("id")?.int == id) }
        let reads = try await Self.askToRead(setup)
        #expect(try await Self.askToRead(setup) == reads + 1)
    }
}
