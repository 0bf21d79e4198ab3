import ArgumentParser
import Logging
import Storage

#if canImport(Glibc)
import Glibc
#endif

/// `agentd migrate [--status] [--database PATH]`: applies the pending migrations (the daemon also
/// does at start), or with `--status` lists applied and pending ones without changing anything.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the pending database migrations, or list them with --status.",
        usage: "agentd migrate [--status] [--database <path>]",
        discussion: "--database is the daemon's option (default: $XDG_DATA_HOME/agentd/agentd.sqlite, else "
            + "~/.local/share/agentd/agentd.sqlite). Exits 1, changing nothing, when the database was written by a newer "
            + "agentd or an applied migration differs from this binary's.")

    /// `--database` belongs to the root command: ArgumentParser lets a parent's options appear after
    /// the subcommand's name and gives them to the parent, so a second `--database` declared here
    /// would never receive a value.
    @ParentCommand var agentd: Agentd

    @Flag(help: "List applied and pending migrations; apply nothing.")
    var status = false

    func run() async throws {
        // The same resolution as the daemon's: --database, AGENTD_DATABASE, the configuration file.
        let base = DaemonConfiguration(socketPath: "", databasePath: DaemonConfiguration.defaultDatabasePath())
        let path: String
        do {
            path = try agentd.makeLoader().load(base: base).configuration.databasePath
        } catch let error as DaemonError {
            Agentd.fail(error)
        }
        do {
            if status {
                FileHandleOutput.standardOutput(try await Self.status(path: path))
            } else {
                FileHandleOutput.standardOutput(try await Self.apply(path: path))
            }
        } catch {
            Agentd.fail(DaemonError(databaseError: error, path: path))
        }
    }

    /// One line per migration, applied then pending: `0001  init  applied  2026-01-31T12:00:00.000Z`.
    static func status(path: String) async throws -> String {
        let status: MigrationStatus
        var header = "database: \(path)\n"
        if access(path, F_OK) != 0 {
            // Listing never creates the file.
            header = "database: \(path) (does not exist yet)\n"
            status = MigrationStatus(applied: [], pending: Migration.embedded, latestKnownVersion: Migrator().latestVersion)
        } else {
            let database = try AgentDatabase.open(path: path)
            defer { try? database.close() }
            status = try await database.migrationStatus()
        }
        let rows: [(version: Int, name: String, state: String)] =
            status.applied.map { ($0.version, $0.name, "applied  \($0.appliedAt)") }
            + status.pending.map { ($0.version, $0.name, "pending") }
        let width = rows.map(\.name.count).max() ?? 0
        var text = header
        text += "schema version: \(status.schemaVersion) (this agentd has migrations up to \(status.latestKnownVersion))\n"
        for row in rows {
            text += "\(Migration.paddedVersion(row.version))  \(row.name.padding(toLength: width))  \(row.state)\n"
        }
        return text
    }

    static func apply(path: String) async throws -> String {
        let database = try AgentDatabase.open(path: path)
        defer { try? database.close() }
        var logger = Logger(label: "agentd")
        logger.logLevel = .critical
        let applied = try await database.migrate(logger: logger)
        let version = try await database.migrationStatus().schemaVersion
        var text = "database: \(path)\n"
        if applied.isEmpty {
            text += "nothing to apply: schema version \(version) is current\n"
        } else {
            for migration in applied { text += "applied \(migration.fileName)\n" }
            text += "schema version: \(version)\n"
        }
        return text
    }
}

extension String {
    fileprivate func padding(toLength length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
