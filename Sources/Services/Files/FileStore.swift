import Foundation

/// Where file metadata and uploads in progress live. `SQLiteFileStore` (Storage) implements it, on
/// tables `files`, `file_uploads` and `blobs` (schema/0020_files.sql). Every call but the blob
/// sweep's is scoped to one user: another user's file or upload is the same as a missing one.
///
/// Sizes count against the user's storage quota (`StorageLedger`, the same quota as their text): an
/// upload's announced size from its begin to its end, then the file's.
///
/// A blob is deleted only inside `removeBlobIfUnreferenced`'s transaction, and placed only inside
/// `insertFile`'s, so a file row never names an absent blob: the one writer (or a row lock) orders
/// "no row references it, delete it" and "place it, reference it".
public protocol FileStore: Sendable {
    // MARK: Uploads

    /// Records a new upload, reserving its `size` against the user's quota.
    ///
    /// - Throws: `QuotaExceededError`; `FilesError.tooManyUploads` when the user has
    ///   `maxOpenUploads` unexpired uploads already.
    func insertUpload(_ upload: FileUpload, maxOpenUploads: Int) async throws
    /// nil when the user has no such upload (expired ones included until removed).
    func upload(id: String, userID: String) async throws -> FileUpload?
    /// Moves `received` from `from` to `to` (one chunk in order, its bytes already durable in the
    /// staging area); false when `received` was not `from` (another chunk got there first) or
    /// there is no such upload.
    func advanceUpload(id: String, userID: String, from: Int64, to: Int64) async throws -> Bool
    /// Removes the upload and its reservation; false when there was none.
    func deleteUpload(id: String, userID: String) async throws -> Bool
    /// Uploads whose `expiresAt` is before `now`, oldest first, of every user (the expiry job).
    func expiredUploads(now: Date, limit: Int) async throws -> [FileUpload]
    /// Of `stagingIDs`, those no upload row has (the sweep at start removes their bytes).
    func orphanStagings(_ stagingIDs: [String]) async throws -> [String]

    // MARK: Files

    /// In one transaction: runs `place` (which puts the blob in the blob store, when it is not
    /// there), inserts the file, removes the upload `fromUpload` (its reservation with it) when
    /// given, charges the file's size and records `event`. Returns the file's `seq`. (`place` is
    /// escaping: a store hands it to its writer's queue.)
    ///
    /// - Throws: `QuotaExceededError` (nothing is kept), what `place` throws.
    func insertFile(
        _ file: FileMetadata, userID: String, fromUpload: String?, place: @escaping @Sendable () throws -> Void, event: FilesEvents.FileCreated
    )
        async throws -> Int64
    func file(id: String, userID: String) async throws -> FileMetadata?
    /// Those of `ids` the user has, in the order of `ids` (missing ones left out).
    func files(ids: [String], userID: String) async throws -> [FileMetadata]
    /// Newest first (by `seq`), at most `query.limit` rows.
    func list(_ query: FileQuery) async throws -> [StoredFile]
    /// Deletes the file and records `event`; returns its blob when no file references it any more
    /// (the caller has it deleted, `removeBlobIfUnreferenced`). nil when the user has no such file.
    func deleteFile(id: String, userID: String, event: FilesEvents.FileDeleted) async throws -> FileDeletion?

    // MARK: Blobs

    /// In one transaction: when no file references `digest`, runs `remove` (which deletes the blob)
    /// and returns true; else false and `remove` is not run.
    func removeBlobIfUnreferenced(_ digest: BlobDigest, remove: @escaping @Sendable () throws -> Void) async throws -> Bool
    /// Of `digests`, those no file references (the sweep at start deletes them, each through
    /// `removeBlobIfUnreferenced`).
    func unreferencedBlobs(_ digests: [BlobDigest]) async throws -> [BlobDigest]
}

/// What `FileStore.deleteFile` removed.
public struct FileDeletion: Sendable, Equatable {
    public var file: FileMetadata
    /// The file's blob when it was its last reference; nil when another file still references it.
    public var unreferencedBlob: BlobDigest?

    public init(file: FileMetadata, unreferencedBlob: BlobDigest?) {
        self.file = file
        self.unreferencedBlob = unreferencedBlob
    }
}
