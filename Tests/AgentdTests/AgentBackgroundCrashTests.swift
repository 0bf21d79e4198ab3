import FakeLLMServer
import Foundation
import GRDB
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Background runs across a `kill -9`: only the real binary shows a process dying mid-stream and
/// a restart finding its jobs in the database file.
@Suite("Agent background runs across kill -9 (real daemon, fake provider)", .blockingIO, .serialized, .timeLimit(.minutes(3)))
struct AgentBackgroundCrashTests {
    @Test(
        "20 background runs streaming from a slow provider, kill -9 mid-stream, restart: each ends completed with exactly one answer or failed with a reason; none stays running; watchers that reconnect with since get every delta of the final attempt once"
    )
    func killNineMidStream() async throws {
        try await withFakeProvider { fake in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let databasePath = "\(directory.path)/agentd.sqlite"
            let arguments = ["--database", databasePath]
            let socket = "\(directory.path)/agentd.sock"
            let environment = fake.openAIEnvironment()
            // Ten words: "Echo: " and ten deltas, 100 ms apart (`fake-slow`).
            let words = "one two three four five six seven eight nine ten"

            var runs: [(runID: String, chatID: String, index: Int)] = []
            var watchers: [RunWatcher] = []
            // The run the provider's first request streams: it is mid-answer at the kill.
            let streamed: RunWatcher
            do {
                let daemon = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
                defer { daemon.kill() }
                let client = try ClientConnection(daemon.connect())
                for index in 0..<20 {
                    let started = try client.result("v2.agent.act", #"{"message":"Run \#(index) \#(words)","model":"fake-slow","background":true}"#)
                    let runID = try #require(started["runId"]?.stringValue, "\(started)")
                    let chatID = try #require(started["chatId"]?.stringValue, "\(started)")
                    #expect(started["jobId"]?.stringValue != nil && started["messageId"]?.stringValue != nil, "\(started)")
                    runs.append((runID, chatID, index))
                }
                // Watchers on connections of their own: the first runs the workers claim (streaming
                // at the kill) and the last (still queued then), plus the one the provider streams
                // first, whichever it is.
                #expect(fake.waitForRequests(count: 1), "a run asked the provider")
                let first = try #require(Self.runIndex(asked: fake.chatRequests[0]), "\(fake.chatRequests[0].chatMessages)")
                for index in Set([0, 1, 2, 3, 19, first]).sorted() {
                    let watcher = RunWatcher(runID: runs[index].runID, index: index)
                    try watcher.watch(daemon)
                    watchers.append(watcher)
                }
                streamed = try #require(watchers.first { $0.index == first })
                // Mid-stream: the first attempt has sent part of its answer to its watcher, and
                // stored some of it (`agent.runs.get`'s `partial` after the restart), when the
                // process dies; its provider connection is still open.
                try streamed.follow(until: { $0.attempt == 1 && $0.seq >= 3 })
                #expect(streamed.ended == nil, "the run was still streaming: \(streamed.history)")
                try Self.waitForStoredPartial(database: databasePath, runID: streamed.runID)
                daemon.signal(SIGKILL)
                _ = try daemon.waitForExit(timeout: .seconds(20))
            }
            let streamedBeforeKill = fake.chatRequests.count
            // What each watcher's connection had delivered when it closed with the process.
            for watcher in watchers { try watcher.drainAfterKill() }
            let seenBeforeKill = (attempt: streamed.attempt, text: streamed.text)

            let restarted = try DaemonProcess(socketPath: socket, arguments: arguments, environment: environment)
            defer { restarted.kill() }
            // Each watcher comes back with what it kept: most at once, before the stopped attempts
            // start again (their lease has 15 s to run) and while the queued runs run for the first
            // time; one only once the next attempt of its run has streamed (the reply then holds
            // that attempt's text, and the kept text is dropped).
            let late = watchers.first { $0.index != streamed.index && $0.index != 19 }
            for watcher in watchers where watcher !== late { try watcher.watch(restarted) }
            // The streamed run's watcher loses its connection again in the middle of the next
            // attempt and watches again with `since` of that attempt once the run has gone further
            // (a second watcher tells): the reply holds the deltas it missed, from the live run.
            try streamed.follow(until: { $0.attempt > seenBeforeKill.attempt && $0.seq >= 2 })
            #expect(streamed.ended == nil, "the restarted run was still streaming: \(streamed.history)")
            streamed.disconnect()
            try Self.waitUntilStreamed(runID: streamed.runID, attempt: seenBeforeKill.attempt + 1, seq: streamed.seq + 3, daemon: restarted)
            try streamed.watch(restarted)
            if let late {
                try Self.waitUntilStreamed(runID: late.runID, attempt: late.attempt + 1, seq: 3, daemon: restarted)
                try late.watch(restarted)
            }
            for watcher in watchers { try watcher.follow() }

            let client = try ClientConnection(restarted.connect())
            // Every run's end, stored before the subscription or after it (since: 0 replays them).
            _ = try client.subscribe(#"{"topics":["agent.run.completed","agent.run.failed","agent.run.cancelled"],"since":0}"#)
            let ids = Set(runs.map(\.runID))
            var ended = Set<String>()
            _ = try client.events(
                until: { params in
                    if let id = params["data"]?["runId"]?.stringValue, ids.contains(id) { ended.insert(id) }
                    return ended == ids
                }, timeout: .seconds(120))

            var rerun = 0
            for run in runs {
                let got = try client.result("v2.agent.runs.get", #"{"runId":"\#(run.runID)"}"#)
                let status = got["status"]?.stringValue
                let messages = try client.result("v2.chats.messages.list", #"{"chatId":"\#(run.chatID)"}"#)
                let answers = messages["items"]?.arrayValue?.filter { $0["role"]?.stringValue == "assistant" } ?? []
                let answer = "Echo: Run \(run.index) \(words)"
                switch status {
                case "completed":
                    #expect(answers.count == 1, "run \(run.index): one answer, got \(answers)")
                    #expect(answers.first?["content"]?.stringValue == answer, "\(answers)")
                    #expect(answers.first?["id"] == got["assistantMessageId"], "\(got)")
                case "failed":
                    #expect(answers.isEmpty && got["error"]?["kind"]?.stringValue?.isEmpty == false, "run \(run.index): \(got)")
                default:
                    Issue.record("run \(run.index) ended \(String(describing: status)): \(got)")
                }
                // A stopped attempt's text stays on the run for reference (the start of the answer).
                if let partial = got["partial"]?.stringValue {
                    #expect(answer.hasPrefix(partial), "run \(run.index): partial \(partial.debugDescription)")
                }
                if (got["attempt"]?.intValue ?? 0) > 1 { rerun += 1 }
                if let watcher = watchers.first(where: { $0.runID == run.runID }) {
                    try watcher.expectWholeFinalAttempt(of: got, answer: answers.first?["content"]?.stringValue, daemon: restarted)
                }
            }
            #expect(rerun > 0, "at least the run that was streaming ran again after the restart")
            #expect(fake.chatRequests.count > streamedBeforeKill, "the restarted daemon asked the provider again")

            // The run stopped mid-answer ran again from the beginning, as a new attempt; the text
            // its first attempt had stored is its `partial`, a start of what its watcher saw
            // then (or the other way round: the watcher reads behind the run).
            let got = try client.result("v2.agent.runs.get", #"{"runId":"\#(streamed.runID)"}"#)
            #expect((got["attempt"]?.intValue ?? 0) > seenBeforeKill.attempt, "\(got)")
            let partial = try #require(got["partial"]?.stringValue, "the first attempt stored part of its answer: \(got)")
            #expect(!partial.isEmpty && partial != "Echo: Run \(streamed.index) \(words)", "\(got)")
            // Never an answer message: the run's one answer is the whole text.
            let messages = try client.result("v2.chats.messages.list", #"{"chatId":"\#(runs[streamed.index].chatID)"}"#)
            let answers = messages["items"]?.arrayValue?.filter { $0["role"]?.stringValue == "assistant" } ?? []
            #expect(answers.map { $0["content"]?.stringValue } == ["Echo: Run \(streamed.index) \(words)"], "\(answers)")
            #expect(
                partial.hasPrefix(seenBeforeKill.text) || seenBeforeKill.text.hasPrefix(partial),
                "partial \(partial.debugDescription), seen before the kill \(seenBeforeKill.text.debugDescription)")
        }
    }

    /// Watches the run on a connection of its own until it has streamed delta `seq` of `attempt`
    /// (or a later attempt), or ended.
    static func waitUntilStreamed(runID: String, attempt: Int, seq: Int, daemon: DaemonProcess) throws {
        let witness = RunWatcher(runID: runID, index: -1)
        try witness.watch(daemon)
        try witness.follow(until: { $0.attempt > attempt || ($0.attempt == attempt && $0.seq >= seq) })
    }

    /// The run a provider request asks for: its question is "Run <index> …".
    static func runIndex(asked request: FakeRecordedRequest) -> Int? {
        guard let question = request.chatMessages.last(where: { $0.role == "user" })?.content else { return nil }
        let words = question.split(separator: " ")
        return words.count > 1 && words[0] == "Run" ? Int(words[1]) : nil
    }

    /// Waits until the daemon has stored part of the run's answer (its 250 ms partial store), read
    /// from the database file beside it (WAL: a reader never blocks the daemon's writer).
    static func waitForStoredPartial(database path: String, runID: String, timeout: Duration = .seconds(20)) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        let deadline = Deadline(timeout)
        while try database.read({ try Int.fetchOne($0, sql: "SELECT partial_seq FROM agent_runs WHERE id = ?", arguments: [runID]) ?? 0 }) == 0 {
            guard !deadline.hasPassed else { throw HarnessError("the run \(runID) stored no partial answer in \(timeout)") }
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }
}

/// A client following one run with `agent.runs.watch` on a connection of its own, as
/// docs/AGENT.md's one loop says: it keeps `(attempt, seq, text)`, drops the text when the attempt
/// changes, and watches again with `since`/`attempt` after losing its connection. It also records
/// which deltas of the kept attempt its text is made of (from a reply's text or a notification),
/// so that a gap or a repeat shows even when the text happens to read the same.
private final class RunWatcher {
    let runID: String
    let index: Int
    private(set) var attempt = 1
    private(set) var seq = 0
    private(set) var text = ""
    /// The seqs of `attempt` that `text` holds, in the order they came.
    private(set) var seqs: [Int] = []
    /// The current watch's `agent.run.ended`.
    private(set) var ended: JSON?
    /// What came, in order: for failure messages.
    private(set) var history: [String] = []
    private var connection: ClientConnection?
    private var hasWatched = false

    init(runID: String, index: Int) {
        self.runID = runID
        self.index = index
    }

    /// Watches on a new connection (the previous one, if any, is closed): the first time from the
    /// beginning, then from what it kept.
    func watch(_ daemon: DaemonProcess, sourceLocation: SourceLocation = #_sourceLocation) throws {
        connection = nil
        let connection = try ClientConnection(daemon.connect())
        self.connection = connection
        let params = hasWatched ? #"{"runId":"\#(runID)","since":\#(seq),"attempt":\#(attempt)}"# : #"{"runId":"\#(runID)"}"#
        let (reply, early) = try connection.reply(to: connection.send("v2.agent.runs.watch", params))
        #expect(early.isEmpty, "run \(index): notifications before the watch reply: \(early)", sourceLocation: sourceLocation)
        let result = try #require(reply["result"], "run \(index) watch \(params): \(reply)", sourceLocation: sourceLocation)
        let replyAttempt = try #require(result["attempt"]?.intValue, "\(result)", sourceLocation: sourceLocation)
        let replySeq = try #require(result["seq"]?.intValue, "\(result)", sourceLocation: sourceLocation)
        let replyText = try #require(result["text"]?.stringValue, "\(result)", sourceLocation: sourceLocation)
        history.append("watch \(params) -> \(replyAttempt).\(replySeq) \(replyText.debugDescription)")
        // The reply's text: after `since` when the attempt is the one kept, otherwise all of it.
        let since = hasWatched && replyAttempt == attempt ? seq : 0
        keep(attempt: replyAttempt, seq: replySeq, text: replyText, seqs: replySeq > since ? Array((since + 1)...replySeq) : [])
        hasWatched = true
        ended = nil
    }

    /// Reads the watch's notifications until `done` holds or the watch ends.
    func follow(until done: (RunWatcher) -> Bool = { _ in false }, timeout: Duration = .seconds(60)) throws {
        let connection = try #require(connection, "run \(index): not watching")
        let deadline = Deadline(timeout)
        while ended == nil, !done(self) {
            apply(try connection.nextNotification(timeout: deadline.remaining))
        }
    }

    /// The daemon died: applies what its connection had delivered, up to the end of the stream (a
    /// line the kill cut short is lost, as it would be for any client).
    func drainAfterKill() throws {
        let connection = try #require(connection, "run \(index): not watching")
        var lines = try connection.client.readUntilEOF(timeout: .seconds(20)).split(separator: "\n", omittingEmptySubsequences: false)
        lines.removeLast()
        for line in lines { apply(try JSON(parsing: String(line))) }
        self.connection = nil
    }

    /// Closes the connection (the watch ends with it): the client keeps what it had read.
    func disconnect() {
        connection = nil
    }

    private func apply(_ message: JSON) {
        let params = message["params"] ?? .null
        switch message["method"]?.stringValue {
        case "agent.delta":
            guard let deltaAttempt = params["attempt"]?.intValue, let deltaSeq = params["seq"]?.intValue, let deltaText = params["text"]?.stringValue
            else {
                Issue.record("run \(index): a malformed delta \(message)")
                return
            }
            history.append("delta \(deltaAttempt).\(deltaSeq)")
            keep(attempt: deltaAttempt, seq: deltaSeq, text: deltaText, seqs: [deltaSeq])
        case "agent.run.ended":
            history.append("ended \(params)")
            ended = params
        default:
            Issue.record("run \(index): unexpected \(message) after \(history)")
        }
    }

    private func keep(attempt: Int, seq: Int, text: String, seqs: [Int]) {
        if attempt != self.attempt {
            self.text = ""
            self.seqs = []
        }
        self.attempt = attempt
        self.seq = seq
        self.text += text
        self.seqs += seqs
    }

    /// The watch ended with the run (`got`, as `agent.runs.get` shows it), and what the watcher
    /// kept is the run's last streamed attempt whole: its deltas 1…n once each, in order, n being
    /// what the daemon stored at the end (a watch of the ended run tells), with the same text; for
    /// a completed run, that attempt is the run's last and its text the answer's.
    func expectWholeFinalAttempt(of got: JSON, answer: String?, daemon: DaemonProcess, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let ended = try #require(ended, "run \(index): the watch did not end: \(history)", sourceLocation: sourceLocation)
        #expect(
            ended["status"] == got["status"] && ended["messageId"] == got["assistantMessageId"], "\(ended) \(got)", sourceLocation: sourceLocation)
        let final = try ClientConnection(daemon.connect()).result("v2.agent.runs.watch", #"{"runId":"\#(runID)"}"#, sourceLocation: sourceLocation)
        let count = try #require(final["seq"]?.intValue, "\(final)", sourceLocation: sourceLocation)
        #expect(final["attempt"]?.intValue == attempt, "run \(index): kept attempt \(attempt): \(final)", sourceLocation: sourceLocation)
        #expect(
            seqs == Array(1..<(count + 1)), "run \(index): deltas of attempt \(attempt) kept: \(seqs); \(history)", sourceLocation: sourceLocation)
        #expect(text == final["text"]?.stringValue, "run \(index): \(text.debugDescription) \(final)", sourceLocation: sourceLocation)
        if got["status"]?.stringValue == "completed" {
            #expect(attempt == got["attempt"]?.intValue && count > 0, "run \(index): kept attempt \(attempt): \(got)", sourceLocation: sourceLocation)
            #expect(text == answer, "run \(index): \(text.debugDescription), answer \(String(describing: answer))", sourceLocation: sourceLocation)
        }
    }
}
