import Crypto

/// One numbered schema change: the SQL of `schema/NNNN_name.sql`, compiled into the binary by
/// `scripts/embed-migrations.sh` (see `Migration.embedded`).
public struct Migration: Sendable, Equatable {
    /// The number in the file name (`0001_init.sql` → 1). Versions only grow.
    public let version: Int
    /// The file name's part after the number (`init`).
    public let name: String
    /// The file's exact text, run as one script inside the migration's transaction.
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// `0001_init.sql`: the file in `schema/` this migration comes from.
    public var fileName: String { "\(Self.paddedVersion(version))_\(name).sql" }

    /// The SHA-256 of `sql` in hex: recorded when applied, compared at every start, so a migration
    /// edited after it shipped is caught instead of leaving databases with two different schemas.
    /// The hex is lowercase, two digits a byte: databases store it, so its form never changes.
    public var checksum: String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// `1` → `0001` (wider numbers are left as they are).
    public static func paddedVersion(_ version: Int) -> String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
