import Foundation
import GRDB
import Logging
import Services
import Synchronization
import Testing

@testable import Storage

/// What the contract tests need of an implementation besides the store: its users, their stored
/// bytes and its events.
protocol FileStoreHarness: Sendable {
    var store: any FileStore { get }
    /// Makes a user that can own files (the owner column references users).
    func addUser(_ id: String) async throws
    /// The user's stored bytes as the quota counts them.
    func usedBytes(_ userID: String) async throws -> Int64
    /// The topics of the files events written so far, oldest first.
    func fileEvents() async throws -> [String]
    func tearDown() async
}

/// One `FileStore` implementation under test, with a storage quota; adding a backend is one more
/// entry in `all`.
struct FileStoreImplementation: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable (_ quota: StorageQuota) async throws -> any FileStoreHarness

    var testDescription: String { name }
}

enum FileStoreImplementations {
    static let all: [FileStoreImplementation] = [
        FileStoreImplementation(name: "SQLite") { try await SQLiteFileStoreHarness(quota: $0) }
    ]
}

/// `SQLiteFileStore` on a migrated temporary file, behind a group writer with an outbox (the events
/// are read back from the `events` table).
struct SQLiteFileStoreHarness: FileStoreHarness {
    let database: AgentDatabase
    let folder: String
    let store: any FileStore

    init(quota: StorageQuota) async throws {
        folder = try AgentDatabaseTests.temporaryFolder()
        database = try AgentDatabase.open(path: "\(folder)/agentd.sqlite")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        _ = try await database.migrate(logger: logger)
        let writes = GroupCommitWriter(writer: database.writer, outbox: EventOutbox(clock: SystemClock(), publish: { _ in }))
        store = SQLiteFileStore(writer: database.writer, groupWriter: writes, ledger: StorageLedger(quota: quota))
    }

    func addUser(_ id: String) async throws {
        try await database.writer.write { db in
            try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES (?, ?, '2026-01-01T00:00:00.000Z')", arguments: [id, id])
        }
    }

    /// The triggers' count, checked against the tables summed (they must always agree).
    func usedBytes(_ userID: String) async throws -> Int64 {
        try await database.writer.read { db in
            let counted = try StorageLedger.storedBytes(userID: userID, db: db)
            #expect(try StorageLedger.recount(userID: userID, db: db) == counted)
            return counted
        }
    }

    func fileEvents() async throws -> [String] {
        try await database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT topic FROM events WHERE topic LIKE 'file.%' ORDER BY seq")
        }
    }

    func tearDown() async {
        try? database.close()
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// The `FileStore` contract, written once against the protocol and run for every implementation:
/// scoping, the quota (uploads reserve, files are charged), the open-upload limit, ordered chunks,
/// listing, shared content and the blob calls run inside the store's transaction.
@Suite("FileStore contract", .timeLimit(.minutes(1)))
struct FileStoreContractTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let alice = "usr_alice"
    static let bob = "usr_bob"

    func with(
        _ implementation: FileStoreImplementation, quota: StorageQuota = .unlimited,
        _ body: (any FileStoreHarness, any FileStore) async throws -> Void
    ) async throws {
        let harness = try await implementation.make(quota)
        do {
            try await harness.addUser(Self.alice)
            try await harness.addUser(Self.bob)
            try await body(harness, harness.store)
        } catch {
            await harness.tearDown()
            throw error
        }
        await harness.tearDown()
    }

    func at(_ seconds: TimeInterval) -> Date { Self.t0.addingTimeInterval(seconds) }

    static func digest(_ character: Character) -> String { String(repeating: character, count: 64) }

    func upload(_ id: String, user: String = alice, size: Int64 = 100, created: TimeInterval = 0, ttl: TimeInterval = 3600) -> FileUpload {
        FileUpload(
            id: id, userID: user, name: "\(id).txt", mediaType: nil, size: size, sha256: nil, received: 0, createdAt: at(created),
            expiresAt: at(created + ttl))
    }

    func file(_ id: String, size: Int64 = 100, sha: Character = "a", mediaType: String = "text/plain", created: TimeInterval = 0) -> FileMetadata {
        FileMetadata(id: id, name: "\(id).txt", mediaType: mediaType, size: size, sha256: Self.digest(sha), createdAt: at(created))
    }

    /// Inserts `file` for `user` with a `place` that counts its calls.
    @discardableResult
    func insert(_ store: any FileStore, _ file: FileMetadata, user: String = alice, fromUpload: String? = nil, placed: Counter = Counter())
        async throws -> Int64
    {
        try await store.insertFile(
            file, userID: user, fromUpload: fromUpload, place: { placed.increment() }, event: FilesEvents.FileCreated(userID: user, file: file))
    }

    func delete(_ store: any FileStore, _ id: String, user: String = alice) async throws -> FileDeletion? {
        try await store.deleteFile(id: id, userID: user, event: FilesEvents.FileDeleted(userID: user, fileId: id))
    }

    @Test(arguments: FileStoreImplementations.all)
    func anotherUsersUploadsAndFilesAreMissing(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { harness, store in
            try await store.insertUpload(upload("upl_1"), maxOpenUploads: 8)
            try await insert(store, file("fil_1"))
            #expect(try await store.upload(id: "upl_1", userID: Self.alice)?.name == "upl_1.txt")
            #expect(try await store.upload(id: "upl_1", userID: Self.bob) == nil)
            #expect(try await store.advanceUpload(id: "upl_1", userID: Self.bob, from: 0, to: 10) == false)
            #expect(try await store.deleteUpload(id: "upl_1", userID: Self.bob) == false)
            #expect(try await store.file(id: "fil_1", userID: Self.alice) == file("fil_1"))
            #expect(try await store.file(id: "fil_1", userID: Self.bob) == nil)
            #expect(try await store.files(ids: ["fil_1"], userID: Self.bob).isEmpty)
            #expect(try await store.list(FileQuery(userID: Self.bob, limit: 10)).isEmpty)
            #expect(try await delete(store, "fil_1", user: Self.bob) == nil)
            // Bob cannot commit Alice's upload either.
            await #expect(throws: FilesError.notFound(kind: "upload", id: "upl_1")) {
                try await insert(store, file("fil_2"), user: Self.bob, fromUpload: "upl_1")
            }
            #expect(try await store.upload(id: "upl_1", userID: Self.alice) != nil)
            #expect(try await store.file(id: "fil_1", userID: Self.alice) != nil)
            #expect(try await harness.usedBytes(Self.bob) == 0)
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func uploadsReserveAndFilesAreChargedAgainstTheQuota(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation, quota: StorageQuota(limitBytes: 1000)) { harness, store in
            try await store.insertUpload(upload("upl_1", size: 600), maxOpenUploads: 8)
            #expect(try await harness.usedBytes(Self.alice) == 600)
            await #expect(throws: QuotaExceededError(limit: 1000, actual: 1100)) {
                try await store.insertUpload(upload("upl_2", size: 500), maxOpenUploads: 8)
            }
            #expect(try await store.upload(id: "upl_2", userID: Self.alice) == nil)
            // A file on its own (an import) is charged too: refused, and nothing placed.
            let placed = Counter()
            await #expect(throws: QuotaExceededError(limit: 1000, actual: 1100)) {
                try await insert(store, file("fil_0", size: 500), placed: placed)
            }
            #expect(placed.value == 0)
            // Committing the upload needs no more room than it reserved.
            try await insert(store, file("fil_1", size: 600), fromUpload: "upl_1", placed: placed)
            #expect(placed.value == 1)
            #expect(try await store.upload(id: "upl_1", userID: Self.alice) == nil)
            #expect(try await harness.usedBytes(Self.alice) == 600)
            // Bob's quota is his own.
            try await store.insertUpload(upload("upl_3", user: Self.bob, size: 1000), maxOpenUploads: 8)
            #expect(try await store.deleteUpload(id: "upl_3", userID: Self.bob))
            #expect(try await harness.usedBytes(Self.bob) == 0)
            _ = try await delete(store, "fil_1")
            #expect(try await harness.usedBytes(Self.alice) == 0)
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func openUploadsAreLimitedAndExpiredOnesDoNotCount(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { _, store in
            try await store.insertUpload(upload("upl_1", ttl: 60), maxOpenUploads: 2)
            try await store.insertUpload(upload("upl_2", created: 1), maxOpenUploads: 2)
            await #expect(throws: FilesError.tooManyUploads(limit: 2)) {
                try await store.insertUpload(upload("upl_3", created: 2), maxOpenUploads: 2)
            }
            // Bob has his own count.
            try await store.insertUpload(upload("upl_b", user: Self.bob, created: 2), maxOpenUploads: 2)
            // upl_1 has expired by t0+60 (not removed yet): it no longer counts.
            try await store.insertUpload(upload("upl_3", created: 61), maxOpenUploads: 2)
            #expect(try await store.upload(id: "upl_3", userID: Self.alice) != nil)
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func uploadsAdvanceOnlyFromTheirOffset(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { _, store in
            try await store.insertUpload(upload("upl_1", size: 30), maxOpenUploads: 8)
            #expect(try await store.advanceUpload(id: "upl_1", userID: Self.alice, from: 0, to: 10))
            #expect(try await store.advanceUpload(id: "upl_1", userID: Self.alice, from: 0, to: 10) == false)
            #expect(try await store.advanceUpload(id: "upl_1", userID: Self.alice, from: 5, to: 15) == false)
            #expect(try await store.advanceUpload(id: "upl_1", userID: Self.alice, from: 10, to: 30))
            #expect(try await store.upload(id: "upl_1", userID: Self.alice)?.received == 30)
            #expect(try await store.advanceUpload(id: "upl_none", userID: Self.alice, from: 0, to: 1) == false)
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func listIsNewestFirstByCursorAndMediaType(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { _, store in
            let a = try await insert(store, file("fil_a", mediaType: "text/plain"))
            let b = try await insert(store, file("fil_b", mediaType: "image/png"))
            let c = try await insert(store, file("fil_c", mediaType: "image/jpeg"))
            try await insert(store, file("fil_d", mediaType: "imagex/odd"))
            try await insert(store, file("fil_bob"), user: Self.bob)
            #expect(a < b && b < c)
            let all = try await store.list(FileQuery(userID: Self.alice, limit: 10)).map(\.file.id)
            #expect(all == ["fil_d", "fil_c", "fil_b", "fil_a"])
            let page = try await store.list(FileQuery(userID: Self.alice, limit: 2))
            #expect(page.map(\.file.id) == ["fil_d", "fil_c"])
            let next = try await store.list(FileQuery(userID: Self.alice, beforeSeq: page.last?.seq, limit: 2)).map(\.file.id)
            #expect(next == ["fil_b", "fil_a"])
            #expect(try await store.list(FileQuery(userID: Self.alice, limit: 10, mediaType: "image/png")).map(\.file.id) == ["fil_b"])
            #expect(try await store.list(FileQuery(userID: Self.alice, limit: 10, mediaType: "image/*")).map(\.file.id) == ["fil_c", "fil_b"])
            #expect(try await store.files(ids: ["fil_c", "fil_none", "fil_a"], userID: Self.alice).map(\.id) == ["fil_c", "fil_a"])
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func sharedContentIsUnreferencedOnlyAfterItsLastFile(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { harness, store in
            try await insert(store, file("fil_1", sha: "a"))
            try await insert(store, file("fil_2", sha: "a"), user: Self.bob)
            try await insert(store, file("fil_3", sha: "b"))
            #expect(try await harness.usedBytes(Self.alice) == 200)
            #expect(try await harness.usedBytes(Self.bob) == 100)
            let first = try await delete(store, "fil_1")
            #expect(first == FileDeletion(file: file("fil_1", sha: "a"), unreferencedBlob: nil))
            let second = try await delete(store, "fil_2", user: Self.bob)
            #expect(second?.unreferencedBlob == BlobDigest(hex: Self.digest("a")))
            #expect(try await delete(store, "fil_2", user: Self.bob) == nil)
            #expect(try await harness.fileEvents() == ["file.created", "file.created", "file.created", "file.deleted", "file.deleted"])
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func aBlobIsRemovedOnlyWhenNoFileReferencesIt(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { _, store in
            let a = try #require(BlobDigest(hex: Self.digest("a")))
            let b = try #require(BlobDigest(hex: Self.digest("b")))
            try await insert(store, file("fil_1", sha: "a"))
            let removed = Counter()
            #expect(try await store.removeBlobIfUnreferenced(a) { removed.increment() } == false)
            #expect(removed.value == 0)
            #expect(try await store.removeBlobIfUnreferenced(b) { removed.increment() })
            #expect(removed.value == 1)
            #expect(try await store.unreferencedBlobs([b, a]) == [b])
            // A `remove` that fails is the caller's error (the blob job retries).
            await #expect(throws: BlobStoreError.io("disk")) {
                try await store.removeBlobIfUnreferenced(b) { throw BlobStoreError.io("disk") }
            }
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func aFailedPlaceKeepsNothing(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { harness, store in
            try await store.insertUpload(upload("upl_1"), maxOpenUploads: 8)
            await #expect(throws: BlobStoreError.io("disk")) {
                try await store.insertFile(
                    file("fil_1"), userID: Self.alice, fromUpload: "upl_1", place: { throw BlobStoreError.io("disk") },
                    event: FilesEvents.FileCreated(userID: Self.alice, file: file("fil_1")))
            }
            #expect(try await store.file(id: "fil_1", userID: Self.alice) == nil)
            #expect(try await store.upload(id: "upl_1", userID: Self.alice) != nil)
            #expect(try await harness.usedBytes(Self.alice) == 100)
            #expect(try await harness.fileEvents().isEmpty)
        }
    }

    @Test(arguments: FileStoreImplementations.all)
    func orphanStagingsAndExpiredUploads(_ implementation: FileStoreImplementation) async throws {
        try await with(implementation) { _, store in
            try await store.insertUpload(upload("upl_1", created: 0, ttl: 100), maxOpenUploads: 8)
            try await store.insertUpload(upload("upl_2", user: Self.bob, created: 0, ttl: 50), maxOpenUploads: 8)
            try await store.insertUpload(upload("upl_3", created: 0, ttl: 1000), maxOpenUploads: 8)
            #expect(try await store.orphanStagings(["upl_1", "upl_x", "upl_2", "upl_y"]) == ["upl_x", "upl_y"])
            #expect(try await store.expiredUploads(now: at(10), limit: 10).isEmpty)
            #expect(try await store.expiredUploads(now: at(200), limit: 10).map(\.id) == ["upl_2", "upl_1"])
            #expect(try await store.expiredUploads(now: at(200), limit: 1).map(\.id) == ["upl_2"])
            let expired = try #require(try await store.expiredUploads(now: at(200), limit: 1).first)
            #expect(expired == upload("upl_2", user: Self.bob, created: 0, ttl: 50))
        }
    }
}

/// Counts calls from a `@Sendable` closure.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func increment() { count.withLock { $0 += 1 } }
}
