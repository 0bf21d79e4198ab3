import Crypto
import Foundation
import Services
import Synchronization

/// A `BlobStore` in memory, as the protocol's documentation describes it, run through the
/// written-once contract (`BlobStoreContractTests`) beside `DiskBlobStore`. The in-process daemon
/// (`InProcessDaemon`) and the files tests use it: no folder to make or clean up.
///
/// Also counts the calls that change something, so a test can see that a path did (or did not)
/// touch the store, and can make the next calls fail (`failNext`), as a full disk would.
public final class InMemoryBlobStore: BlobStore {
    private struct State {
        var staging: [StagingID: Data] = [:]
        var blobs: [BlobDigest: Data] = [:]
        var failures: [BlobStoreError] = []
    }

    // Only touched under the mutex.
    private let state = Mutex(State())

    public init() {}

    /// The next `errors.count` calls throw these, in order, before doing anything.
    public func failNext(_ errors: BlobStoreError...) {
        state.withLock { $0.failures.append(contentsOf: errors) }
    }

    /// Every blob's bytes, by digest (for a test's assertions).
    public var blobs: [BlobDigest: Data] { state.withLock { $0.blobs } }

    private func withState<T>(_ body: (inout State) throws -> T) throws -> T {
        try state.withLock { state in
            if !state.failures.isEmpty { throw state.failures.removeFirst() }
            return try body(&state)
        }
    }

    // MARK: Staging

    public func createStaging(_ id: StagingID) throws {
        try withState { $0.staging[id] = Data() }
    }

    public func writeStaging(_ id: StagingID, data: Data, at offset: Int64, durable: Bool) throws {
        try withState { state in
            guard var staged = state.staging[id] else { throw BlobStoreError.notFound("staging area \(id)") }
            guard offset >= 0, offset <= Int64(staged.count) else {
                throw BlobStoreError.invalidOffset(expected: Int64(staged.count), actual: offset)
            }
            staged.removeSubrange(Int(offset)...)
            staged.append(data)
            state.staging[id] = staged
        }
    }

    public func stagingSize(_ id: StagingID) throws -> Int64? {
        try withState { state in state.staging[id].map { Int64($0.count) } }
    }

    public func readStaging(_ id: StagingID, range: Range<Int64>) throws -> Data {
        try withState { state in
            guard let staged = state.staging[id] else { throw BlobStoreError.notFound("staging area \(id)") }
            let size = Int64(staged.count)
            let lower = max(0, min(range.lowerBound, size))
            let upper = max(lower, min(range.upperBound, size))
            return Data(staged[staged.startIndex + Int(lower)..<staged.startIndex + Int(upper)])
        }
    }

    public func digestStaging(_ id: StagingID, length: Int64) throws -> BlobInfo {
        let staged = try withState { state in
            guard let staged = state.staging[id] else { throw BlobStoreError.notFound("staging area \(id)") }
            return staged
        }
        guard length >= 0, length <= Int64(staged.count) else { throw BlobStoreError.invalidOffset(expected: Int64(staged.count), actual: length) }
        return BlobInfo(digest: Self.digest(of: staged.prefix(Int(length))), size: length)
    }

    public func promoteStaging(_ id: StagingID, as info: BlobInfo) throws {
        try withState { state in
            guard let staged = state.staging[id] else { throw BlobStoreError.notFound("staging area \(id)") }
            guard Int64(staged.count) == info.size else { throw BlobStoreError.invalidOffset(expected: info.size, actual: Int64(staged.count)) }
            if state.blobs[info.digest] == nil { state.blobs[info.digest] = staged }
        }
    }

    @discardableResult
    public func removeStaging(_ id: StagingID) throws -> Bool {
        try withState { $0.staging.removeValue(forKey: id) != nil }
    }

    public func stagingIDs() throws -> [StagingID] {
        try withState { $0.staging.keys.sorted { $0.value < $1.value } }
    }

    // MARK: Blobs

    public func stat(_ digest: BlobDigest) throws -> BlobInfo? {
        try withState { state in state.blobs[digest].map { BlobInfo(digest: digest, size: Int64($0.count)) } }
    }

    public func read(_ digest: BlobDigest, range: Range<Int64>) throws -> Data {
        try withState { state in
            guard let blob = state.blobs[digest] else { throw BlobStoreError.notFound("blob \(digest)") }
            let size = Int64(blob.count)
            let lower = max(0, min(range.lowerBound, size))
            let upper = max(lower, min(range.upperBound, size))
            return Data(blob[Int(lower)..<Int(upper)])
        }
    }

    @discardableResult
    public func delete(_ digest: BlobDigest) throws -> Bool {
        try withState { $0.blobs.removeValue(forKey: digest) != nil }
    }

    public func digests() throws -> [BlobDigest] {
        try withState { $0.blobs.keys.sorted() }
    }

    /// The lowercase hex SHA-256 of `data`.
    public static func digest(of data: some DataProtocol) -> BlobDigest {
        BlobDigest(SHA256.hash(data: data))
    }
}
