import Foundation
import RPC

/// `files.blob_delete`: deletes a blob whose last file went (`FileStore.deleteFile` answered it as
/// `unreferencedBlob`), through `FileStore.removeBlobIfUnreferenced`, so that a file stored with the
/// same content meanwhile keeps it: the check and the deletion are one transaction. The daemon's
/// own job (no owner: nothing about a blob is a user's to see or cancel).
///
/// A job rather than a deletion inside `files.delete`: the reply does not wait for the disk, and a
/// deletion that fails (I/O) is retried. A crash between the file's deletion and the enqueue
/// leaves the blob to the start-up sweep (`BlobSweeper`).
public struct BlobDeleteJob: JobHandler {
    public static let kind = "files.blob_delete"
    public static let maxAttempts = 5

    /// What a `files.blob_delete` job holds.
    public struct Payload: Codable, Sendable, Equatable {
        /// The blob's digest (lowercase hex SHA-256).
        public var sha256: String

        public init(sha256: String) {
            self.sha256 = sha256
        }
    }

    /// Whether the blob was deleted (false: a file references it again, or it was gone already).
    public struct Outcome: Codable, Sendable, Equatable {
        public var deleted: Bool
    }

    /// The job for `digest`, released by `releasedBy` (the deleted file's id, or the upload whose
    /// commit failed after placing the blob). The idempotency key is both: an enqueue repeated for
    /// the same release (a retried call) answers the first job instead of adding one, while a later
    /// release of the same content (stored again, deleted again) gets a job of its own; a key of the
    /// digest alone would answer the earlier, finished job until it is pruned, and the blob would
    /// wait for the next start.
    public static func newJob(digest: BlobDigest, releasedBy: String, id: String, at now: Date) -> NewJob {
        NewJob(
            id: id, kind: kind, ownerID: nil, payload: JSONFragment(unchecked: #"{"sha256":"\#(digest.hex)"}"#), maxAttempts: maxAttempts,
            runAfter: now, idempotencyKey: digest.hex + ":" + releasedBy)
    }

    /// Retried on anything but a malformed payload or a cancel: the disk or the database failing
    /// for a moment. Running again (after a crash too) is harmless: the check is repeated and a
    /// blob already gone is `deleted: false`.
    public let policy = JobKindPolicy(
        kind: kind, concurrency: 1, maxAttempts: maxAttempts, rerunAfterCrash: true, baseBackoff: .seconds(5), maxBackoff: .seconds(300),
        lease: .seconds(60), isRetriable: { !($0 is CancellationError) && !($0 is JobError) })

    private let files: any FileStore
    private let blobs: any BlobStore

    public init(files: any FileStore, blobs: any BlobStore) {
        self.files = files
        self.blobs = blobs
    }

    public func run(_ claimed: ClaimedJob) async throws -> JSONFragment? {
        let payload: Payload
        do {
            payload = try claimed.job.payload.decode(Payload.self)
        } catch {
            throw JobError(kind: "invalid", message: "\(Self.kind) payload: \(error)")
        }
        guard let digest = BlobDigest(hex: payload.sha256) else {
            throw JobError(kind: "invalid", message: "\(Self.kind) payload: sha256 is not 64 lowercase hex digits")
        }
        let blobs = self.blobs
        // The unlink and the folder's fsync run inside the store's write transaction (that is the
        // point: nothing can reference the blob between the check and the deletion).
        let deleted = try await files.removeBlobIfUnreferenced(digest) { try blobs.delete(digest) }
        return try JSONFragment(encoding: Outcome(deleted: deleted))
    }
}

/// How a service has a blob deleted once no file references it: enqueues `files.blob_delete`
/// (`BlobDeleteJob.newJob`) and wakes this process's workers. `FilesService` takes `release` as
/// its `releaseBlob`.
public struct BlobReleaser: Sendable {
    private let scheduler: JobScheduler
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let delay: Duration

    /// - Parameter delay: how long after the release the job is due (`files.blob_delete_delay_seconds`).
    public init(scheduler: JobScheduler, clock: any WallClock, ids: any IDGenerator, delay: Duration = .zero) {
        self.scheduler = scheduler
        self.clock = clock
        self.ids = ids
        self.delay = delay
    }

    /// Enqueues the deletion of `digest`, released by `releasedBy` (see `BlobDeleteJob.newJob`),
    /// due `delay` from now.
    @discardableResult
    public func release(_ digest: BlobDigest, releasedBy: String) async throws -> Job {
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        let due = clock.now().addingTimeInterval(seconds)
        return try await scheduler.enqueue(BlobDeleteJob.newJob(digest: digest, releasedBy: releasedBy, id: ids.makeID(prefix: "job_"), at: due)).job
    }
}
