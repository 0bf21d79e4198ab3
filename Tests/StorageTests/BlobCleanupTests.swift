import BlobStoreTesting
import Foundation
import JobQueueTesting
import Logging
import RPC
import Services
import Synchronization
import Testing

@testable import Storage

/// The two ways a blob no file references goes, over the real `SQLiteFileStore` and every blob
/// store: the start-up sweep (`BlobSweeper`) and the `files.blob_delete` job (`BlobDeleteJob`).
@Suite("Blob cleanup", .timeLimit(.minutes(1)))
struct BlobCleanupTests {
    static let alice = "usr_alice"
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static var quietLogger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// A migrated SQLite file store with one user, and a blob store of `implementation`.
    func with(_ implementation: BlobStoreImplementation, _ body: (any FileStore, any BlobStore) async throws -> Void) async throws {
        let harness = try await SQLiteFileStoreHarness(quota: .unlimited)
        let (blobs, tearDownBlobs) = try implementation.make()
        do {
            try await harness.addUser(Self.alice)
            try await body(harness.store, blobs)
        } catch {
            await harness.tearDown()
            tearDownBlobs()
            throw error
        }
        await harness.tearDown()
        tearDownBlobs()
    }

    /// Stages `text` under `staging`, then commits it as the file `id` the way the files service
    /// does: promoted inside the insert's transaction, the staging area removed after it.
    @discardableResult
    func storeFile(_ id: String, _ text: String, staging: String, _ files: any FileStore, _ blobs: any BlobStore) async throws -> BlobInfo {
        let stagingID = StagingID(staging)!
        try blobs.createStaging(stagingID)
        try blobs.writeStaging(stagingID, data: Data(text.utf8), at: 0)
        let info = try blobs.digestStaging(stagingID, length: Int64(text.utf8.count))
        let file = FileMetadata(id: id, name: id + ".txt", mediaType: "text/plain", size: info.size, sha256: info.digest.hex, createdAt: Self.t0)
        _ = try await files.insertFile(
            file, userID: Self.alice, fromUpload: nil, place: { try blobs.promoteStaging(stagingID, as: info) },
            event: FilesEvents.FileCreated(userID: Self.alice, file: file))
        try blobs.removeStaging(stagingID)
        return info
    }

    func upload(_ id: String, size: Int64) -> FileUpload {
        FileUpload(
            id: id, userID: Self.alice, name: id + ".txt", mediaType: nil, size: size, sha256: nil, received: 0, createdAt: Self.t0,
            expiresAt: Self.t0.addingTimeInterval(3600))
    }

    // MARK: Sweep

    @Test(
        "the sweep removes staging areas no upload owns and blobs no file references, and nothing else; a second sweep finds nothing",
        arguments: BlobStoreImplementations.all)
    func sweep(_ implementation: BlobStoreImplementation) async throws {
        try await with(implementation) { files, blobs in
            let kept = try await storeFile("fil_1", "kept", staging: "upl_done", files, blobs)
            // An upload in progress: its row and its area.
            try await files.insertUpload(upload("upl_open", size: 10), maxOpenUploads: 8)
            try blobs.createStaging(StagingID("upl_open")!)
            try blobs.writeStaging(StagingID("upl_open")!, data: Data("half".utf8), at: 0)
            // Killed after a commit's transaction, before the area's removal: no row owns it.
            try blobs.createStaging(StagingID("upl_committed")!)
            // Killed between a file's deletion and its job's enqueue: a blob nothing references.
            let orphan = try blobs.write(Data("orphan".utf8), staging: StagingID("imp_1")!)
            // Promoted, and the insert's transaction never committed.
            let uncommitted = try blobs.write(Data("uncommitted".utf8), staging: StagingID("imp_2")!)

            let sweeper = BlobSweeper(files: files, blobs: blobs, logger: Self.quietLogger)
            #expect(try await sweeper.sweep() == BlobSweeper.Outcome(stagingAreasRemoved: 1, blobsDeleted: 2))
            #expect(try blobs.stagingIDs() == [StagingID("upl_open")!])
            #expect(try blobs.stagingSize(StagingID("upl_open")!) == 4)
            #expect(try blobs.digests() == [kept.digest])
            #expect(try blobs.stat(orphan.digest) == nil && blobs.stat(uncommitted.digest) == nil)
            #expect(try blobs.read(kept.digest, range: 0..<10) == Data("kept".utf8))
            #expect(try await files.file(id: "fil_1", userID: Self.alice)?.sha256 == kept.digest.hex)

            #expect(try await sweeper.sweep() == BlobSweeper.Outcome(stagingAreasRemoved: 0, blobsDeleted: 0))
        }
    }

    @Test("the sweep goes through the store in batches: more orphans than one batch are all removed", arguments: BlobStoreImplementations.all)
    func sweepManyInBatches(_ implementation: BlobStoreImplementation) async throws {
        try await with(implementation) { files, blobs in
            let count = 3 * 2 + 1
            for index in 0..<count { _ = try blobs.write(Data("orphan \(index)".utf8), staging: StagingID("imp")!) }
            for index in 0..<count { try blobs.createStaging(StagingID("upl_\(index)")!) }
            let kept = try await storeFile("fil_1", "orphan 3", staging: "upl_kept", files, blobs)
            let outcome = try await BlobSweeper(files: files, blobs: blobs, batchSize: 3, logger: Self.quietLogger).sweep()
            #expect(outcome == BlobSweeper.Outcome(stagingAreasRemoved: count, blobsDeleted: count - 1))
            #expect(try blobs.digests() == [kept.digest])
            #expect(try blobs.stagingIDs().isEmpty)
        }
    }

    @Test("a sweep that cannot read the blob store throws; nothing is deleted")
    func sweepFailure() async throws {
        try await with(BlobStoreImplementations.all[1]) { files, blobs in
            let memory = try #require(blobs as? InMemoryBlobStore)
            _ = try blobs.write(Data("orphan".utf8), staging: StagingID("imp")!)
            memory.failNext(.io("open folder /blobs: Input/output error"))
            await #expect(throws: BlobStoreError.io("open folder /blobs: Input/output error")) {
                try await BlobSweeper(files: files, blobs: blobs, logger: Self.quietLogger).sweep()
            }
            #expect(memory.blobs.count == 1)
        }
    }

    // MARK: files.blob_delete

    /// Enqueues through `BlobReleaser` on an in-memory queue and claims the job, as a worker would.
    func releaseAndClaim(_ digest: BlobDigest, releasedBy: String, queue: InMemoryJobQueue) async throws -> ClaimedJob {
        let releaser = BlobReleaser(scheduler: JobScheduler(queue: queue, signal: JobWakeSignal()), clock: FixedClock(Self.t0), ids: CountingIDs())
        try await releaser.release(digest, releasedBy: releasedBy)
        let claimed = try await queue.claim(kinds: [BlobDeleteJob.kind], workerID: "w", limit: 1, lease: .seconds(60), now: Self.t0)
        return try #require(claimed.first)
    }

    @Test("files.blob_delete deletes the blob of a deleted file, and keeps one a file references again", arguments: BlobStoreImplementations.all)
    func blobDeleteJob(_ implementation: BlobStoreImplementation) async throws {
        try await with(implementation) { files, blobs in
            let job = BlobDeleteJob(files: files, blobs: blobs)
            let queue = InMemoryJobQueue()
            let gone = try await storeFile("fil_1", "gone", staging: "upl_1", files, blobs)
            let deletion = try await files.deleteFile(
                id: "fil_1", userID: Self.alice, event: FilesEvents.FileDeleted(userID: Self.alice, fileId: "fil_1"))
            #expect(deletion?.unreferencedBlob == gone.digest)
            let claimed = try await releaseAndClaim(gone.digest, releasedBy: "fil_1", queue: queue)
            #expect(claimed.job.ownerID == nil && claimed.job.payload.text == #"{"sha256":"\#(gone.digest.hex)"}"#)
            #expect(try await job.run(claimed)?.text == #"{"deleted":true}"#)
            #expect(try blobs.stat(gone.digest) == nil)
            // Run again (a rerun after a crash): nothing left to do.
            #expect(try await job.run(claimed)?.text == #"{"deleted":true}"#)

            // Deleted, then stored again before the job ran: the new file keeps its bytes.
            let shared = try await storeFile("fil_2", "shared", staging: "upl_2", files, blobs)
            _ = try await files.deleteFile(id: "fil_2", userID: Self.alice, event: FilesEvents.FileDeleted(userID: Self.alice, fileId: "fil_2"))
            try await storeFile("fil_3", "shared", staging: "upl_3", files, blobs)
            let late = try await releaseAndClaim(shared.digest, releasedBy: "fil_2", queue: queue)
            #expect(try await job.run(late)?.text == #"{"deleted":false}"#)
            #expect(try blobs.read(shared.digest, range: 0..<10) == Data("shared".utf8))
        }
    }

    @Test("files.blob_delete: an I/O error is retried and deletes nothing; a malformed payload fails for good")
    func blobDeleteJobFailures() async throws {
        try await with(BlobStoreImplementations.all[1]) { files, blobs in
            let memory = try #require(blobs as? InMemoryBlobStore)
            let job = BlobDeleteJob(files: files, blobs: blobs)
            let info = try await storeFile("fil_1", "bytes", staging: "upl_1", files, blobs)
            _ = try await files.deleteFile(id: "fil_1", userID: Self.alice, event: FilesEvents.FileDeleted(userID: Self.alice, fileId: "fil_1"))
            let claimed = try await releaseAndClaim(info.digest, releasedBy: "fil_1", queue: InMemoryJobQueue())
            memory.failNext(.io("unlink /blobs/x: Input/output error"))
            let error = await #expect(throws: BlobStoreError.io("unlink /blobs/x: Input/output error")) { try await job.run(claimed) }
            #expect(job.policy.isRetriable(try #require(error)))
            #expect(try blobs.stat(info.digest) == info)
            #expect(try await job.run(claimed)?.text == #"{"deleted":true}"#)

            var malformed = claimed
            malformed.job.payload = JSONFragment(unchecked: #"{"sha256":"../../etc"}"#)
            let invalid = await #expect(throws: JobError.self) { try await job.run(malformed) }
            #expect(invalid?.kind == "invalid")
            #expect(!job.policy.isRetriable(try #require(invalid)))
            #expect(job.policy.kind == "files.blob_delete" && job.policy.maxAttempts > 1)
        }
    }

    @Test("BlobReleaser: the same release enqueued twice is one job; another release of the same content is another")
    func releaseIdempotency() async throws {
        let queue = InMemoryJobQueue()
        let releaser = BlobReleaser(scheduler: JobScheduler(queue: queue, signal: JobWakeSignal()), clock: FixedClock(Self.t0), ids: CountingIDs())
        let digest = BlobStoreContractTests.abc
        let first = try await releaser.release(digest, releasedBy: "fil_1")
        let again = try await releaser.release(digest, releasedBy: "fil_1")
        let other = try await releaser.release(digest, releasedBy: "fil_2")
        #expect(first.id == again.id)
        #expect(other.id != first.id)
        #expect(first.idempotencyKey == digest.hex + ":fil_1")
        #expect(first.kind == BlobDeleteJob.kind && first.ownerID == nil && first.state == .queued && first.runAfter == Self.t0)
    }
}

/// A clock that always answers the same instant.
private struct FixedClock: WallClock {
    let instant: Date
    init(_ instant: Date) { self.instant = instant }
    func now() -> Date { instant }
}

/// `job_1`, `job_2`, …
private final class CountingIDs: IDGenerator {
    private let next = Mutex(0)
    func makeID(prefix: String) -> String {
        prefix
            + String(
                next.withLock { value in
                    value += 1
                    return value
                })
    }
}
