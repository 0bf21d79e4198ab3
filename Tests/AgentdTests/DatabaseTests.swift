import Foundation
import GRDB
import Storage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The database file as the daemon and `agentd migrate` see it: created at start before the socket
/// listens, migrated, listed, and refused when a newer agentd wrote it.
@Suite("Database", .blockingIO, .timeLimit(.minutes(1)))
struct DatabaseTests {
    /// The newest schema version this binary knows (the versions may skip numbers).
    static let latestVersion = Migration.embedded.last?.version ?? 0
    /// `agentd migrate <arguments>`, with `$XDG_DATA_HOME` pointing into `directory`: were `--database`
    /// ever ignored, the test would fail here instead of touching the user's own database.
    static func migrate(_ arguments: [String], in directory: TemporaryDirectory) throws -> (termination: Termination, stdout: String, stderr: String)
    {
        let fallback = "\(directory.path)/xdg-data"
        let run = try runCommand(TestPaths.agentdBinary, ["migrate"] + arguments, environment: ["XDG_DATA_HOME": fallback])
        #expect(!FileManager.default.fileExists(atPath: fallback), "agentd migrate \(arguments) used the default database, not --database")
        return run
    }

    /// Edits the database as another agentd would, with SQLite directly.
    static func tamper(_ path: String, _ sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql) }
        try queue.close()
    }

    @Test("--database in missing folders: they are created 0700, the file 0600; `migrate --status` lists 0001 as applied")
    func createsAndMigrates() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "\(directory.path)/sub/dir/agentd.sqlite"
        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--database", database])
        defer { daemon.kill() }
        try daemon.waitForLog(containing: "listening")
        #expect(daemon.stderr.contains("database ready"), "stderr: \(daemon.stderr)")
        #expect(daemon.stderr.contains(database), "the log names the file: \(daemon.stderr)")
        try expectReply(daemon.connect().ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        for folder in ["\(directory.path)/sub", "\(directory.path)/sub/dir"] {
            let mode = try #require(LifecycleTests.fileMode(folder), "\(folder) missing")
            #expect(mode & 0o7777 == 0o700, "\(folder) has mode \(String(mode & 0o7777, radix: 8))")
        }
        let mode = try #require(LifecycleTests.fileMode(database), "\(database) missing")
        #expect(mode & 0o7777 == 0o600, "the database has mode \(String(mode & 0o7777, radix: 8))")

        // While the daemon runs (WAL: readers do not block it), and after it stopped.
        for _ in 0..<2 {
            let status = try Self.migrate(["--status", "--database", database], in: directory)
            #expect(status.termination == .exited(0), "stderr: \(status.stderr)")
            let lines = status.stdout.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("0001  init ") && $0.contains("  applied  20") }, "stdout: \(status.stdout)")
            #expect(!lines.contains { $0.contains("pending") }, "stdout: \(status.stdout)")
            #expect(status.stdout.contains("schema version: \(Self.latestVersion)"), "stdout: \(status.stdout)")
            if daemon.isRunning {
                daemon.terminate()
                #expect(try daemon.waitForExit() == .exited(0))
            }
        }
    }

    @Test("the daemon checkpoints the WAL in the background: what clients wrote reaches the database file while it runs, and all of it by the stop")
    func backgroundCheckpoints() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "\(directory.path)/agentd.sqlite"
        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--database", database])
        defer { daemon.kill() }
        try daemon.waitUntilConnectable()
        let size = { (try? FileManager.default.attributesOfItem(atPath: database)[.size] as? NSNumber)?.intValue ?? 0 }
        let client = ClientConnection(try daemon.connect())
        let content = String(repeating: "checkpoint ", count: 70_000)  // 770 KB each, 3.8 MB in all
        for index in 0..<5 {
            _ = try client.result("modules.create", #"{"title":"Module \#(index)","content":"\#(content)"}"#)
        }
        // The writer's own threshold is 64 MiB, so only the background checkpointer can put these
        // rows in the file (not sequencing: waiting for the file to change, up to a deadline).
        let deadline = Deadline(.seconds(30))
        while size() < 3_800_000, !deadline.hasPassed {
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
        }
        #expect(size() >= 3_800_000, "database file \(size()) bytes\n\(daemon.stderr)")
        // After a stop the main file alone holds everything, the last write included.
        _ = try client.result("modules.create", #"{"title":"The last one"}"#)
        daemon.terminate()
        #expect(try daemon.waitForExit() == .exited(0))
        let copy = "\(directory.path)/copy.sqlite"
        try FileManager.default.copyItem(atPath: database, toPath: copy)
        let queue = try DatabaseQueue(path: copy)
        defer { try? queue.close() }
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM modules") } == 6)
    }

    @Test("`agentd migrate` applies what is pending and prints it; a second run has nothing to apply")
    func migrateCommand() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "\(directory.path)/data/agentd.sqlite"

        let before = try Self.migrate(["--status", "--database", database], in: directory)
        #expect(before.termination == .exited(0), "stderr: \(before.stderr)")
        #expect(before.stdout.contains("does not exist yet"), "stdout: \(before.stdout)")
        #expect(
            before.stdout.split(separator: "\n").contains { $0.hasPrefix("0001  init ") && $0.hasSuffix("  pending") }, "stdout: \(before.stdout)")
        #expect(!LifecycleTests.exists("\(directory.path)/data"), "--status must not create anything")

        let first = try Self.migrate(["--database", database], in: directory)
        #expect(first.termination == .exited(0), "stderr: \(first.stderr)")
        #expect(first.stdout.contains("applied 0001_init.sql"), "stdout: \(first.stdout)")
        let second = try Self.migrate(["--database", database], in: directory)
        #expect(second.termination == .exited(0), "stderr: \(second.stderr)")
        #expect(second.stdout.contains("nothing to apply: schema version \(Self.latestVersion) is current"), "stdout: \(second.stdout)")
    }

    @Test("a database written by a newer agentd: the daemon exits 1 before listening; migrate refuses too")
    func refusesNewerDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "\(directory.path)/agentd.sqlite"
        #expect(try Self.migrate(["--database", database], in: directory).termination == .exited(0))
        try Self.tamper(database, "INSERT INTO schema_migrations VALUES (9999, 'future', 'x', '2099-01-01T00:00:00.000Z')")

        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--database", database])
        defer { daemon.kill() }
        #expect(try daemon.waitForExit() == .exited(1))
        let expected =
            "agentd: database \(database) was written by a newer agentd (schema version 9999, this binary knows up to \(Self.latestVersion)); refusing to downgrade"
        #expect(daemon.stderr.contains(expected), "stderr: \(daemon.stderr)")
        #expect(!LifecycleTests.exists(daemon.socketPath), "it must stop before creating the socket")

        for arguments in [["--status", "--database", database], ["--database", database]] {
            let run = try Self.migrate(arguments, in: directory)
            #expect(run.termination == .exited(1), "migrate \(arguments)")
            #expect(run.stderr.contains("newer agentd"), "migrate \(arguments): \(run.stderr)")
        }
    }

    @Test("an applied migration whose checksum differs: the daemon exits 1 naming the migration")
    func refusesChangedMigration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "\(directory.path)/agentd.sqlite"
        #expect(try Self.migrate(["--database", database], in: directory).termination == .exited(0))
        try Self.tamper(database, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--database", database])
        defer { daemon.kill() }
        #expect(try daemon.waitForExit() == .exited(1))
        #expect(
            daemon.stderr.contains("agentd: database \(database): migration 0001_init.sql was changed after it was applied"),
            "stderr: \(daemon.stderr)")
    }

    @Test("a database path that cannot be opened stops the daemon with exit 1 and the path")
    func unopenableDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // A folder where the file should be.
        let database = "\(directory.path)/agentd.sqlite"
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: false)
        let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: ["--database", database])
        defer { daemon.kill() }
        #expect(try daemon.waitForExit() == .exited(1))
        #expect(daemon.stderr.contains("agentd: cannot open database \(database): "), "stderr: \(daemon.stderr)")
    }

    @Test("`agentd openrpc` opens no database file")
    func openRPCOpensNoDatabase() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let printed = try runCommand(TestPaths.agentdBinary, ["openrpc"], environment: ["XDG_DATA_HOME": directory.path, "HOME": directory.path])
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        let created = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(created.isEmpty, "created: \(created)")
    }
}
