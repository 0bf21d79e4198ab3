import GRDB

/// Copies committed pages from the WAL into the database file from a connection of its own, so that
/// the writer does not do it inside a commit.
///
/// SQLite's automatic checkpoint runs in the connection whose commit crossed the threshold (1,000
/// pages by default): that commit then also copies the WAL into the file and `fdatasync`s it, which
/// on this VM's disk took the append round trip's p99 from ~5 ms (tmpfs) to 11–12 ms, and every
/// caller of the batch waited for it. `AgentDatabase.open` raises the writer's own threshold to
/// `writerBackstopPages`, and the daemon runs a checkpointer (`DatabaseCheckpointService`): the
/// writer only checkpoints when that one has fallen far behind (or is not running: tools, tests).
///
/// A passive checkpoint never waits: it copies the frames no reader still needs, while the writer
/// keeps committing; the writer restarts the WAL from its beginning once everything in it is in the
/// file.
public final class WALCheckpointer: Sendable {
    /// The writer's own automatic checkpoint threshold, in pages (64 MiB): a backstop for when the
    /// checkpointer falls behind or does not run.
    public static let writerBackstopPages = 16_384

    private let connection: DatabaseQueue

    /// Opens a connection to the database at `path` (already in WAL mode: `AgentDatabase.open`).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "agentd.checkpoint"
        configuration.busyMode = .timeout(5)
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// One passive checkpoint: how many frames the WAL holds and how many of them are now in the
    /// database file (all of them unless a reader still needs older pages).
    @discardableResult
    public func checkpoint() async throws -> (walFrames: Int, checkpointed: Int) {
        try await connection.writeWithoutTransaction { db in
            let result = try db.checkpoint(.passive)
            return (result.walFrameCount, result.checkpointedFrameCount)
        }
    }

    public func close() throws {
        try connection.close()
    }
}
