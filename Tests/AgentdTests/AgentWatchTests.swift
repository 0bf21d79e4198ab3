import AgentdTesting
import Foundation
import GRDB
import NIOCore
import RPC
import Services
import Testing

@testable import Daemon
@testable import Services

/// `agent.runs.watch` through the daemon's router, in process, with a scripted provider paused at
/// gates (no sleeps) and the partial-answer timer fired by hand.
@Suite("Agent run watch (in process)", .timeLimit(.minutes(2)))
struct AgentWatchTests {
    /// What a watcher reads after the reply, in order.
    enum Pushed: Equatable {
        case delta(AgentDelta)
        case ended(AgentRunEnded)
        case overflow(AgentWatchOverflow)
    }

    private struct Method: Decodable { var method: String? }
    private struct Params<T: Decodable>: Decodable { var params: T }

    static func next(_ client: InProcessClient) async throws -> Pushed {
        let text = try await client.nextMessage()
        let data = Data(text.utf8)
        switch try JSONDecoder().decode(Method.self, from: data).method {
        case Agent.Delta.name: return .delta(try JSONDecoder().decode(Params<AgentDelta>.self, from: data).params)
        case Agent.RunEnded.name: return .ended(try JSONDecoder().decode(Params<AgentRunEnded>.self, from: data).params)
        case Agent.WatchOverflow.name: return .overflow(try JSONDecoder().decode(Params<AgentWatchOverflow>.self, from: data).params)
        default: throw InProcessClientError.undecodable(what: "a watch message", text: text, error: "unexpected")
        }
    }

    /// Reads pushed messages until `agent.run.ended` or `agent.watch.overflow` (included).
    static func untilEnd(_ client: InProcessClient) async throws -> [Pushed] {
        var read: [Pushed] = []
        while true {
            let message = try await next(client)
            read.append(message)
            if case .delta = message { continue }
            return read
        }
    }

    static func texts(_ pushed: [Pushed]) -> [String] {
        pushed.compactMap { if case .delta(let delta) = $0 { delta.text } else { nil } }
    }

    static func seqs(_ pushed: [Pushed]) -> [Int] {
        pushed.compactMap { if case .delta(let delta) = $0 { delta.seq } else { nil } }
    }

    func withDaemon<T: Sendable>(
        _ scripts: [[ScriptedLLMProvider.Step]], timer: ManualTimer = ManualTimer(), configure: (inout DaemonConfiguration) -> Void = { _ in },
        _ body: (InProcessDaemon) async throws -> T
    ) async throws -> T {
        let provider = ScriptedLLMProvider(scripts: scripts)
        let collaborators = Dependencies.Collaborators(
            clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider,
            agentPartialTimer: { try await timer.wait($0) })
        return try await withInProcessDaemon(configure: configure, collaborators: collaborators, body)
    }

    /// Starts `agent.act` on `caller` and returns once its first `count` deltas arrived there
    /// (they are published to watchers before they are sent to the caller).
    static func act(_ caller: InProcessClient, deltas count: Int) async throws -> (call: Task<AgentAnswer, any Error>, deltas: [AgentDelta]) {
        let call = Task { try #require(try await caller.send(Agent.Act.self, .init(message: "Tell me")).answer) }
        var deltas: [AgentDelta] = []
        for _ in 0..<count { deltas.append(try await caller.nextNotification(of: Agent.Delta.self)) }
        return (call, deltas)
    }

    struct StoredPartial: Equatable {
        var attempt: Int
        var seq: Int
        var text: String?
        var ends: [Int]?
    }

    static func stored(_ daemon: InProcessDaemon, runID: String) async throws -> StoredPartial? {
        try await daemon.dependencies.database.writer.read { db in
            try Row.fetchOne(
                db, sql: "SELECT partial_attempt, partial_seq, partial_text, partial_lengths FROM agent_runs WHERE id = ?", arguments: [runID]
            ).map { row in
                let lengths: Data? = row["partial_lengths"]
                return StoredPartial(
                    attempt: row["partial_attempt"], seq: row["partial_seq"], text: row["partial_text"],
                    ends: lengths.flatMap { AgentRunPartial.ends(decoding: $0) })
            }
        }
    }

    @Test(
        "a second connection of the same user watching a foreground run gets the text so far, then every later delta in order, then agent.run.ended")
    func secondConnection() async throws {
        let gate = Gate()
        let script: [ScriptedLLMProvider.Step] =
            [.event(.text("Hel")), .event(.text("lo")), .wait(gate)] + ScriptedLLMProvider.answer([" wide", " world"])
        try await withDaemon([script]) { daemon in
            let caller = try await daemon.connect()
            let watcher = try await daemon.connect()
            let (call, first) = try await Self.act(caller, deltas: 2)
            let runID = first[0].runId
            #expect(first.map(\.seq) == [1, 2] && first.allSatisfy { $0.attempt == 1 }, "\(first)")

            let reply = try await watcher.send(Agent.Runs.Watch.self, .init(runId: runID))
            #expect(
                reply == AgentRunWatch(runId: runID, chatId: first[0].chatId, status: .running, attempt: 1, seq: 2, text: "Hello"), "\(reply)")
            gate.open()
            let answer = try await call.value
            let pushed = try await Self.untilEnd(watcher)
            #expect(Self.texts(pushed) == [" wide", " world"] && Self.seqs(pushed) == [3, 4], "\(pushed)")
            #expect(pushed.last == .ended(AgentRunEnded(runId: runID, status: .completed, messageId: answer.message.id)), "\(pushed)")
            #expect(reply.text + Self.texts(pushed).joined() == answer.message.content)
            // The watch is over: the run left the map.
            #expect(daemon.dependencies.agent.streams.count == 0)
        }
    }

    @Test("a watcher that reconnects with since (and its attempt) gets the text after it, then the live deltas: no gap, no repeat")
    func resumeWithSince() async throws {
        let (first, second) = (Gate(), Gate())
        let script: [ScriptedLLMProvider.Step] =
            [.event(.text("a")), .event(.text("b")), .wait(first), .event(.text("c")), .event(.text("d")), .wait(second)]
            + ScriptedLLMProvider.answer(["e"])
        try await withDaemon([script]) { daemon in
            let caller = try await daemon.connect()
            let (call, deltas) = try await Self.act(caller, deltas: 2)
            let runID = deltas[0].runId

            let before = try await daemon.connect()
            let reply = try await before.send(Agent.Runs.Watch.self, .init(runId: runID))
            #expect(reply.seq == 2 && reply.text == "ab", "\(reply)")
            first.open()
            // The caller has both of the next deltas, so the watcher was sent both; it reads one and
            // goes away.
            _ = try await caller.nextNotification(of: Agent.Delta.self)
            _ = try await caller.nextNotification(of: Agent.Delta.self)
            guard case .delta(let seen) = try await Self.next(before) else {
                Issue.record("no delta")
                return
            }
            #expect(seen.seq == 3 && seen.text == "c", "\(seen)")
            await before.close()

            let after = try await daemon.connect()
            let resumed = try await after.send(Agent.Runs.Watch.self, .init(runId: runID, since: seen.seq, attempt: seen.attempt))
            #expect(resumed.attempt == 1 && resumed.seq == 4 && resumed.text == "d", "\(resumed)")
            second.open()
            let answer = try await call.value
            let pushed = try await Self.untilEnd(after)
            #expect(Self.seqs(pushed) == [5], "\(pushed)")
            #expect(reply.text + seen.text + resumed.text + Self.texts(pushed).joined() == answer.message.content)
        }
    }

    @Test("an ended run answers at once: its stored text (cut at since), then agent.run.ended; a failed run's partial text stays stored")
    func endedRun() async throws {
        let failure = LLMError(.rateLimited, "slow down", provider: "fake")
        try await withDaemon([
            ScriptedLLMProvider.answer(["one ", "two ", "three"]), [.event(.text("half ")), .event(.text("done")), .fail(failure)],
        ]) {
            daemon in
            let client = try await daemon.connect()
            let answer = try #require(try await client.send(Agent.Act.self, .init(message: "Count")).answer)
            let runID = answer.runId
            // Stored at the end: the seq and lengths; the text is the answer message's, not kept twice.
            #expect(try await Self.stored(daemon, runID: runID) == StoredPartial(attempt: 1, seq: 3, text: nil, ends: [4, 8, 13]))

            for (since, text) in [(nil, "one two three"), (0, "one two three"), (1, "two three"), (3, "")] as [(Int?, String)] {
                let watcher = try await daemon.connect()
                let reply = try await watcher.send(Agent.Runs.Watch.self, .init(runId: runID, since: since))
                #expect(reply == AgentRunWatch(runId: runID, chatId: answer.chatId, status: .completed, attempt: 1, seq: 3, text: text), "\(reply)")
                #expect(
                    try await Self.untilEnd(watcher) == [.ended(AgentRunEnded(runId: runID, status: .completed, messageId: answer.message.id))])
            }
            // `since` of another attempt: all of the text (the client drops what it had).
            let watcher = try await daemon.connect()
            let other = try await watcher.send(Agent.Runs.Watch.self, .init(runId: runID, since: 2, attempt: 2))
            #expect(other.attempt == 1 && other.text == "one two three", "\(other)")
            _ = try await Self.untilEnd(watcher)

            let failed = await #expect(throws: RPCError.self) {
                try await client.send(Agent.Act.self, .init(chatId: answer.chatId, message: "Again"))
            }
            #expect(failed?.code.rawValue == -32054, "\(String(describing: failed))")
            let runs = try await client.send(Agent.Runs.List.self, .init(chatId: answer.chatId))
            let failedRun = try #require(runs.items.first { $0.status == .failed }, "\(runs)")
            #expect(try await Self.stored(daemon, runID: failedRun.id) == StoredPartial(attempt: 1, seq: 2, text: "half done", ends: [5, 9]))
            let failedWatcher = try await daemon.connect()
            let reply = try await failedWatcher.send(Agent.Runs.Watch.self, .init(runId: failedRun.id, since: 1))
            #expect(reply.status == .failed && reply.seq == 2 && reply.text == "done", "\(reply)")
            let ended = try await Self.untilEnd(failedWatcher)
            #expect(
                ended == [
                    .ended(AgentRunEnded(runId: failedRun.id, status: .failed, error: LLMErrorSummary(kind: "rateLimited", message: "slow down")))
                ])
        }
    }

    @Test("another user's run answers Not found {kind: run}, exactly like a missing one, going on or ended")
    func anotherUsersRun() async throws {
        let gate = Gate()
        try await withDaemon([[.event(.text("mine")), .wait(gate)] + ScriptedLLMProvider.answer([])]) { daemon in
            let owner = try await daemon.connect()
            let (call, deltas) = try await Self.act(owner, deltas: 1)
            let runID = deltas[0].runId
            let mallory = try await daemon.registerAndLogin(username: "mallory")
            for _ in 0..<2 {
                let theirs = await #expect(throws: RPCError.self) { try await mallory.send(Agent.Runs.Watch.self, .init(runId: runID)) }
                let missing = await #expect(throws: RPCError.self) { try await mallory.send(Agent.Runs.Watch.self, .init(runId: "run_missing")) }
                #expect(theirs?.code.rawValue == -32030 && theirs?.dataValue?["kind"]?.stringValue == "run", "\(String(describing: theirs))")
                #expect(theirs?.dataValue?["kind"] == missing?.dataValue?["kind"])
                gate.open()
                _ = try await call.value
            }
            #expect(await mallory.unreadCount == 0)
        }
    }

    @Test(
        "a watcher that does not read is cut at the queue's capacity with agent.watch.overflow at the last delta written; watching again from there loses nothing"
    )
    func nonReadingWatcher() async throws {
        let (first, second) = (Gate(), Gate())
        let burst = (1...40).map { "w\($0) " }
        let script: [ScriptedLLMProvider.Step] =
            [.event(.text("start ")), .wait(first)] + burst.map { .event(.text($0)) } + [.wait(second)] + ScriptedLLMProvider.answer(["end"])
        try await withDaemon([script], configure: { $0.events.queueCapacity = 8 }) { daemon in
            let caller = try await daemon.connect()
            let (call, deltas) = try await Self.act(caller, deltas: 1)
            let runID = deltas[0].runId
            let stalled = try await daemon.connect()
            let reply = try await stalled.send(Agent.Runs.Watch.self, .init(runId: runID))
            #expect(reply.seq == 1 && reply.text == "start ")
            // The stalled client's connection takes no more writes (a full socket).
            stalled.channel.isWritable = false
            first.open()
            for _ in burst { _ = try await caller.nextNotification(of: Agent.Delta.self) }
            // Nothing was written: the queue held 8 deltas, the 9th ended the watch.
            #expect(try await Self.next(stalled) == .overflow(AgentWatchOverflow(runId: runID, attempt: 1, seq: 1)))
            #expect(await stalled.unreadCount == 0)

            stalled.channel.isWritable = true
            try await stalled.channel.eventLoop.submit { stalled.channel.pipeline.fireChannelWritabilityChanged() }.get()
            let resumed = try await stalled.send(Agent.Runs.Watch.self, .init(runId: runID, since: 1, attempt: 1))
            #expect(resumed.seq == 41 && resumed.text == burst.joined(), "\(resumed)")
            second.open()
            let answer = try await call.value
            let pushed = try await Self.untilEnd(stalled)
            #expect(Self.seqs(pushed) == [42], "\(pushed)")
            #expect(reply.text + resumed.text + Self.texts(pushed).joined() == answer.message.content)
        }
    }

    @Test("a streaming run stores its answer so far each time the 250 ms timer fires (only when it changed), and at its end")
    func partialStored() async throws {
        let timer = ManualTimer()
        let (first, second) = (Gate(), Gate())
        let script: [ScriptedLLMProvider.Step] =
            [.event(.text("ab")), .event(.text("é")), .wait(first), .event(.text("c")), .wait(second)] + ScriptedLLMProvider.answer(["d"])
        try await withDaemon([script], timer: timer) { daemon in
            let caller = try await daemon.connect()
            let (call, deltas) = try await Self.act(caller, deltas: 2)
            let runID = deltas[0].runId
            await timer.arrivals(atLeast: 1)
            // Nothing stored before the timer fires.
            #expect(try await Self.stored(daemon, runID: runID) == StoredPartial(attempt: 1, seq: 0, text: nil, ends: nil))
            timer.fire()
            // The store is awaited before the next wait.
            await timer.arrivals(atLeast: 2)
            #expect(try await Self.stored(daemon, runID: runID) == StoredPartial(attempt: 1, seq: 2, text: "abé", ends: [2, 4]))

            first.open()
            _ = try await caller.nextNotification(of: Agent.Delta.self)
            timer.fire()
            await timer.arrivals(atLeast: 3)
            #expect(try await Self.stored(daemon, runID: runID) == StoredPartial(attempt: 1, seq: 3, text: "abéc", ends: [2, 4, 5]))
            // A watcher of the going run cuts the same text by the same offsets (from memory).
            let watcher = try await daemon.connect()
            let reply = try await watcher.send(Agent.Runs.Watch.self, .init(runId: runID, since: 2))
            #expect(reply.seq == 3 && reply.text == "c", "\(reply)")

            second.open()
            let answer = try await call.value
            #expect(answer.message.content == "abécd")
            #expect(try await Self.stored(daemon, runID: runID) == StoredPartial(attempt: 1, seq: 4, text: nil, ends: [2, 4, 5, 6]))
            #expect(timer.intervals.allSatisfy { $0 == .milliseconds(250) } && timer.intervals.count >= 3, "\(timer.intervals)")
            #expect(try await Self.untilEnd(watcher).last == .ended(AgentRunEnded(runId: runID, status: .completed, messageId: answer.message.id)))
        }
    }

    @Test(
        "a run still running but not going on here (a background run waiting for its next attempt) answers from the stored partial; its watch ends when its end is committed elsewhere"
    )
    func waitingForRun() async throws {
        try await withDaemon([ScriptedLLMProvider.answer(["ok"])]) { daemon in
            let client = try await daemon.connect()
            let answer = try await client.send(Agent.Act.self, .init(message: "Hi"))
            // A run row left running with "so " + "far" stored, as a crash leaves a background run.
            try await daemon.dependencies.database.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO agent_runs (id, user_id, chat_id, user_message_id, status, provider, started_at, partial_seq, partial_text,
                            partial_lengths)
                        SELECT 'run_waiting', user_id, chat_id, user_message_id, 'running', provider, started_at, 2, 'so far', X'0303'
                        FROM agent_runs WHERE id = ?
                        """, arguments: [answer.runId])
            }
            let watcher = try await daemon.connect()
            let reply = try await watcher.send(Agent.Runs.Watch.self, .init(runId: "run_waiting", since: 1))
            #expect(
                reply == AgentRunWatch(runId: "run_waiting", chatId: answer.chatId, status: .running, attempt: 1, seq: 2, text: "far"), "\(reply)")
            #expect(daemon.dependencies.agent.streams.count == 1 && daemon.dependencies.agent.streams.isWaiting(runID: "run_waiting"))

            #expect(try await daemon.dependencies.agent.failInterruptedRuns() == 1)
            let ended = try await Self.untilEnd(watcher)
            guard case .ended(let end) = ended.last, ended.count == 1 else {
                Issue.record("\(ended)")
                return
            }
            #expect(end.runId == "run_waiting" && end.status == .failed && end.error?.kind == "interrupted", "\(end)")
            #expect(daemon.dependencies.agent.streams.count == 0 && !daemon.dependencies.agent.streams.isWaiting())
        }
    }

    @Test("a connection has at most events.max_subscriptions_per_connection watches going (-32042); an ended watch frees its place")
    func watchLimit() async throws {
        let gate = Gate()
        try await withDaemon(
            [[.event(.text("x")), .wait(gate)] + ScriptedLLMProvider.answer([])], configure: { $0.events.maxSubscriptionsPerConnection = 2 }
        ) {
            daemon in
            let caller = try await daemon.connect()
            let (call, deltas) = try await Self.act(caller, deltas: 1)
            let watcher = try await daemon.connect()
            for _ in 0..<2 { _ = try await watcher.send(Agent.Runs.Watch.self, .init(runId: deltas[0].runId)) }
            let third = await #expect(throws: RPCError.self) { try await watcher.send(Agent.Runs.Watch.self, .init(runId: deltas[0].runId)) }
            #expect(third?.code.rawValue == -32042, "\(String(describing: third))")
            #expect(
                third?.dataValue?["setting"]?.stringValue == "events.max_subscriptions_per_connection" && third?.dataValue?["limit"]?.intValue == 2)
            // Another connection has its own.
            _ = try await daemon.connect().send(Agent.Runs.Watch.self, .init(runId: deltas[0].runId))
            gate.open()
            _ = try await call.value
            for _ in 0..<2 { _ = try await Self.untilEnd(watcher) }
            let again = try await watcher.send(Agent.Runs.Watch.self, .init(runId: deltas[0].runId))
            #expect(again.status == .completed)
        }
    }

    @Test("since and attempt are checked")
    func invalidParams() async throws {
        try await withDaemon([]) { daemon in
            let client = try await daemon.connect()
            for params in [Agent.Runs.Watch.Params(runId: "run_1", since: -1), .init(runId: "run_1", since: 1, attempt: 0)] {
                let error = await #expect(throws: RPCError.self) { try await client.send(Agent.Runs.Watch.self, params) }
                #expect(error?.code.rawValue == -32602, "\(String(describing: error))")
            }
        }
    }

    @Test("the deltas' lengths round-trip through their varint encoding, long ones too")
    func lengthsEncoding() {
        let ends = [0, 1, 129, 129 + 300, 129 + 300 + 70_000]
        let partial = AgentRunPartial(runID: "run_1", attempt: 1, seq: ends.count, text: "", ends: ends)
        #expect(AgentRunPartial.ends(decoding: partial.encodedLengths) == ends)
        #expect(partial.encodedLengths.count == 1 + 1 + 2 + 2 + 3)
        #expect(AgentRunPartial.ends(decoding: [0x80]) == nil)
    }
}
