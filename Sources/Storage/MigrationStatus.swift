/// What `agentd migrate --status` shows: the migrations a database has, and the ones it lacks.
public struct MigrationStatus: Sendable, Equatable {
    /// A row of `schema_migrations`.
    public struct Applied: Sendable, Equatable {
        public var version: Int
        public var name: String
        public var checksum: String
        /// ISO 8601 UTC, as SQLite wrote it (`2026-01-31T12:00:00.000Z`).
        public var appliedAt: String

        public init(version: Int, name: String, checksum: String, appliedAt: String) {
            self.version = version
            self.name = name
            self.checksum = checksum
            self.appliedAt = appliedAt
        }

        public var fileName: String { "\(Migration.paddedVersion(version))_\(name).sql" }
    }

    /// In version order.
    public var applied: [Applied]
    /// Known to this binary and not applied yet, in version order.
    public var pending: [Migration]
    /// The newest migration this binary has.
    public var latestKnownVersion: Int

    public init(applied: [Applied], pending: [Migration], latestKnownVersion: Int) {
        self.applied = applied
        self.pending = pending
        self.latestKnownVersion = latestKnownVersion
    }

    /// The newest migration applied (0 for a database without any).
    public var schemaVersion: Int { applied.last?.version ?? 0 }
}
