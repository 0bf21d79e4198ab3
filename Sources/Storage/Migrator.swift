import GRDB
import Logging

/// Applies the numbered migrations of `schema/` (compiled in as `Migration.embedded`) and records
/// each in `schema_migrations`.
///
/// Each migration runs in its own transaction together with its `schema_migrations` row: it is
/// applied whole or not at all. Before anything runs, the recorded migrations are checked against
/// this binary's, and the migrator refuses (``MigrationError``) a database that has a migration this
/// binary does not know (a newer agentd wrote it: running on would be a silent downgrade) or one
/// whose SQL changed since it was applied.
///
/// - Important: a migration is a plain SQL script without `BEGIN`/`COMMIT` (the migrator owns the
///   transaction). `PRAGMA foreign_keys` cannot change inside a transaction, so a migration that
///   rebuilds a table must keep its foreign keys valid as it goes.
public struct Migrator: Sendable {
    /// In increasing version order.
    public let migrations: [Migration]

    /// - Precondition: versions are positive and strictly increasing.
    public init(migrations: [Migration] = Migration.embedded) {
        precondition(migrations.allSatisfy { $0.version > 0 }, "migration versions start at 1")
        precondition(zip(migrations, migrations.dropFirst()).allSatisfy { $0.version < $1.version }, "migration versions must increase")
        self.migrations = migrations
    }

    /// The newest version this binary knows (0 when it has none).
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    static let createTableSQL = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )
        """

    /// The applied and pending migrations, without changing anything.
    ///
    /// - Parameter database: how to name the database in errors (its path).
    /// - Throws: ``MigrationError`` when the database is newer or a checksum differs; SQLite errors.
    public func status(of reader: any DatabaseReader, database: String) async throws -> MigrationStatus {
        let applied = try await reader.read { db in try Self.appliedMigrations(db) }
        try check(applied, database: database)
        return makeStatus(applied)
    }

    /// Applies every pending migration in version order, one transaction each.
    ///
    /// Safe against another agentd migrating the same file at the same time: a migration found
    /// already recorded inside its transaction is skipped.
    ///
    /// - Parameter database: how to name the database in errors and logs (its path).
    /// - Returns: the migrations this call applied, in order (empty when the schema was current).
    /// - Throws: ``MigrationError``; nothing of a failed migration stays applied, the ones before it do.
    @discardableResult
    public func migrate(_ writer: any DatabaseWriter, database: String, logger: Logger) async throws -> [Migration] {
        let applied = try await writer.write { db in
            try db.execute(sql: Self.createTableSQL)
            return try Self.appliedMigrations(db)
        }
        try check(applied, database: database)
        var done: [Migration] = []
        for migration in makeStatus(applied).pending {
            logger.info("applying migration", metadata: ["database": "\(database)", "migration": "\(migration.fileName)"])
            let didApply: Bool
            do {
                didApply = try await writer.write { db in
                    let recorded =
                        try Bool.fetchOne(db, sql: "SELECT 1 FROM schema_migrations WHERE version = ?", arguments: [migration.version]) ?? false
                    if recorded { return false }
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: """
                            INSERT INTO schema_migrations (version, name, checksum, applied_at)
                            VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                            """,
                        arguments: [migration.version, migration.name, migration.checksum])
                    return true
                }
            } catch let error as DatabaseError {
                throw MigrationError.failed(database: database, migration: migration.fileName, reason: error.message ?? "\(error)")
            }
            if didApply { done.append(migration) }
        }
        return done
    }

    /// Rows of `schema_migrations` in version order (none when the table does not exist yet).
    static func appliedMigrations(_ db: Database) throws -> [MigrationStatus.Applied] {
        guard try db.tableExists("schema_migrations") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").map { row in
            MigrationStatus.Applied(version: row["version"], name: row["name"], checksum: row["checksum"], appliedAt: row["applied_at"])
        }
    }

    /// Refuses a database that has a migration this binary lacks, or whose SQL changed.
    func check(_ applied: [MigrationStatus.Applied], database: String) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        if let newest = applied.last, newest.version > latestVersion {
            throw MigrationError.newerDatabase(database: database, databaseVersion: newest.version, knownVersion: latestVersion)
        }
        for row in applied {
            guard let migration = known[row.version] else {
                throw MigrationError.unknownMigration(database: database, migration: row.fileName, knownVersion: latestVersion)
            }
            guard migration.checksum == row.checksum else {
                throw MigrationError.checksumMismatch(
                    database: database, migration: migration.fileName, recorded: row.checksum, embedded: migration.checksum)
            }
        }
    }

    private func makeStatus(_ applied: [MigrationStatus.Applied]) -> MigrationStatus {
        let versions = Set(applied.map(\.version))
        return MigrationStatus(applied: applied, pending: migrations.filter { !versions.contains($0.version) }, latestKnownVersion: latestVersion)
    }
}
