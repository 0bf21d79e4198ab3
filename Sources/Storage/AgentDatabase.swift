import GRDB
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// agentd's SQLite database: one file, opened once by the composition root, shared by every store.
///
/// On a file it is a GRDB `DatabasePool`: WAL journal, one writer connection and a pool of reader
/// connections, so reads run alongside the one write in progress. Every connection has
/// `PRAGMA foreign_keys = ON` and a 5-second busy timeout (another process holding the write lock
/// makes a write wait, not fail).
///
/// Durability: `synchronous = NORMAL`. A commit is in the WAL file (in the OS page cache) when the
/// write returns, so it survives the process crashing or being killed (`kill -9`); it is fsynced at
/// the next checkpoint, so the last commits can be lost on a power cut or kernel crash, never
/// corrupted. A `durability = full` configuration key (`synchronous = FULL`) comes later.
///
/// Stores use `writer.write { db in … }` and `writer.read { db in … }` from async code: GRDB runs them
/// on its own serial queues, never on a NIO event loop.
///
/// ```swift
/// let database = try AgentDatabase.open(path: "/var/lib/agentd/agentd.sqlite")
/// try await database.migrate(logger: logger)
/// let count = try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM users") }
/// ```
public struct AgentDatabase: Sendable {
    /// The pool (file) or queue (memory). Stores keep this, not the `AgentDatabase`.
    public let writer: any DatabaseWriter
    /// The file's path, or `:memory:`; used in logs and messages.
    public let path: String
    /// The migrations this database is brought up to.
    public let migrator: Migrator

    /// Opens (creating when missing) the database file at `path`: missing parent folders are
    /// created with mode 0700 and a new file with mode 0600 (SQLite gives its `-wal` and `-shm`
    /// files the same mode). Does not migrate: call `migrate(logger:)`.
    ///
    /// - Throws: ``AgentDatabaseError`` when a folder or the file cannot be created or opened, or
    ///   the file is not an SQLite database.
    public static func open(path: String, migrator: Migrator = Migrator()) throws(AgentDatabaseError) -> AgentDatabase {
        try createParentFolders(of: path)
        try createFileIfMissing(path)
        do {
            // A pool puts the file in WAL mode (and fails when it cannot).
            var configuration = configuration()
            configuration.prepareDatabase { db in
                // Checkpoints are `WALCheckpointer`'s job; the writer's own is only a backstop.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.writerBackstopPages)")
            }
            let pool = try DatabasePool(path: path, configuration: configuration)
            return AgentDatabase(writer: pool, path: path, migrator: migrator)
        } catch let error as DatabaseError {
            throw AgentDatabaseError(path: path, reason: error.message ?? "\(error)")
        } catch {
            throw AgentDatabaseError(path: path, reason: "\(error)")
        }
    }

    /// A private in-memory database with the same settings (except WAL, which needs a file): for
    /// tests, and for commands that build the object graph without touching any file.
    public static func inMemory(migrator: Migrator = Migrator()) throws(AgentDatabaseError) -> AgentDatabase {
        do {
            return AgentDatabase(writer: try DatabaseQueue(configuration: configuration()), path: ":memory:", migrator: migrator)
        } catch {
            throw AgentDatabaseError(path: ":memory:", reason: "\(error)")
        }
    }

    /// The connection settings shared by the file and in-memory variants.
    static func configuration() -> Configuration {
        var configuration = Configuration()
        configuration.label = "agentd"
        // GRDB's default too; set here because the schema's ON DELETE CASCADE relies on it. It runs
        // `PRAGMA foreign_keys = ON` on every connection it opens, readers included.
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // A pool's writer already gets NORMAL with WAL (GRDB); say so for every connection rather
            // than depend on that default. FULL arrives with the `durability` configuration key.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Savepoint journals (every group-commit job runs in a savepoint) and sort spills in
            // memory, not in temporary files: a job that touched 15 pages wrote each of them to a
            // file first (measured on the agent's start transaction).
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return configuration
    }

    /// Applies the pending migrations (see ``Migrator/migrate(_:database:logger:)``).
    @discardableResult
    public func migrate(logger: Logger) async throws -> [Migration] {
        try await migrator.migrate(writer, database: path, logger: logger)
    }

    /// The applied and pending migrations, applying nothing.
    public func migrationStatus() async throws -> MigrationStatus {
        try await migrator.status(of: writer, database: path)
    }

    /// Closes the connections. The `-wal` file stays (GRDB closes the writer before the read-only
    /// readers, so none can fold it back into the file); it holds committed data and the next
    /// connection uses and checkpoints it as usual.
    public func close() throws {
        try writer.close()
    }

    private static func createParentFolders(of path: String) throws(AgentDatabaseError) {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        var current = path.hasPrefix("/") ? "" : "."
        for component in components {
            current += "/" + component
            if mkdir(current, 0o700) != 0, errno != EEXIST {
                throw AgentDatabaseError(path: path, reason: "cannot create folder \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func createFileIfMissing(_ path: String) throws(AgentDatabaseError) {
        if !createExclusively(path, mode: 0o600), errno != EEXIST {
            throw AgentDatabaseError(path: path, reason: String(cString: strerror(errno)))
        }
    }
}

/// Creates an empty file with `mode` when nothing exists at `path` (false, with `errno`, otherwise).
private func createExclusively(_ path: String, mode: mode_t) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { return false }
    close(fd)
    return true
}

/// The database file could not be opened; the description names it and says why.
public struct AgentDatabaseError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot open database \(path): \(reason)" }
}
