/// Why the migrator refused a database. Each description is a complete sentence for a person: the
/// daemon prints it as `agentd: <description>` and exits 1.
public enum MigrationError: Error, Equatable, CustomStringConvertible {
    /// The database records a migration this binary does not have: a newer agentd wrote it.
    case newerDatabase(database: String, databaseVersion: Int, knownVersion: Int)
    /// The database records a migration, older than this binary's newest, that this binary does not
    /// have (a migration renumbered or removed on another branch).
    case unknownMigration(database: String, migration: String, knownVersion: Int)
    /// An applied migration's recorded checksum differs from the SQL compiled into this binary.
    case checksumMismatch(database: String, migration: String, recorded: String, embedded: String)
    /// A migration's SQL failed; its transaction was rolled back, nothing of it is applied.
    case failed(database: String, migration: String, reason: String)

    public var description: String {
        switch self {
        case .newerDatabase(let database, let databaseVersion, let knownVersion):
            "database \(database) was written by a newer agentd (schema version \(databaseVersion), "
                + "this binary knows up to \(knownVersion)); refusing to downgrade"
        case .unknownMigration(let database, let migration, let knownVersion):
            "database \(database) has migration \(migration) applied, which this binary (migrations up to "
                + "\(Migration.paddedVersion(knownVersion))) does not have; refusing to start"
        case .checksumMismatch(let database, let migration, let recorded, let embedded):
            "database \(database): migration \(migration) was changed after it was applied "
                + "(checksum recorded \(recorded.prefix(12))…, this binary has \(embedded.prefix(12))…); "
                + "refusing to start on a schema that may differ from the one this binary expects"
        case .failed(let database, let migration, let reason):
            "database \(database): migration \(migration) failed and was rolled back: \(reason)"
        }
    }
}
