import AgentdTesting
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import RPC
@testable import Services

/// `AgentRunStreams` on its own, for what one process cannot show through the daemon yet: a run
/// whose attempt stops and that starts again as another attempt (a background run after a crash or
/// a retry). Push streams on a fake connection that records what each would write.
@Suite("Agent run streams: attempts", .timeLimit(.minutes(1)))
struct AgentRunStreamsTests {
    /// What a push stream would write, per stream id.
    final class Connection: RPCPushConnection {
        // Only touched under the mutex.
        private let written = Mutex([UInt64: [String]]())

        func pushSend(stream: UInt64, _ messages: [RPCPushMessage]) {
            written.withLock { $0[stream, default: []] += messages.map { String(buffer: $0.head) + String(buffer: $0.body) } }
        }
        func pushFinish(stream: UInt64, last: ByteBuffer) { written.withLock { $0[stream, default: []].append(String(buffer: last)) } }
        func pushClose(stream: UInt64) {}
        func pushDrained(stream: UInt64) async -> Bool { true }

        func messages(_ stream: UInt64) -> [String] { written.withLock { $0[stream] ?? [] } }
    }

    final class Store: AgentPartialStore {
        // Only touched under the mutex.
        private let stored = Mutex([(AgentRunPartial, final: Bool)]())
        var partials: [(AgentRunPartial, final: Bool)] { stored.withLock { $0 } }

        func storePartial(_ partial: AgentRunPartial, userID: String, final: Bool) async throws { stored.withLock { $0.append((partial, final)) } }
        func partial(runID: String, userID: String) async throws -> AgentRunPartial? { stored.withLock { $0.last?.0 } }
    }

    /// The client's one loop (AgentRunWatch): drop the text when the attempt changes, append.
    struct Client {
        var attempt = 0
        var seq = 0
        var text = ""
        var ended = false

        mutating func apply(attempt: Int, seq: Int, text: String) {
            if attempt != self.attempt { self.text = "" }
            self.attempt = attempt
            self.seq = seq
            self.text += text
        }

        mutating func apply(_ reply: AgentRunWatch) { apply(attempt: reply.attempt, seq: reply.seq, text: reply.text) }

        mutating func apply(_ messages: [String]) throws {
            for message in messages {
                let value = try JSONDecoder().decode(JSONValue.self, from: Data(message.utf8))
                switch value["method"]?.stringValue {
                case "agent.delta":
                    let params = try #require(value["params"])
                    apply(
                        attempt: try #require(params["attempt"]?.intValue), seq: try #require(params["seq"]?.intValue),
                        text: try #require(params["text"]?.stringValue))
                case "agent.run.ended": ended = true
                default: Issue.record("unexpected \(message)")
                }
            }
        }
    }

    @Test(
        "a run started again as attempt 2: its watchers drop attempt 1's text and get every delta of attempt 2 once; a client back with a since of attempt 1 gets all of attempt 2"
    )
    func attempts() async throws {
        let store = Store()
        let streams = AgentRunStreams(
            store: store, timer: { _ in try await Task.sleep(for: .seconds(3600)) }, interval: .milliseconds(250), capacity: 100,
            logger: Logger(label: "test"))
        let connection = Connection()
        let run = AgentRun(id: "run_1", chatId: "cht_1", userMessageId: "msg_1", status: .running, provider: "fake", model: nil, startedAt: Date())

        let first = streams.begin(run, userID: "usr_1", attempt: 1)
        for text in ["a", "b"] { _ = first.publish(AgentDelta(runId: run.id, chatId: run.chatId, seq: 0, text: text)) }
        let following = RPCPushStream(id: 1, connection: connection)
        var follower = Client()
        follower.apply(
            try #require(streams.attachIfRunning(runID: run.id, userID: "usr_1", watcher: 1, push: following, since: nil, sinceAttempt: 1)))
        #expect(streams.attachIfRunning(runID: run.id, userID: "usr_2", watcher: 9, push: following, since: nil, sinceAttempt: 1) == nil)
        let third = first.publish(AgentDelta(runId: run.id, chatId: run.chatId, seq: 0, text: "c"))
        #expect(third.seq == 3 && third.attempt == 1)

        // The attempt stops (a retriable failure): what it had is stored, the watch goes on.
        await streams.suspend(first)
        #expect(store.partials.last?.0 == AgentRunPartial(runID: run.id, attempt: 1, seq: 3, text: "abc", ends: [1, 2, 3]))
        #expect(store.partials.last?.final == false)
        // A client back meanwhile (from the store: the run is not going on here) waits for it.
        let returning = RPCPushStream(id: 2, connection: connection)
        let stored = try #require(try await store.partial(runID: run.id, userID: "usr_1"))
        #expect(streams.attachIfRunning(runID: run.id, userID: "usr_1", watcher: 2, push: returning, since: 2, sinceAttempt: 1) == nil)
        let (reply, waiting) = streams.attach(run: run, partial: stored, userID: "usr_1", watcher: 2, push: returning, since: 2, sinceAttempt: 1)
        #expect(waiting && reply.attempt == 1 && reply.seq == 3 && reply.text == "c", "\(reply)")
        var back = Client(attempt: 1, seq: 2, text: "ab")
        back.apply(reply)

        #expect(streams.isWaiting() && streams.isWaiting(runID: run.id))
        let second = streams.begin(run, userID: "usr_1", attempt: 2)
        #expect(!streams.isWaiting())
        #expect(second === first)
        for text in ["x", "y"] { _ = second.publish(AgentDelta(runId: run.id, chatId: run.chatId, seq: 0, text: text)) }
        // A client whose since is of attempt 1 gets all of attempt 2.
        let late = RPCPushStream(id: 3, connection: connection)
        var lateClient = Client(attempt: 1, seq: 3, text: "abc")
        let lateReply = try #require(streams.attachIfRunning(runID: run.id, userID: "usr_1", watcher: 3, push: late, since: 3, sinceAttempt: 1))
        #expect(lateReply.attempt == 2 && lateReply.seq == 2 && lateReply.text == "xy", "\(lateReply)")
        lateClient.apply(lateReply)
        _ = second.publish(AgentDelta(runId: run.id, chatId: run.chatId, seq: 0, text: "z"))
        await streams.end(second, AgentRunEnded(runId: run.id, status: .completed, messageId: "msg_2"))
        #expect(store.partials.last?.0 == AgentRunPartial(runID: run.id, attempt: 2, seq: 3, text: "xyz", ends: [1, 2, 3]))
        #expect(store.partials.last?.final == true)
        #expect(streams.count == 0)

        for (id, var client) in [(UInt64(1), follower), (2, back), (3, lateClient)] {
            try client.apply(connection.messages(id))
            #expect(client.attempt == 2 && client.seq == 3 && client.text == "xyz" && client.ended, "watcher \(id): \(connection.messages(id))")
        }
        // Attempt 2's deltas went once each to the watchers that were there.
        #expect(connection.messages(1).filter { $0.contains(#""attempt":2"#) }.count == 3)
        #expect(connection.messages(3).filter { $0.contains(#""attempt":2"#) }.count == 1)
    }

    @Test(
        "a watch that read the stored partial before a whole attempt began and ended here answers the text read again, then agent.run.ended: no gap"
    )
    func attemptBetweenReadAndAttach() async throws {
        let store = Store()
        let streams = AgentRunStreams(
            store: store, timer: { _ in try await Task.sleep(for: .seconds(3600)) }, interval: .milliseconds(250), capacity: 100,
            logger: Logger(label: "test"))
        let connection = Connection()
        let running = AgentRun(
            id: "run_1", chatId: "cht_1", userMessageId: "msg_1", status: .running, provider: "fake", model: nil, startedAt: Date())
        var completed = running
        completed.status = .completed
        completed.assistantMessageId = "msg_2"

        // AgentService.watch's order: the run is not going on here; its run row (running) and its
        // partial (none yet) are read...
        let push = RPCPushStream(id: 1, connection: connection)
        #expect(streams.attachIfRunning(runID: running.id, userID: "usr_1", watcher: 1, push: push, since: nil, sinceAttempt: 1) == nil)
        let read =
            try await store.partial(runID: running.id, userID: "usr_1")
            ?? AgentRunPartial(runID: running.id, attempt: 1, seq: 0, text: "", ends: [])
        // ...then a whole attempt begins and ends here before the watch attaches...
        let attempt = streams.begin(running, userID: "usr_1", attempt: 1)
        for text in ["x", "y"] { _ = attempt.publish(AgentDelta(runId: running.id, chatId: running.chatId, seq: 0, text: text)) }
        await streams.end(attempt, AgentRunEnded(runId: running.id, status: .completed, messageId: "msg_2"))
        #expect(streams.count == 0)
        // ...so the attach waits, with the stale text, and the run is then found ended.
        let (stale, waiting) = streams.attach(run: running, partial: read, userID: "usr_1", watcher: 1, push: push, since: nil, sinceAttempt: 1)
        #expect(waiting && stale.text == "" && stale.seq == 0)
        let reply = try #require(try await streams.endWaiting(completed, userID: "usr_1", watcher: 1, since: nil, sinceAttempt: 1))
        #expect(reply == AgentRunWatch(runId: running.id, chatId: running.chatId, status: .completed, attempt: 1, seq: 2, text: "xy"), "\(reply)")
        var client = Client()
        client.apply(reply)
        try client.apply(connection.messages(1))
        #expect(client.ended && client.text == "xy" && client.seq == 2)
        #expect(streams.count == 0 && !streams.isWaiting())

        // A waiting watcher that an attempt begun here took live keeps its reply: what it was sent
        // follows it, and that attempt's end ends its watch.
        let second = AgentRun(id: "run_2", chatId: "cht_1", userMessageId: "msg_3", status: .running, provider: "fake", model: nil, startedAt: Date())
        var secondEnded = second
        secondEnded.status = .cancelled
        let live = RPCPushStream(id: 2, connection: connection)
        let (waitReply, waits) = streams.attach(
            run: second, partial: AgentRunPartial(runID: second.id, attempt: 1, seq: 0, text: "", ends: []), userID: "usr_1", watcher: 2,
            push: live, since: nil, sinceAttempt: 1)
        #expect(waits && waitReply.text == "")
        let begun = streams.begin(second, userID: "usr_1", attempt: 1)
        _ = begun.publish(AgentDelta(runId: second.id, chatId: second.chatId, seq: 0, text: "z"))
        #expect(try await streams.endWaiting(secondEnded, userID: "usr_1", watcher: 2, since: nil, sinceAttempt: 1) == nil)
        await streams.end(begun, AgentRunEnded(runId: second.id, status: .cancelled))
        var follower = Client()
        follower.apply(waitReply)
        try follower.apply(connection.messages(2))
        #expect(follower.ended && follower.text == "z" && connection.messages(2).count == 2)
    }
}
