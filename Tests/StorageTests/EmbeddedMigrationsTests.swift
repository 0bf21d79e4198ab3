import Foundation
import Testing

@testable import Storage

/// `Migration.embedded` is generated from schema/*.sql by scripts/embed-migrations.sh; this suite
/// fails when someone edits or adds a .sql file and forgets to regenerate.
@Suite("Embedded migrations")
struct EmbeddedMigrationsTests {
    static let schemaFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // StorageTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()
        .appendingPathComponent("schema")

    /// The migrations as the files in schema/ define them.
    static func migrationsOnDisk() throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: schemaFolder.path)
            .filter { $0.hasSuffix(".sql") && $0.prefix(4).allSatisfy(\.isASCIIDigit) && $0.dropFirst(4).hasPrefix("_") }
            .sorted()
        return try names.map { fileName in
            let data = try Data(contentsOf: schemaFolder.appendingPathComponent(fileName))
            let base = fileName.dropLast(".sql".count)
            return Migration(version: Int(base.prefix(4))!, name: String(base.dropFirst(5)), sql: String(decoding: data, as: UTF8.self))
        }
    }

    @Test("Migrations+Generated.swift matches schema/*.sql")
    func generatedFileIsCurrent() throws {
        let onDisk = try Self.migrationsOnDisk()
        try #require(!onDisk.isEmpty, "no migrations found in \(Self.schemaFolder.path)")
        let stale = "Sources/Storage/Migrations+Generated.swift is stale: run `make schema` and commit the result"
        #expect(onDisk.map(\.fileName) == Migration.embedded.map(\.fileName), "\(stale)")
        for (file, embedded) in zip(onDisk, Migration.embedded) where file.fileName == embedded.fileName {
            #expect(file.sql == embedded.sql, "\(file.fileName) differs from its embedded copy: \(stale)")
        }
    }

    @Test("the embedded SQL is the file's exact bytes (same checksum)")
    func checksumOfTheFile() throws {
        let first = try #require(Migration.embedded.first)
        let data = try Data(contentsOf: Self.schemaFolder.appendingPathComponent(first.fileName))
        #expect(Array(first.sql.utf8) == Array(data))
    }

    @Test("versions start at 1 and have no gaps")
    func versionsAreContiguous() {
        #expect(Migration.embedded.map(\.version) == Array(1...Migration.embedded.count))
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
