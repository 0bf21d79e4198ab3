import Foundation
import Logging

/// The start-up sweep: what a crash left in the blob store that nothing in the database owns.
///
/// - Staging areas no upload row owns (`FileStore.orphanStagings`): a process killed after a
///   commit's transaction and before it removed the area, an upload whose row expired while the
///   daemon was down, an import's copy cut short. Removed.
/// - Blobs no file references (`FileStore.unreferencedBlobs`): a crash between a file's deletion
///   and its `files.blob_delete` job, or a promotion whose transaction did not commit. Each is
///   deleted through `FileStore.removeBlobIfUnreferenced`, so that the check and the deletion are
///   one transaction, as for the job.
///
/// The daemon runs it once before it serves (`Agentd`): with no upload and no commit under way,
/// "no row owns this staging area" cannot be a begin that has made its area and not yet its row,
/// so the sweep needs no lock against the service. It costs one listing of the blob folders and
/// one query per `defaultBatchSize` names at each start: the figures of a very large store are in the log.
public struct BlobSweeper: Sendable {
    /// Names sent to the store per query (well below SQLite's parameter limit).
    public static let defaultBatchSize = 500

    /// What one sweep removed.
    public struct Outcome: Sendable, Equatable {
        public var stagingAreasRemoved: Int
        public var blobsDeleted: Int

        public init(stagingAreasRemoved: Int, blobsDeleted: Int) {
            self.stagingAreasRemoved = stagingAreasRemoved
            self.blobsDeleted = blobsDeleted
        }
    }

    private let files: any FileStore
    private let blobs: any BlobStore
    private let logger: Logger
    private let batchSize: Int

    public init(files: any FileStore, blobs: any BlobStore, batchSize: Int = defaultBatchSize, logger: Logger) {
        self.files = files
        self.blobs = blobs
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// Removes the orphans; logs the counts (never the names: a digest says which content a user
    /// stored). The blob store's calls block: the daemon runs this before it serves, when nothing
    /// else waits for the threads.
    ///
    /// - Throws: the first error of the store or the blob store (the daemon logs it and serves:
    ///   an orphan costs disk space, not correctness, and the next start tries again).
    @discardableResult
    public func sweep() async throws -> Outcome {
        var outcome = Outcome(stagingAreasRemoved: 0, blobsDeleted: 0)
        let stagings = try blobs.stagingIDs()
        for batch in batches(stagings) {
            let orphans = Set(try await files.orphanStagings(batch.map(\.value)))
            for id in batch where orphans.contains(id.value) {
                if try blobs.removeStaging(id) { outcome.stagingAreasRemoved += 1 }
            }
        }
        let digests = try blobs.digests()
        for batch in batches(digests) {
            for digest in try await files.unreferencedBlobs(Array(batch)) {
                let blobs = self.blobs
                if try await files.removeBlobIfUnreferenced(digest, remove: { try blobs.delete(digest) }) { outcome.blobsDeleted += 1 }
            }
        }
        logger.info(
            "swept the blob store",
            metadata: [
                "staging_areas": "\(stagings.count)", "staging_areas_removed": "\(outcome.stagingAreasRemoved)", "blobs": "\(digests.count)",
                "blobs_deleted": "\(outcome.blobsDeleted)",
            ])
        return outcome
    }

    private func batches<T>(_ items: [T]) -> [ArraySlice<T>] {
        stride(from: 0, to: items.count, by: batchSize).map { items[$0..<min($0 + batchSize, items.count)] }
    }
}
