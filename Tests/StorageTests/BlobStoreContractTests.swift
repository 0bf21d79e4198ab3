import BlobStoreTesting
import Foundation
import Services
import Synchronization
import Testing

@testable import Storage

/// One `BlobStore` implementation under test; adding a backend (an object store) is one more entry
/// in `all`.
struct BlobStoreImplementation: Sendable, CustomTestStringConvertible {
    var name: String
    /// The store, and what removes what it made.
    var make: @Sendable () throws -> (store: any BlobStore, tearDown: @Sendable () -> Void)

    var testDescription: String { name }
}

enum BlobStoreImplementations {
    static let all: [BlobStoreImplementation] = [
        BlobStoreImplementation(name: "disk") {
            let folder = try AgentDatabaseTests.temporaryFolder()
            // The root itself is made by the first write, as beside a new database.
            return (DiskBlobStore(root: folder + "/blobs"), { try? FileManager.default.removeItem(atPath: folder) })
        },
        BlobStoreImplementation(name: "memory") { (InMemoryBlobStore(), {}) },
    ]
}

/// The `BlobStore` contract, written once and run for every implementation.
@Suite("BlobStore contract")
struct BlobStoreContractTests {
    /// SHA-256 known answers (FIPS 180-2's "abc", and the empty input).
    static let abc = BlobDigest(hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")!
    static let empty = BlobDigest(hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")!

    static func staging(_ name: String) -> StagingID { StagingID(name)! }

    func with(_ implementation: BlobStoreImplementation, _ body: (any BlobStore) throws -> Void) throws {
        let (store, tearDown) = try implementation.make()
        defer { tearDown() }
        try body(store)
    }

    /// Stages `text` under `name` and promotes it; the blob's info.
    func put(_ text: String, _ store: any BlobStore, staging name: String = "upl_put") throws -> BlobInfo {
        try store.write(Data(text.utf8), staging: Self.staging(name))
    }

    @Test("pieces written without waiting for the disk (an import) read back whole once promoted", arguments: BlobStoreImplementations.all)
    func writesWithoutWaiting(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let id = Self.staging("imp_1")
            try store.createStaging(id)
            try store.writeStaging(id, data: Data("ab".utf8), at: 0, durable: false)
            try store.writeStaging(id, data: Data("c".utf8), at: 2, durable: false)
            #expect(try store.stagingSize(id) == 3)
            #expect(try store.readStaging(id, range: 1..<10) == Data("bc".utf8))
            #expect(try store.readStaging(id, range: 5..<10) == Data())
            try store.promoteStaging(id, as: BlobInfo(digest: Self.abc, size: 3))
            #expect(try store.read(Self.abc, range: 0..<10) == Data("abc".utf8))
            #expect(try store.stat(Self.abc) == BlobInfo(digest: Self.abc, size: 3))
            // A size that is not the staged one is refused: nothing is named after bytes not there.
            try store.createStaging(id)
            try store.writeStaging(id, data: Data("abcd".utf8), at: 0, durable: false)
            #expect(throws: BlobStoreError.self) { try store.promoteStaging(id, as: BlobInfo(digest: Self.empty, size: 3)) }
            #expect(try store.stat(Self.empty) == nil)
            #expect(throws: BlobStoreError.self) { try store.readStaging(Self.staging("upl_none"), range: 0..<1) }
        }
    }

    @Test("a staged, digested and promoted blob reads back whole under its SHA-256", arguments: BlobStoreImplementations.all)
    func roundTrip(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let id = Self.staging("upl_1")
            #expect(try store.stat(Self.abc) == nil)
            try store.createStaging(id)
            #expect(try store.stagingSize(id) == 0)
            try store.writeStaging(id, data: Data("ab".utf8), at: 0)
            try store.writeStaging(id, data: Data("c".utf8), at: 2)
            #expect(try store.stagingSize(id) == 3)
            let info = try store.digestStaging(id, length: 3)
            #expect(info == BlobInfo(digest: Self.abc, size: 3))
            // Not a blob before its promotion.
            #expect(try store.stat(Self.abc) == nil)
            #expect(try store.digests().isEmpty)
            try store.promoteStaging(id, as: info)
            #expect(try store.stat(Self.abc) == info)
            #expect(try store.read(Self.abc, range: 0..<3) == Data("abc".utf8))
            #expect(try store.digests() == [Self.abc])
        }
    }

    @Test(
        "staging: writes go at an offset up to the staged size, a write drops what was past its end, a missing area is notFound",
        arguments: BlobStoreImplementations.all)
    func stagingOffsets(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let id = Self.staging("upl_offsets")
            #expect(throws: BlobStoreError.notFound("staging area upl_offsets")) { try store.writeStaging(id, data: Data("x".utf8), at: 0) }
            #expect(try store.stagingSize(id) == nil)
            try store.createStaging(id)
            try store.writeStaging(id, data: Data("hello".utf8), at: 0)
            try store.writeStaging(id, data: Data(" world".utf8), at: 5)
            #expect(try store.stagingSize(id) == 11)
            // No holes.
            #expect(throws: BlobStoreError.invalidOffset(expected: 11, actual: 12)) { try store.writeStaging(id, data: Data("!".utf8), at: 12) }
            #expect(throws: BlobStoreError.invalidOffset(expected: 11, actual: -1)) { try store.writeStaging(id, data: Data("!".utf8), at: -1) }
            #expect(try store.stagingSize(id) == 11)
            // An overwrite ends the staged bytes where its data ends.
            try store.writeStaging(id, data: Data("XY".utf8), at: 2)
            #expect(try store.stagingSize(id) == 4)
            #expect(try store.digestStaging(id, length: 4).digest == InMemoryBlobStore.digest(of: Data("heXY".utf8)))
            // An empty write at the end changes nothing; at 0 it empties the area.
            try store.writeStaging(id, data: Data(), at: 4)
            #expect(try store.stagingSize(id) == 4)
            try store.writeStaging(id, data: Data(), at: 0)
            #expect(try store.stagingSize(id) == 0)
            // Creating it again empties it.
            try store.writeStaging(id, data: Data("again".utf8), at: 0)
            try store.createStaging(id)
            #expect(try store.stagingSize(id) == 0)
        }
    }

    @Test(
        "digestStaging hashes the first `length` bytes, in pieces for a large area; more than staged is invalidOffset",
        arguments: BlobStoreImplementations.all)
    func digest(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let id = Self.staging("upl_digest")
            #expect(throws: BlobStoreError.notFound("staging area upl_digest")) { try store.digestStaging(id, length: 0) }
            try store.createStaging(id)
            #expect(try store.digestStaging(id, length: 0) == BlobInfo(digest: Self.empty, size: 0))
            try store.writeStaging(id, data: Data("abcdef".utf8), at: 0)
            #expect(try store.digestStaging(id, length: 3) == BlobInfo(digest: Self.abc, size: 3))
            #expect(throws: BlobStoreError.invalidOffset(expected: 6, actual: 7)) { try store.digestStaging(id, length: 7) }
            // Larger than one read piece (1 MiB on disk), not a multiple of it.
            var large = Data(count: 3 << 20 + 17)
            for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
            try store.writeStaging(id, data: large, at: 0)
            #expect(
                try store.digestStaging(id, length: Int64(large.count))
                    == BlobInfo(digest: InMemoryBlobStore.digest(of: large), size: Int64(large.count)))
        }
    }

    @Test(
        "promote is idempotent for the same content, leaves the staging area, and refuses a size that is not the staged one",
        arguments: BlobStoreImplementations.all)
    func promote(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let first = Self.staging("upl_a")
            let second = Self.staging("upl_b")
            for id in [first, second] {
                try store.createStaging(id)
                try store.writeStaging(id, data: Data("abc".utf8), at: 0)
            }
            let info = try store.digestStaging(first, length: 3)
            try store.promoteStaging(first, as: info)
            try store.promoteStaging(first, as: info)
            try store.promoteStaging(second, as: try store.digestStaging(second, length: 3))
            #expect(try store.digests() == [Self.abc])
            #expect(try store.read(Self.abc, range: 0..<10) == Data("abc".utf8))
            // The areas stay until the caller removes them (after its transaction commits).
            #expect(try store.stagingIDs() == [first, second])
            #expect(try store.stagingSize(first) == 3)
            #expect(throws: BlobStoreError.invalidOffset(expected: 4, actual: 3)) {
                try store.promoteStaging(first, as: BlobInfo(digest: Self.empty, size: 4))
            }
            #expect(throws: BlobStoreError.notFound("staging area upl_c")) { try store.promoteStaging(Self.staging("upl_c"), as: info) }
            #expect(try store.removeStaging(first))
            #expect(try !store.removeStaging(first))
            #expect(try store.stagingIDs() == [second])
            #expect(try store.stat(Self.abc) == info)
        }
    }

    @Test(
        "the same content promoted from several areas at once is one whole blob, and every promotion succeeds",
        arguments: BlobStoreImplementations.all)
    func concurrentPromotions(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let content = Data(repeating: 0x5a, count: 300_000)
            let ids = (0..<8).map { Self.staging("upl_\($0)") }
            for id in ids {
                try store.createStaging(id)
                try store.writeStaging(id, data: content, at: 0)
            }
            let info = try store.digestStaging(ids[0], length: Int64(content.count))
            let failures = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: ids.count) { index in
                do { try store.promoteStaging(ids[index], as: info) } catch { failures.withLock { $0 += 1 } }
            }
            #expect(failures.withLock { $0 } == 0)
            #expect(try store.digests() == [info.digest])
            #expect(try store.read(info.digest, range: 0..<Int64(content.count)) == content)
        }
    }

    @Test(
        "a blob never changes: writing or re-creating its staging area after the promotion leaves its bytes", arguments: BlobStoreImplementations.all)
    func blobImmutableAfterPromote(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let id = Self.staging("upl_keep")
            try store.createStaging(id)
            try store.writeStaging(id, data: Data("abc".utf8), at: 0)
            try store.promoteStaging(id, as: try store.digestStaging(id, length: 3))
            try store.writeStaging(id, data: Data("XYZW".utf8), at: 1)
            #expect(try store.stagingSize(id) == 5)
            #expect(try store.digestStaging(id, length: 5).digest == InMemoryBlobStore.digest(of: Data("aXYZW".utf8)))
            #expect(try store.read(Self.abc, range: 0..<100) == Data("abc".utf8))
            try store.createStaging(id)
            try store.writeStaging(id, data: Data("q".utf8), at: 0)
            #expect(try store.read(Self.abc, range: 0..<100) == Data("abc".utf8))
            #expect(try store.stat(Self.abc)?.size == 3)
        }
    }

    @Test("read answers the range cut at the blob's end: empty past it; a missing blob is notFound", arguments: BlobStoreImplementations.all)
    func readRanges(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let info = try put("0123456789", store)
            #expect(try store.read(info.digest, range: 0..<10) == Data("0123456789".utf8))
            #expect(try store.read(info.digest, range: 2..<5) == Data("234".utf8))
            #expect(try store.read(info.digest, range: 8..<100) == Data("89".utf8))
            #expect(try store.read(info.digest, range: 10..<20).isEmpty)
            #expect(try store.read(info.digest, range: 50..<60).isEmpty)
            #expect(try store.read(info.digest, range: 3..<3).isEmpty)
            #expect(throws: BlobStoreError.notFound("blob \(Self.abc)")) { try store.read(Self.abc, range: 0..<1) }
            // `write` removed its staging area.
            #expect(try store.stagingIDs().isEmpty)
        }
    }

    @Test("delete removes the blob (true), then answers false; stat, read and the listing no longer see it", arguments: BlobStoreImplementations.all)
    func delete(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            let kept = try put("kept", store, staging: "upl_kept")
            let gone = try put("abc", store, staging: "upl_gone")
            #expect(try store.digests() == [kept.digest, gone.digest].sorted())
            #expect(try store.delete(gone.digest))
            #expect(try !store.delete(gone.digest))
            #expect(try store.stat(gone.digest) == nil)
            #expect(throws: BlobStoreError.notFound("blob \(Self.abc)")) { try store.read(gone.digest, range: 0..<1) }
            #expect(try store.digests() == [kept.digest])
            #expect(try store.read(kept.digest, range: 0..<4) == Data("kept".utf8))
            // Stored again after its deletion: a new blob like any other.
            #expect(try put("abc", store) == gone)
            #expect(try store.stat(Self.abc) == gone)
        }
    }

    @Test("stagingIDs and digests list every area and blob, and nothing else", arguments: BlobStoreImplementations.all)
    func listings(_ implementation: BlobStoreImplementation) throws {
        try with(implementation) { store in
            #expect(try store.stagingIDs().isEmpty)
            #expect(try store.digests().isEmpty)
            let ids = ["upl_3", "upl_1", "upl-2_X"].map(Self.staging)
            for id in ids { try store.createStaging(id) }
            #expect(Set(try store.stagingIDs()) == Set(ids))
            var stored: [BlobDigest] = []
            for index in 0..<20 { stored.append(try put("blob \(index)", store).digest) }
            #expect(try store.digests() == stored.sorted())
            #expect(Set(try store.stagingIDs()) == Set(ids))
            for id in ids { try store.removeStaging(id) }
            #expect(try store.stagingIDs().isEmpty)
        }
    }
}
