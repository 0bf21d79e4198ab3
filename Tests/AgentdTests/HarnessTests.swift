import Foundation
import Testing

/// The comparisons the live tests rely on, checked without a daemon: an equality that always said
/// "equal" would make every other test pass vacuously.
@Suite("Test harness")
struct HarnessTests {
    @Test func jsonComparesByMeaning() throws {
        #expect(try JSON(parsing: #"{"a": 1, "b": [true, null]}"#) == JSON(parsing: #"{"b":[true,null],"a":1.0}"#))
        #expect(try JSON(parsing: "1.50") == JSON(parsing: "1.5"))
        #expect(try JSON(parsing: #""x""#) == .string("x"))
    }

    @Test func jsonTellsValuesApart() throws {
        #expect(try JSON(parsing: "1") != JSON(parsing: "true"))
        #expect(try JSON(parsing: "0") != JSON(parsing: "false"))
        #expect(try JSON(parsing: "null") != JSON(parsing: "0"))
        #expect(try JSON(parsing: "[1,2]") != JSON(parsing: "[2,1]"))
        #expect(try JSON(parsing: #"{"a":1}"#) != JSON(parsing: #"{"a":1,"b":2}"#))
        #expect(try JSON(parsing: #""1""#) != JSON(parsing: "1"))
        #expect(try JSON(parsing: "9007199254740993") != JSON(parsing: "9007199254740992"))
        #expect(try JSON(parsing: "true") == .bool(true))
    }

    @Test func errorDataIsIgnoredOnlyInErrors() throws {
        let reply = try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found","data":{"method":"x"}}}"#)
        #expect(reply.withoutErrorData == (try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#)))
        let result = try JSON(parsing: #"{"jsonrpc":"2.0","id":1,"result":{"data":1}}"#)
        #expect(result.withoutErrorData == result)
    }

    @Test func firstDifferenceNamesThePath() throws {
        let a = try JSON(parsing: #"{"methods":[{"name":"a"},{"name":"b"}],"x":1}"#)
        let b = try JSON(parsing: #"{"methods":[{"name":"a"},{"name":"c"}],"x":1}"#)
        #expect(a.firstDifference(from: a) == nil)
        #expect(a.firstDifference(from: b) == #"$.methods[1].name: "b" vs "c""#)
    }

    @Test func theDaemonBinaryExists() {
        #expect(
            FileManager.default.isExecutableFile(atPath: TestPaths.agentdBinary),
            "agentd not found at \(TestPaths.agentdBinary): build it, or set AGENTD_BINARY")
    }

    @Test func rawMemberReturnsTheBytesAsSent() {
        let line = #"{"jsonrpc":"2.0","id":1.50,"result":{"a": [1, "}]"], "b":"\"x"},"z":null}"#
        #expect(rawMember("id", in: line) == "1.50")
        #expect(rawMember("result", in: line) == #"{"a": [1, "}]"], "b":"\"x"}"#)
        #expect(rawMember("z", in: line) == "null")
        #expect(rawMember("missing", in: line) == nil)
        #expect(rawMember("id", in: #"{ "id" : "abc" }"#) == #""abc""#)
    }
}

/// The `.blockingIO` trait and the gate behind `.blockingIOAlone`: a live test that would block the
/// cooperative pool is refused, and a test that runs alone has no live test beside it.
@Suite("Blocking-I/O harness")
struct BlockingIOHarnessTests {
    @Test("without the trait, the harness refuses to block: a test on the cooperative pool fails at once")
    func refusedOnThePool() async {
        #expect(throws: HarnessError.self) { try requireBlockingIOThread("a test without .blockingIO") }
    }

    @Test("with the trait, the test body runs on a thread of the blocking executor, before and after an await", .blockingIO)
    func bodyRunsOffThePool() async throws {
        try requireBlockingIOThread("a .blockingIO test")
        await Task.yield()
        try requireBlockingIOThread("a .blockingIO test after an await")
        // A blocking wait on work that needs the pool: it finishes (here the pool is free).
        let value = blockingAwait {
            await Task.yield()
            return 42
        }
        #expect(value == 42)
    }

    /// Waits (yielding, up to a deadline) until `gate`'s state satisfies `condition`.
    static func until(_ gate: LiveTestGate, _ what: String, _ condition: @Sendable (LiveTestGate.State) -> Bool) async throws {
        let deadline = Deadline(.seconds(30))
        while !condition(await gate.state) {
            guard !deadline.hasPassed else { throw HarnessError("the gate never reached: \(what); it is \(await gate.state)") }
            await Task.yield()
        }
    }

    @Test("an alone test waits for the running live tests; live tests that come meanwhile wait for it; then they run together")
    func aloneWaitsAndGoesFirst() async throws {
        let gate = LiveTestGate()
        await gate.enter(alone: false)
        await gate.enter(alone: false)
        let alone = Task { await gate.enter(alone: true) }
        try await Self.until(gate, "one alone waiting") { $0.aloneWaiting == 1 }
        let late = Task { await gate.enter(alone: false) }
        try await Self.until(gate, "one shared waiting behind it") { $0.sharedWaiting == 1 }
        var state = await gate.state
        #expect(state.sharedRunning == 2 && !state.aloneRunning, "\(state)")

        await gate.leave(alone: false)
        state = await gate.state
        #expect(state.aloneWaiting == 1 && !state.aloneRunning, "one live test still runs: \(state)")
        await gate.leave(alone: false)
        await alone.value
        state = await gate.state
        #expect(state.aloneRunning && state.sharedRunning == 0 && state.sharedWaiting == 1, "\(state)")

        await gate.leave(alone: true)
        await late.value
        state = await gate.state
        #expect(state.sharedRunning == 1 && !state.aloneRunning, "\(state)")
        await gate.leave(alone: false)
    }

    @Test("alone tests run one at a time")
    func aloneOneAtATime() async throws {
        let gate = LiveTestGate()
        await gate.enter(alone: true)
        let second = Task { await gate.enter(alone: true) }
        try await Self.until(gate, "the second alone waiting") { $0.aloneWaiting == 1 }
        await gate.leave(alone: true)
        await second.value
        let state = await gate.state
        #expect(state.aloneRunning && state.aloneWaiting == 0, "\(state)")
        await gate.leave(alone: true)
    }
}
