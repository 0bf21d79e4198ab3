import Foundation
import Logging
import NIOCore
import RPC
import Synchronization

/// Waits between two stores of a streaming run's partial answer: `Task.sleep` in the daemon; tests
/// pass a timer they fire by hand. Throws when the waiting task is cancelled.
public typealias AgentPartialTimer = @Sendable (Duration) async throws -> Void

/// The runs of this process that someone follows or may follow (`agent.runs.watch`), by id: each
/// run's answer so far in memory, its watchers (push streams on their connections), and the timer
/// that stores its partial answer.
///
/// A run publishes every delta to its `AgentRunStream` (`perform`, AgentService+Run.swift): the
/// text and the delta's end offset are appended under the run's own lock, and when the run has
/// watchers the delta is encoded once and queued on each watcher's stream (no database, no await:
/// the delta path stays as fast as it was). A task per run stores the partial answer every
/// `interval` when it changed (one UPDATE through the group-commit writer), and once more after
/// the run's end is stored; then the watchers get `agent.run.ended` and the run leaves the map.
///
/// A watch attaches under the run's lock: the text it answers with and the live deltas after it
/// come from the same state, so nothing is missed or repeated. A run not going on here (ended, or a
/// background run waiting for its next attempt) answers from the stored partial; a watcher of a
/// run still `running` waits in the map for it (or for its end). An attempt that stops while its
/// run goes on (`suspend`) keeps its watchers for the next `begin`, whose deltas start again from
/// seq 1 of the next attempt (a client drops its text when the attempt changes).
///
/// Lock order: the map's, then a run's.
final class AgentRunStreams: Sendable {
    let store: any AgentPartialStore
    let timer: AgentPartialTimer
    let interval: Duration
    /// Deltas a watcher may have waiting for its client before its watch ends (`agent.watch.overflow`).
    let capacity: Int
    let logger: Logger

    private struct State {
        /// A run is here from `begin` until its end is sent, and while it has watchers waiting for it.
        var streams: [String: AgentRunStream] = [:]
        /// The runs here that are not going on (their watchers wait).
        var waiting: Set<String> = []
    }

    // Invariant: only touched under the mutex, through `update` for a change (which keeps `waiting`).
    private let state = Mutex(State())
    /// `waiting.count`, read without the lock on every commit (`AgentService.runsEnded`).
    private let waitingCount = Atomic<Int>(0)
    private let nextWatcherID = Atomic<UInt64>(1)

    init(store: any AgentPartialStore, timer: @escaping AgentPartialTimer, interval: Duration, capacity: Int, logger: Logger) {
        self.store = store
        self.timer = timer
        self.interval = interval
        self.capacity = capacity
        self.logger = logger
    }

    /// The run starts an attempt here (the first, or another after a crash or a retry): watchers
    /// waiting for it get its deltas from seq 1 of `attempt`.
    func begin(_ run: AgentRun, userID: String, attempt: Int) -> AgentRunStream {
        let stream = update(run.id) { streams in
            if let waiting = streams[run.id], waiting.userID == userID {
                waiting.restart(attempt: attempt)
                return waiting
            }
            let stream = AgentRunStream(runID: run.id, chatID: run.chatId, userID: userID, attempt: attempt, running: true)
            streams[run.id] = stream
            return stream
        }
        startStoring(stream)
        return stream
    }

    /// Every `interval`, the partial answer when it changed. Stops when cancelled (`end`).
    private func startStoring(_ stream: AgentRunStream) {
        let (timer, interval) = (self.timer, self.interval)
        let task = Task { [self] in
            while true {
                do { try await timer(interval) } catch { return }
                if Task.isCancelled { return }
                guard let partial = stream.unstored() else { continue }
                await store(partial, of: stream, final: false)
            }
        }
        stream.setStoring(task)
    }

    private func store(_ partial: AgentRunPartial, of stream: AgentRunStream, final: Bool) async {
        do {
            try await store.storePartial(partial, userID: stream.userID, final: final)
            stream.stored(partial)
        } catch {
            logger.error("could not store a run's partial answer", metadata: ["run": "\(partial.runID)", "error": "\(error)"])
        }
    }

    /// The run's end is stored: stores its partial answer a last time, then ends its watches with
    /// `ended` and forgets it. Not cancellable (the run's own cancellation must not skip it).
    func end(_ stream: AgentRunStream, _ ended: AgentRunEnded) async {
        await Task { [self] in
            if let storing = stream.takeStoring() {
                storing.cancel()
                // A store in flight lands before the last one.
                await storing.value
            }
            let partial = stream.snapshot()
            if partial.seq > 0 { await store(partial, of: stream, final: true) }
            finish(stream, ended)
        }.value
    }

    /// The attempt stopped but the run goes on (a background run to be started again, as another
    /// attempt): stores its partial answer, and its watchers wait for the next `begin` (whose
    /// deltas start again from seq 1 of that attempt) or for its end to be committed elsewhere
    /// (`AgentService.runsEnded`).
    func suspend(_ stream: AgentRunStream) async {
        await Task { [self] in
            if let storing = stream.takeStoring() {
                storing.cancel()
                await storing.value
            }
            if let partial = stream.unstored() { await store(partial, of: stream, final: false) }
            update(stream.runID) { streams in
                if stream.pause(), streams[stream.runID] === stream { streams.removeValue(forKey: stream.runID) }
            }
        }.value
    }

    /// For every way out of the attempt that neither ended nor suspended it (its start could not
    /// be stored): ends its watches (a run never stored has none but a guesser's) and forgets it.
    func close(_ stream: AgentRunStream) {
        stream.takeStoring()?.cancel()
        guard stream.isRunning else { return }
        finish(stream, AgentRunEnded(runId: stream.runID, status: .failed, error: LLMErrorSummary(kind: "internal", message: "internal error")))
    }

    private func finish(_ stream: AgentRunStream, _ ended: AgentRunEnded) {
        update(stream.runID) { streams in
            guard stream.end(ended) else { return }
            if streams[stream.runID] === stream { streams.removeValue(forKey: stream.runID) }
        }
    }

    // MARK: Watchers

    func makeWatcherID() -> UInt64 { nextWatcherID.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Attaches a watcher to the run when it is going on here and is `userID`'s: returns the reply
    /// (its deltas follow on `push`); nil otherwise.
    func attachIfRunning(runID: String, userID: String, watcher: UInt64, push: RPCPushStream, since: Int?, sinceAttempt: Int) -> AgentRunWatch? {
        update(runID) { streams in
            guard let stream = streams[runID], stream.userID == userID else { return nil }
            return stream.attachIfRunning(watcher, push: push, since: since, sinceAttempt: sinceAttempt)
        }
    }

    /// Attaches a watcher to a run read from the store (`run`, `partial`): live when it began here
    /// meanwhile; ended at once when it ended; otherwise waiting for it (`waiting` true: the caller
    /// checks the store once more, as the run may have ended before the watcher was added).
    func attach(
        run: AgentRun, partial: AgentRunPartial, userID: String, watcher: UInt64, push: RPCPushStream, since: Int?, sinceAttempt: Int
    ) -> (reply: AgentRunWatch, waiting: Bool) {
        update(run.id) { streams in
            if let stream = streams[run.id], stream.userID == userID,
                let reply = stream.attachIfRunning(watcher, push: push, since: since, sinceAttempt: sinceAttempt)
            {
                return (reply, false)
            }
            let (seq, text) = partial.catchUp(since: since, sinceAttempt: sinceAttempt)
            let reply = AgentRunWatch(runId: run.id, chatId: run.chatId, status: run.status, attempt: partial.attempt, seq: seq, text: text)
            guard run.status == .running else {
                if let message = Self.message(Agent.RunEnded.self, Self.ended(run)) { push.finish(with: message) }
                return (reply, false)
            }
            let stream =
                streams[run.id]
                ?? AgentRunStream(runID: run.id, chatID: run.chatId, userID: userID, attempt: partial.attempt, running: false)
            streams[run.id] = stream
            stream.add(watcher, push: push)
            return (reply, true)
        }
    }

    /// A waiting watcher's run is found ended in the store (`run`): its watch ends with `run`'s end
    /// (unless the run began here again meanwhile, or the watcher already left). Returns the reply
    /// to answer instead when this ended the watch: the stored partial read again, because a whole
    /// attempt may have begun and ended here between the caller's first read and its attach (the
    /// reply would hold that read's stale text, and `agent.run.ended` would follow it with a gap).
    /// That read is the final one: an attempt that ended here before the attach stored its partial
    /// before leaving the map, and one that began here after it took the watcher (no reply then).
    func endWaiting(
        _ run: AgentRun, userID: String, watcher: UInt64, since: Int?, sinceAttempt: Int
    ) async throws -> AgentRunWatch? {
        let partial = try await store.partial(runID: run.id, userID: userID)
        return update(run.id) { streams -> AgentRunWatch? in
            guard let stream = streams[run.id] else { return nil }
            let (ended, empty) = stream.endWaiting(watcher, Self.ended(run))
            if empty { streams.removeValue(forKey: run.id) }
            guard ended, let partial else { return nil }
            let (seq, text) = partial.catchUp(since: since, sinceAttempt: sinceAttempt)
            return AgentRunWatch(runId: run.id, chatId: run.chatId, status: run.status, attempt: partial.attempt, seq: seq, text: text)
        }
    }

    /// Whether watchers wait for a run that is not going on here (cheap: the map holds the runs of
    /// this process).
    func isWaiting(runID: String? = nil) -> Bool {
        guard let runID else { return waitingCount.load(ordering: .relaxed) > 0 }
        return state.withLock { $0.waiting.contains(runID) }
    }

    /// A run watchers wait for ended without beginning here (a queued background run cancelled):
    /// their watches end.
    func endWaiting(runID: String, _ ended: AgentRunEnded) {
        update(runID) { streams in
            guard let stream = streams[runID], !stream.isRunning else { return }
            if stream.end(ended) { streams.removeValue(forKey: runID) }
        }
    }

    /// A watcher's push stream ended (the run ended, it overflowed, its connection closed).
    func detach(runID: String, watcher: UInt64) {
        update(runID) { streams in
            guard let stream = streams[runID] else { return }
            if stream.remove(watcher) { streams.removeValue(forKey: runID) }
        }
    }

    /// Runs in the map (going on, or waited for): for tests.
    var count: Int { state.withLock { $0.streams.count } }

    /// Changes the map for `runID` and keeps `waiting` up to date.
    private func update<T>(_ runID: String, _ body: (inout [String: AgentRunStream]) -> T) -> T {
        state.withLock { state in
            let result = body(&state.streams)
            if let stream = state.streams[runID], !stream.isRunning {
                state.waiting.insert(runID)
            } else {
                state.waiting.remove(runID)
            }
            waitingCount.store(state.waiting.count, ordering: .relaxed)
            return result
        }
    }

    // MARK: Messages

    static func ended(_ run: AgentRun) -> AgentRunEnded {
        AgentRunEnded(runId: run.id, status: run.status, messageId: run.assistantMessageId, error: run.error)
    }

    /// A whole notification, encoded once for every stream it goes to.
    static func message<N: RPCNotification>(_: N.Type, _ params: N.Params) -> ByteBuffer? {
        var buffer = ByteBuffer()
        buffer.writeString(#"{"jsonrpc":"2.0","method":"\#(N.name)","params":"#)
        do {
            try RPCJSONEncoder().encode(params, into: &buffer)
        } catch {
            return nil
        }
        buffer.writeString("}")
        return buffer
    }

    /// A push message's position: the attempt and the seq, so that an overflow can name both.
    static func position(attempt: Int, seq: Int) -> Int64 { Int64(attempt) << 32 | Int64(seq) }

    static func overflowMessage(runID: String, position: Int64) -> ByteBuffer {
        let overflow = AgentWatchOverflow(runId: runID, attempt: Int(position >> 32), seq: Int(position & 0xFFFF_FFFF))
        return message(Agent.WatchOverflow.self, overflow) ?? ByteBuffer()
    }
}

/// One run's answer so far (of its current attempt) and its watchers.
final class AgentRunStream: Sendable {
    let runID: String
    let chatID: String
    let userID: String

    private struct State {
        var attempt: Int
        var seq = 0
        var text = ""
        /// `ends[n - 1]`: where delta n ends in `text` (UTF-8 bytes).
        var ends: [Int] = []
        /// The run is going on here (false: watchers wait for it to begin).
        var running: Bool
        var ended = false
        var watchers: [UInt64: RPCPushStream] = [:]
        /// The watchers added while the run was not going on here that no attempt has sent anything
        /// yet (their reply is all they have).
        var waitingFresh: Set<UInt64> = []
        /// What the last store wrote: a periodic store skips when nothing changed since.
        var stored: (attempt: Int, seq: Int)
        var storing: Task<Void, Never>?
    }

    // Invariant: only touched under the mutex.
    private let state: Mutex<State>

    init(runID: String, chatID: String, userID: String, attempt: Int, running: Bool) {
        self.runID = runID
        self.chatID = chatID
        self.userID = userID
        state = Mutex(State(attempt: attempt, running: running, stored: (attempt, 0)))
    }

    /// Numbers `delta` (seq from 1 per attempt, the attempt), keeps its text, and queues it on
    /// every watcher's stream. Returns it numbered.
    func publish(_ delta: AgentDelta) -> AgentDelta {
        state.withLock { state in
            var delta = delta
            state.seq += 1
            delta.seq = state.seq
            delta.attempt = state.attempt
            state.text += delta.text
            state.ends.append((state.ends.last ?? 0) + delta.text.utf8.count)
            if !state.watchers.isEmpty, let body = AgentRunStreams.message(Agent.Delta.self, delta) {
                let message = RPCPushMessage(
                    position: AgentRunStreams.position(attempt: state.attempt, seq: state.seq), head: ByteBuffer(), body: body)
                for watcher in state.watchers.values { watcher.send([message]) }
            }
            return delta
        }
    }

    /// `onDelta`, with every delta published here first (and numbered).
    func publishing(_ onDelta: @escaping @Sendable (AgentDelta) -> Void) -> @Sendable (AgentDelta) -> Void {
        { [self] delta in onDelta(publish(delta)) }
    }

    fileprivate var isRunning: Bool { state.withLock { $0.running } }

    /// The attempt stopped (`suspend`); true when no watcher waits for the next one.
    fileprivate func pause() -> Bool {
        state.withLock { state in
            state.running = false
            return state.watchers.isEmpty
        }
    }

    fileprivate func restart(attempt: Int) {
        state.withLock { state in
            state.attempt = attempt
            state.seq = 0
            state.text = ""
            state.ends = []
            state.running = true
            state.ended = false
            state.stored = (attempt, 0)
            state.waitingFresh = []
        }
    }

    fileprivate func setStoring(_ task: Task<Void, Never>) {
        state.withLock { $0.storing = task }
    }

    fileprivate func takeStoring() -> Task<Void, Never>? {
        state.withLock { $0.storing.take() }
    }

    /// The answer so far (copy-on-write: O(1) here).
    fileprivate func snapshot() -> AgentRunPartial {
        state.withLock { AgentRunPartial(runID: runID, attempt: $0.attempt, seq: $0.seq, text: $0.text, ends: $0.ends) }
    }

    /// The answer so far when it changed since it was last stored.
    fileprivate func unstored() -> AgentRunPartial? {
        state.withLock { state in
            guard state.stored != (state.attempt, state.seq) else { return nil }
            return AgentRunPartial(runID: runID, attempt: state.attempt, seq: state.seq, text: state.text, ends: state.ends)
        }
    }

    fileprivate func stored(_ partial: AgentRunPartial) {
        state.withLock { $0.stored = (partial.attempt, partial.seq) }
    }

    fileprivate func attachIfRunning(_ watcher: UInt64, push: RPCPushStream, since: Int?, sinceAttempt: Int) -> AgentRunWatch? {
        state.withLock { state in
            guard state.running, !state.ended else { return nil }
            let partial = AgentRunPartial(runID: runID, attempt: state.attempt, seq: state.seq, text: state.text, ends: state.ends)
            let (seq, text) = partial.catchUp(since: since, sinceAttempt: sinceAttempt)
            state.watchers[watcher] = push
            return AgentRunWatch(runId: runID, chatId: chatID, status: .running, attempt: state.attempt, seq: seq, text: text)
        }
    }

    /// Adds a watcher while the run is not going on here.
    fileprivate func add(_ watcher: UInt64, push: RPCPushStream) {
        state.withLock { state in
            state.watchers[watcher] = push
            state.waitingFresh.insert(watcher)
        }
    }

    /// Ends every watch with `ended`. False when the run had ended already.
    fileprivate func end(_ ended: AgentRunEnded) -> Bool {
        state.withLock { state in
            guard !state.ended else { return false }
            state.ended = true
            state.running = false
            if !state.watchers.isEmpty, let message = AgentRunStreams.message(Agent.RunEnded.self, ended) {
                for watcher in state.watchers.values { watcher.finish(with: message) }
            }
            state.watchers = [:]
            state.waitingFresh = []
            return true
        }
    }

    /// Ends a waiting watcher's watch: `ended` when it did so to a watcher no attempt sent anything
    /// yet; `empty` when the run is no longer needed in the map.
    fileprivate func endWaiting(_ watcher: UInt64, _ ended: AgentRunEnded) -> (ended: Bool, empty: Bool) {
        state.withLock { state in
            guard !state.running, let push = state.watchers.removeValue(forKey: watcher) else { return (false, false) }
            if let message = AgentRunStreams.message(Agent.RunEnded.self, ended) { push.finish(with: message) }
            return (state.waitingFresh.remove(watcher) != nil, state.watchers.isEmpty)
        }
    }

    /// True when the run is no longer needed in the map (not going on here, no watcher left).
    fileprivate func remove(_ watcher: UInt64) -> Bool {
        state.withLock { state in
            state.watchers.removeValue(forKey: watcher)
            state.waitingFresh.remove(watcher)
            return !state.running && state.watchers.isEmpty
        }
    }
}
