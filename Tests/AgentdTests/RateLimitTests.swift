import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// Rate limits through the daemon's dispatcher, in process: a class's budget is per caller, a
/// batch spends its length, exempt methods always answer, and the refusal says when to retry.
/// The token buckets run on the fixture's `TestClock` and the rate-limit pause on the channel's
/// event loop: a budget refills and a pause ends only when the test moves them, so no count depends
/// on how fast the machine is.
@Suite("Rate limits (in process)", .timeLimit(.minutes(1)))
struct RateLimitTests {
    /// The test runs as the daemon's own uid, exempt by default: the exemption is turned off.
    static func daemon<T: Sendable>(_ body: (InProcessDaemon) async throws -> T) async throws -> T {
        try await withInProcessDaemon(
            configure: {
                $0.enableTestMethods = false
                $0.limits.rateLimiting = true
                $0.limits.rateExemptUIDs = []
                $0.limits.rateClasses["read"] = RPCRateClass("read", perSecond: 1, burst: 3)
            }, body)
    }

    static func code(_ error: RPCError?) -> Int? { error.map { Int($0.code.rawValue) } }

    @Test("a burst of reads passes, the next is refused with -32017 and retryAfterMs; pings are never limited")
    func burstThenRefused() async throws {
        try await Self.daemon { daemon in
            let client = try await daemon.connect()
            for _ in 1...3 { _ = try await client.send(Modules.List.self, .init()) }
            let refused = await #expect(throws: RPCError.self) { try await client.send(Modules.List.self, .init()) }
            #expect(Self.code(refused) == -32017, "\(String(describing: refused))")
            #expect(refused?.dataValue?["class"]?.stringValue == "read")
            let wait = try #require(refused?.dataValue?["retryAfterMs"]?.intValue)
            #expect(wait > 0 && wait <= 1000)
            // The budget is the caller's, not the connection's: another connection of the same uid
            // shares it.
            let other = try await daemon.connect()
            let shared = await #expect(throws: RPCError.self) { try await other.send(Modules.List.self, .init()) }
            #expect(Self.code(shared) == -32017)
            // Exempt and other classes are untouched (answered once the pause after -32017 ends).
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(Int64(wait)))
            #expect(try await client.send(System.Ping.self) == "pong")
            _ = try await client.send(Modules.Create.self, .init(title: "t"))
            // Reads come back at the class's rate: none before a second has passed, one after.
            let still = await #expect(throws: RPCError.self) { try await client.send(Modules.List.self, .init()) }
            #expect(Self.code(still) == -32017)
            daemon.clock.advance(by: 1)
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(1000))
            _ = try await client.send(Modules.List.self, .init())
        }
    }

    @Test("a batch spends its length: of 5 reads in one batch, 3 run and 2 are refused")
    func batchCountsItsLength() async throws {
        try await Self.daemon { daemon in
            let client = try await daemon.connect()
            let calls = (1...5).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.list"}"# }.joined(separator: ",")
            try await client.write("[\(calls)]\n")
            let replies = try #require(try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self).arrayValue)
            #expect(replies.count == 5)
            #expect(replies.filter { $0["result"] != nil }.count == 3)
            #expect(replies.filter { $0["error"]?["code"]?.intValue == -32017 }.count == 2)
        }
    }

    /// The tarpit: after a -32017 the daemon stops reading the connection until `retryAfterMs` has
    /// passed, so a client that resends at once is not answered at once (with the exact timings:
    /// RPCRateLimitPauseTests).
    @Test("a flooder that ignores retryAfterMs: of 1,000 pipelined reads, 3 are served and 1 refused, then nothing until the pause ends")
    func flooderPaused() async throws {
        try await Self.daemon { daemon in
            let client = try await daemon.connect()
            try await client.write((1...1000).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.list"}"# + "\n" }.joined())
            // The refusal is answered at once, the reads when the store answers: in any order.
            var first: [JSONValue] = []
            for _ in 1...4 { first.append(try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self)) }
            first.sort { ($0["id"]?.intValue ?? 0) < ($1["id"]?.intValue ?? 0) }
            #expect(first.map { $0["id"]?.intValue } == [1, 2, 3, 4])
            #expect(first[3]["error"]?["code"]?.intValue == -32017, "\(first[3])")
            let wait = try #require(first[3]["error"]?["data"]?["retryAfterMs"]?.intValue)
            // Without the pause, 996 more refusals would follow at once.
            await Self.expectNothing(from: client, "answered while paused")
            // A second later a token is back and the pause is over: the next read runs and the one
            // after it is refused and paused again.
            daemon.clock.advance(by: 1)
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(Int64(wait)))
            var next: [Int] = []
            for _ in 1...2 { next.append(try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self)["id"]?.intValue ?? 0) }
            #expect(next.sorted() == [5, 6])
            await Self.expectNothing(from: client, "answered while paused again")
        }
    }

    /// Nothing arrives: the paused connection's event loop does not move on its own, so a short
    /// wait is enough to see a reply that should not be there.
    static func expectNothing(from client: InProcessClient, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) async {
        let message = try? await client.nextMessage(timeout: .milliseconds(100))
        #expect(message == nil, comment, sourceLocation: sourceLocation)
    }

    /// Another uid has a budget of its own (HostileClientTests.accountsShareTheUIDsBudget); a
    /// second account signed in from the same uid does not (issue 17).
    @Test("another account signed in from the same uid shares the uid's budget")
    func perUser() async throws {
        try await Self.daemon { daemon in
            let bob = try await daemon.connect()
            let credentials = Auth.Credentials(username: "bob", password: "correct horse")
            _ = try await bob.send(Auth.Register.self, credentials)
            let login = try await bob.send(Auth.Login.self, credentials)
            #expect(!login.token.isEmpty)

            let client = try await daemon.connect()
            for _ in 1...3 { _ = try await client.send(Modules.List.self, .init()) }
            let refused = await #expect(throws: RPCError.self) { try await client.send(Modules.List.self, .init()) }
            #expect(Self.code(refused) == -32017)
            let bobRefused = await #expect(throws: RPCError.self) { try await bob.send(Modules.List.self, .init()) }
            #expect(Self.code(bobRefused) == -32017)
        }
    }
}
