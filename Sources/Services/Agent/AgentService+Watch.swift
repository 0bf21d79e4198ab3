import Foundation
import RPC
import Synchronization

// agent.runs.watch: following a run from any connection of its owner (AgentRunStreams).
extension AgentService {
    /// Attaches `request`'s connection to the run: answers the text so far; its deltas, then
    /// `agent.run.ended`, follow the reply on a push stream of the connection.
    ///
    /// - Throws: `AgentError.notFound` (also for another user's run), `.invalid` (`since`, `attempt`).
    public func watch(_ params: Agent.Runs.Watch.Params, userID: String, request: RPCContext) async throws -> AgentRunWatch {
        if let since = params.since, since < 0 { throw AgentError.invalid(field: "since", reason: "a delta seq (0 or more)") }
        if let attempt = params.attempt, attempt < 1 { throw AgentError.invalid(field: "attempt", reason: "1 or more") }
        let sinceAttempt = params.attempt ?? 1
        let watches = request.connection.attributes.setIfAbsent(ConnectionWatchesKey.self, ConnectionWatches())
        guard watches.add(limit: watchesPerConnection) else { throw AgentError.tooManyWatches(limit: watchesPerConnection) }
        let runID = params.runId
        let streams = self.streams
        let watcher = streams.makeWatcherID()
        // Where the client stands when nothing was written yet: the reply's attempt and seq.
        let start = WatchStart()
        let push = request.openPushStream(
            RPCPushStreamOptions(
                capacity: streams.capacity,
                overflowMessage: { lastWritten in AgentRunStreams.overflowMessage(runID: runID, position: lastWritten ?? start.position) },
                onEnd: { _ in
                    streams.detach(runID: runID, watcher: watcher)
                    watches.remove()
                }))
        if let reply = streams.attachIfRunning(
            runID: runID, userID: userID, watcher: watcher, push: push, since: params.since, sinceAttempt: sinceAttempt)
        {
            start.set(reply)
            return reply
        }
        guard let run = try await store.run(id: runID, userID: userID) else { throw AgentError.notFound(kind: "run", id: runID) }
        let partial =
            try await store.partial(runID: runID, userID: userID) ?? AgentRunPartial(runID: runID, attempt: 1, seq: 0, text: "", ends: [])
        var (reply, waiting) = streams.attach(
            run: run, partial: partial, userID: userID, watcher: watcher, push: push, since: params.since, sinceAttempt: sinceAttempt)
        start.set(reply)
        // The run may have ended between the read and the attach: then nothing would end the watch,
        // and the text read may be stale (a whole attempt may have run here meanwhile).
        if waiting, let now = try await store.run(id: runID, userID: userID), now.status != .running,
            let stored = try await streams.endWaiting(now, userID: userID, watcher: watcher, since: params.since, sinceAttempt: sinceAttempt)
        {
            reply = stored
            start.set(reply)
        }
        return reply
    }

    /// Committed events (`EventBus.onCommit`, on the writer's queue: cheap unless watchers wait):
    /// the watchers waiting for a run that ended without beginning here (a queued background run
    /// cancelled) hear its end. The runs that end in `perform` tell their watchers themselves.
    public func runsEnded(_ committed: [Event]) {
        guard streams.isWaiting() else { return }
        for event in committed where Self.endTopics.contains(event.topic) {
            struct Ended: Decodable { var runId: String }
            guard let runID = try? JSONDecoder().decode(Ended.self, from: Data(event.data.text.utf8)).runId,
                streams.isWaiting(runID: runID)
            else { continue }
            let (store, streams, logger, userID) = (self.store, self.streams, self.logger, event.userID)
            Task {
                do {
                    guard let run = try await store.run(id: runID, userID: userID), run.status != .running else { return }
                    streams.endWaiting(runID: runID, AgentRunStreams.ended(run))
                } catch {
                    logger.error("could not read an ended run for its watchers", metadata: ["run": "\(runID)", "error": "\(error)"])
                }
            }
        }
    }

    private static let endTopics: Set<String> = [AgentEvents.RunCompleted.topic, AgentEvents.RunFailed.topic, AgentEvents.RunCancelled.topic]

    /// How a run's call ended, for its watchers: the outcome `end` (AgentService+End.swift) made
    /// after storing the run's end says the same as the stored row.
    static func ended(_ run: AgentRun, _ outcome: Result<AgentAnswer, any Error>) -> AgentRunEnded {
        switch outcome {
        case .success(let answer):
            return AgentRunEnded(runId: run.id, status: .completed, messageId: answer.message.id)
        case .failure(AgentError.cancelled(_, let messageId)):
            return AgentRunEnded(runId: run.id, status: .cancelled, messageId: messageId)
        case .failure(let error):
            return AgentRunEnded(runId: run.id, status: .failed, error: summary(error))
        }
    }
}

/// A watch's reply position, read by its overflow message when no delta was written.
private final class WatchStart: Sendable {
    private let value = Atomic<Int64>(0)

    var position: Int64 { value.load(ordering: .relaxed) }

    func set(_ reply: AgentRunWatch) {
        value.store(AgentRunStreams.position(attempt: reply.attempt, seq: reply.seq), ordering: .relaxed)
    }
}

/// How many watches a connection has going (each ends on its push stream's end: the run's end, an
/// overflow, a failed call, the connection's close).
final class ConnectionWatches: Sendable {
    // Only touched under the mutex.
    private let count = Mutex(0)

    func add(limit: Int) -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func remove() {
        count.withLock { $0 -= 1 }
    }
}

enum ConnectionWatchesKey: RPCConnectionAttributeKey {
    typealias Value = ConnectionWatches
}
