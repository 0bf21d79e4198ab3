import Foundation
import Services
import Testing

@testable import Storage

#if canImport(Glibc)
import Glibc
#endif

/// What only the disk implementation has: its layout, modes, what a crash can leave in its folders,
/// and how it reports a failing disk. The rest is the contract (`BlobStoreContractTests`).
@Suite("DiskBlobStore")
struct DiskBlobStoreTests {
    static let abc = BlobDigest(hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")!

    func withStore(_ body: (DiskBlobStore, String) throws -> Void) throws {
        let folder = try AgentDatabaseTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try body(DiskBlobStore(root: folder + "/blobs"), folder + "/blobs")
    }

    @Test("nothing is created before the first write; then blobs sit in ab/cd/<sha256>, folders 0700 and files 0600")
    func layoutAndModes() throws {
        try withStore { store, root in
            #expect(try store.digests().isEmpty)
            #expect(try store.stagingIDs().isEmpty)
            #expect(try store.stat(Self.abc) == nil)
            #expect(!FileManager.default.fileExists(atPath: root))

            let staging = StagingID("upl_1")!
            try store.createStaging(staging)
            try store.writeStaging(staging, data: Data("abc".utf8), at: 0)
            #expect(try AgentDatabaseTests.mode(root + "/staging/upl_1") == 0o600)
            try store.promoteStaging(staging, as: try store.digestStaging(staging, length: 3))

            let path = root + "/ba/78/" + Self.abc.hex
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "abc")
            #expect(try AgentDatabaseTests.mode(path) == 0o600)
            for folder in [root, root + "/staging", root + "/ba", root + "/ba/78"] {
                #expect(try AgentDatabaseTests.mode(folder) == 0o700, "\(folder)")
            }
            // After its staging area is removed the blob stands alone (one link).
            try store.removeStaging(staging)
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.referenceCount] as? NSNumber)?.intValue == 1)
        }
    }

    @Test("what a crash can leave (a temporary or misplaced file, a bad name) is no blob: not listed, not stat'ed, the real one unharmed")
    func leftoversAreNoBlobs() throws {
        try withStore { store, root in
            let staging = StagingID("upl_1")!
            let stored = try store.write(Data("abc".utf8), staging: staging)
            let other = BlobDigest(hex: String(repeating: "7", count: 64))!
            try FileManager.default.createDirectory(atPath: root + "/77/77", withIntermediateDirectories: true)
            // A partial copy under a temporary name beside where the blob would go.
            try Data("par".utf8).write(to: URL(fileURLWithPath: root + "/77/77/" + other.hex + ".tmp"))
            // A well-formed name in the wrong folder, and a name that is no digest.
            try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/ba/78/" + other.hex))
            try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/ba/78/notes.txt"))
            try FileManager.default.createDirectory(atPath: root + "/lost+found", withIntermediateDirectories: true)
            // A staging file with a name no StagingID has (not ours; left alone).
            try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/staging/upl_1.copy.old~"))
            // A copy of a promoted area cut short (writeStaging after a promotion): listed as an
            // area, which no upload owns, so the start-up sweep removes it.
            try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/staging/copy-1f2e"))

            #expect(try store.digests() == [stored.digest])
            #expect(try store.stat(other) == nil)
            #expect(try store.stagingIDs() == [StagingID("copy-1f2e")!])
            #expect(try store.read(stored.digest, range: 0..<3) == Data("abc".utf8))
        }
    }

    @Test("a failing disk is BlobStoreError.io naming the path and the system's reason, never a crash")
    func ioErrors() throws {
        try withStore { store, root in
            // The root's place is taken by a file.
            try FileManager.default.createDirectory(atPath: (root as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data("not a folder".utf8).write(to: URL(fileURLWithPath: root))
            #expect(throws: BlobStoreError.io("stat \(root)/staging: Not a directory")) { try store.createStaging(StagingID("upl_1")!) }
            #expect(throws: BlobStoreError.io("open folder \(root): Not a directory")) { try store.digests() }
        }
        try withStore { store, root in
            let staging = StagingID("upl_1")!
            try store.createStaging(staging)
            // A blob's folder that cannot be written (the mode, as a full or read-only disk would).
            try FileManager.default.createDirectory(atPath: root + "/ba", withIntermediateDirectories: true)
            chmod(root + "/ba", 0o500)
            defer { chmod(root + "/ba", 0o700) }
            try store.writeStaging(staging, data: Data("abc".utf8), at: 0)
            let info = try store.digestStaging(staging, length: 3)
            // Root ignores modes: the check is only meaningful for an ordinary user.
            guard geteuid() != 0 else { return }
            #expect(throws: BlobStoreError.io("mkdir \(root)/ba/78: Permission denied")) { try store.promoteStaging(staging, as: info) }
            #expect(try store.stat(Self.abc) == nil)
        }
    }
}
