import Logging
import ServiceLifecycle
import Storage

/// Runs `WALCheckpointer` for the daemon's service group: a passive checkpoint every `busyInterval`
/// while there are frames to copy, backing off to `idleInterval` while the WAL stays empty (an
/// idle daemon wakes once a second for it), and a last one at shutdown.
struct DatabaseCheckpointService: Service {
    /// Short: each checkpoint's copy and `fdatasync` is then small. The writer's WAL appends stall
    /// while the file system commits its journal for that sync, so a bigger checkpoint is a longer
    /// stall (paced appends with 100 subscribers, p99: 1 s → 20–34 ms, 200 ms → 8–9 ms,
    /// 50 ms → 6–8 ms; BENCHMARKS.md).
    static let busyInterval: Duration = .milliseconds(50)
    static let idleInterval: Duration = .seconds(1)

    let checkpointer: WALCheckpointer
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown { await checkpoints() }
        _ = await checkpoint(logFailure: true)
        try? checkpointer.close()
    }

    private func checkpoints() async {
        var interval = Self.busyInterval
        var last: (walFrames: Int, checkpointed: Int)?
        var failing = false
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            // A failure is logged once (a full disk would otherwise log five times a second), and
            // its end too.
            let result = await checkpoint(logFailure: !failing)
            if result == nil, !failing { failing = true }
            if result != nil, failing {
                failing = false
                logger.notice("WAL checkpoints work again")
            }
            // Work found: the WAL changed since the last look (a WAL wholly copied stays as it is
            // until the next write restarts it).
            let busy = result.map { now in last.map { $0 != now } ?? true } ?? false
            last = result ?? last
            interval = busy ? Self.busyInterval : min(interval * 2, Self.idleInterval)
        }
    }

    /// The WAL's frames and how many are in the file; nil when the checkpoint failed.
    private func checkpoint(logFailure: Bool) async -> (walFrames: Int, checkpointed: Int)? {
        do {
            let result = try await checkpointer.checkpoint()
            if result.walFrames > 0, result.checkpointed < result.walFrames {
                logger.debug(
                    "checkpoint partial: a reader holds older pages",
                    metadata: ["wal_frames": "\(result.walFrames)", "checkpointed": "\(result.checkpointed)"])
            }
            return result
        } catch {
            if logFailure { logger.warning("WAL checkpoint failed; the writer's own checkpoint remains", metadata: ["error": "\(error)"]) }
            return nil
        }
    }
}
