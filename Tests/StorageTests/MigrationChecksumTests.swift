import Foundation
import Testing

@testable import Storage

/// Databases store each applied migration's checksum and compare it at every start, so the
/// checksum's value and form (lowercase hex SHA-256 of the SQL's UTF-8) must never change, whatever
/// computes it.
@Suite("Migration checksums")
struct MigrationChecksumTests {
    static func checksum(_ sql: String) -> String { Migration(version: 1, name: "test", sql: sql).checksum }

    @Test("FIPS 180-4 examples, lowercase hex")
    func standardVectors() {
        #expect(Self.checksum("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.checksum("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Self.checksum("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("non-ASCII SQL is hashed as UTF-8")
    func utf8() {
        // printf 'é' | sha256sum
        #expect(Self.checksum("é") == "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c")
    }

    /// The values databases already hold: `sha256sum schema/*.sql` when the migrations shipped
    /// (coreutils, independent of the code under test). A migration is never edited after it
    /// ships; a new one adds a line here.
    @Test(
        "the embedded migrations keep the checksums databases recorded",
        arguments: [
            ("0001_init.sql", "9f8a9d8ebf9838f5408736ad4bd0f1abd14d4b191f2f4691502068a9f06745c9"),
            ("0002_auth.sql", "e10120c8bfaae4e460f347d5bc0936a35a09ba75ac9914de1c30b38f00313366"),
            ("0003_modules.sql", "7c35303e4780771722086b1ad079eab86136b997fcea62667d0775394ed623ae"),
            ("0004_chats.sql", "8b45b86f41a8e4b145519d78796df4e6e33d585ecdc03806d67b5b2ecacb52d3"),
            ("0005_prompts.sql", "5ed12a1b60bcb6fae14526d1b7180c1f33489dbc928a90384fb74c0a58e05503"),
            ("0006_search.sql", "84bbdaedad4f3a4006855e38895c1854d48288f91a4429ce6077dcd37de51bd4"),
            ("0007_message_index_batches.sql", "823b5a0914e8a8ca4af84701732b453b7ba6338c4d014cb235df4c3cca73a055"),
            ("0008_events.sql", "7ce54592b6eff41cfa1a23d193f52e61e9aca60898a39a408a13b3efb3871eef"),
            ("0009_security_audit.sql", "225b316acc7741c36620d8087753a3724a1ea3e07628c1076d7f8e957f8788d2"),
            ("0010_agent.sql", "d8dc275263bf6f4b99c1c6e9256b70c38474d9ba0d1b546f67b71f67bf573d59"),
            ("0011_audit_coalescing.sql", "07973afaa5a31364f53fb7be37ec46f74d48e096a3992820a93b22859602596b"),
            ("0012_storage_usage.sql", "1f2ecb213f416e3a025f9e93d8a8cefc02a2ba9886090c2a85525a8bf14d8ef2"),
            ("0013_chat_paths.sql", "b0e3d17e0f01aee4dccbe3acc31dc7eb9cbb5f6625186ed77028fb8ee10937a4"),
            ("0014_chat_chains.sql", "24182fb25145269f347109144ed95c3535d710f1a7311c7e9f8fd910ea7faec9"),
        ])
    func recordedChecksums(fileName: String, recorded: String) throws {
        let migration = try #require(Migration.embedded.first { $0.fileName == fileName })
        #expect(migration.checksum == recorded)
    }
}
