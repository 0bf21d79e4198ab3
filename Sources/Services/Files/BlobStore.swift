import Crypto
import Foundation

/// A blob's name: the lowercase hex SHA-256 of its bytes (content addressing: one blob per
/// distinct content, whoever stored it).
public struct BlobDigest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// nil unless `hex` is 64 lowercase hex digits (a path component made of it is safe).
    public init?(hex: String) {
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        self.hex = hex
    }

    /// The digest a content's SHA-256 names.
    public init(_ digest: SHA256.Digest) {
        self.hex = digest.map { String(format: "%02x", $0) }.joined()
    }

    public var description: String { hex }
    public static func < (lhs: BlobDigest, rhs: BlobDigest) -> Bool { lhs.hex < rhs.hex }
}

/// A blob's identity and size.
public struct BlobInfo: Sendable, Equatable {
    public var digest: BlobDigest
    public var size: Int64

    public init(digest: BlobDigest, size: Int64) {
        self.digest = digest
        self.size = size
    }
}

/// Bytes on their way into the store (an upload in progress): written in pieces, possibly by
/// several processes one after another, then promoted to a blob or removed.
public struct StagingID: Hashable, Sendable, CustomStringConvertible {
    /// 1–64 of `A-Z a-z 0-9 _ -` (an upload id).
    public let value: String

    public init?(_ value: String) {
        let allowed = value.utf8.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 95 || byte == 45
        }
        guard (1...64).contains(value.utf8.count), allowed else { return nil }
        self.value = value
    }

    public var description: String { value }
}

/// Where file contents live: immutable blobs named by their SHA-256, and staging areas that
/// become blobs. `DiskBlobStore` (Storage) keeps them beside the database; tests also run an
/// in-memory one. One contract for every implementation (BlobStoreContractTests).
///
/// The calls block (file I/O): services call them off the event loops (`BlockingWorkRunner`), and
/// a store calls `promoteStaging` and `delete` inside its write transaction, which is what keeps a
/// blob's deletion and a new reference to it from interleaving (`FileStore`).
///
/// Guarantees: a blob is whole or absent (a crash at any point leaves no partial blob under a
/// digest); a blob's bytes are those whose SHA-256 names it; a call that returned is durable.
public protocol BlobStore: Sendable {
    // MARK: Staging

    /// Creates an empty staging area; an existing one with this id is emptied.
    func createStaging(_ id: StagingID) throws
    /// Writes `data` at `offset` (at most the staged size: no holes) and drops any staged bytes
    /// past the end of `data`. `durable`: on disk when it returns (an upload's chunk, answered as
    /// stored); false: on disk by the time `promoteStaging` returns (a copy made in one call, such
    /// as `files.import`, which would otherwise wait for the disk once per piece).
    ///
    /// - Throws: `BlobStoreError.notFound` when there is no such staging area,
    ///   `.invalidOffset` past its end.
    func writeStaging(_ id: StagingID, data: Data, at offset: Int64, durable: Bool) throws
    /// The staged size; nil when there is no such staging area.
    func stagingSize(_ id: StagingID) throws -> Int64?
    /// The staged bytes of `range`, cut at the staged end (empty past it): what a commit sniffs
    /// the media type from, before the bytes are a blob.
    ///
    /// - Throws: `BlobStoreError.notFound`.
    func readStaging(_ id: StagingID, range: Range<Int64>) throws -> Data
    /// The SHA-256 and size of the first `length` staged bytes (reads them).
    ///
    /// - Throws: `BlobStoreError.notFound`, `.invalidOffset` when fewer are staged.
    func digestStaging(_ id: StagingID, length: Int64) throws -> BlobInfo
    /// Makes the staged bytes (exactly `info.size` of them, as `digestStaging` found them) the blob
    /// `info.digest`, whole or not at all; when that blob exists already, nothing changes. The
    /// staging area stays: the caller removes it (`removeStaging`) once the transaction that
    /// references the blob has committed, so a crash before that commit leaves the upload whole
    /// and resumable (`DiskBlobStore` hard-links the staged file into place).
    ///
    /// - Throws: `BlobStoreError.notFound`, `.invalidOffset` when the staged size is not `info.size`.
    func promoteStaging(_ id: StagingID, as info: BlobInfo) throws
    /// False when there was no such staging area.
    @discardableResult func removeStaging(_ id: StagingID) throws -> Bool
    /// Every staging area (the sweep at start removes those no upload owns).
    func stagingIDs() throws -> [StagingID]

    // MARK: Blobs

    /// nil when absent.
    func stat(_ digest: BlobDigest) throws -> BlobInfo?
    /// The bytes of `range`, cut at the blob's end (empty past it).
    ///
    /// - Throws: `BlobStoreError.notFound`.
    func read(_ digest: BlobDigest, range: Range<Int64>) throws -> Data
    /// False when it was absent.
    @discardableResult func delete(_ digest: BlobDigest) throws -> Bool
    /// Every blob (the sweep at start deletes those no file references).
    func digests() throws -> [BlobDigest]
}

extension BlobStore {
    /// Writes `data` at `offset`, durable when it returns.
    public func writeStaging(_ id: StagingID, data: Data, at offset: Int64) throws {
        try writeStaging(id, data: data, at: offset, durable: true)
    }

    /// Stores `data` as a blob through a staging area named `staging` (whole or absent).
    public func write(_ data: Data, staging: StagingID) throws -> BlobInfo {
        try createStaging(staging)
        do {
            try writeStaging(staging, data: data, at: 0)
            let info = try digestStaging(staging, length: Int64(data.count))
            try promoteStaging(staging, as: info)
            try removeStaging(staging)
            return info
        } catch {
            _ = try? removeStaging(staging)
            throw error
        }
    }
}

/// What a `BlobStore` refuses.
public enum BlobStoreError: Error, Equatable, Sendable {
    /// No such blob or staging area.
    case notFound(String)
    /// An offset or length past the staged bytes.
    case invalidOffset(expected: Int64, actual: Int64)
    /// The storage failed (disk full, permissions): the message says what and where.
    case io(String)
}
