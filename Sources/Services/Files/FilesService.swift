import Crypto
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The caller's files: resumable uploads over the socket, imports from a path by the daemon's own
/// user, reads, lists and deletes. Metadata lives in a `FileStore`, bytes in a `BlobStore`, whose
/// blocking calls run on `runner` (never on an event loop or the cooperative pool). Every call is
/// scoped to one user: another user's file or upload answers exactly like a missing one.
public struct FilesService: Sendable {
    public struct Settings: Sendable, Equatable {
        /// `files.max_file_bytes`.
        public var maxFileBytes: Int64 = 64 << 20
        /// `files.max_open_uploads`: unexpired uploads per user.
        public var maxOpenUploads = 8
        /// `files.upload_ttl_seconds`: an unfinished upload's lifetime from its begin.
        public var uploadTTL: TimeInterval = 3600
        /// `files.uploads_expire_interval_seconds`: how often `files.uploads_expire` is enqueued.
        public var expireInterval: Duration = .seconds(300)
        /// `files.blob_delete_delay_seconds`: how long the content of a deleted file stays after its
        /// last file went, so that a backup copying the blob folder after the database still finds
        /// every blob the database copy names (docs/OPERATIONS.md).
        public var blobDeleteDelay: Duration = .seconds(3600)

        public init() {}
    }

    /// The most bytes one chunk carries: 4 MiB, or less when the base64 of that would not fit in a
    /// request of `maxMessageBytes` (with room for the envelope).
    public static func chunkSize(maxMessageBytes: Int) -> Int {
        let room = max(maxMessageBytes - 4096, 4) / 4 * 3
        return max(1, min(maxChunkBytes, room))
    }

    public static let maxChunkBytes = 4 << 20
    /// `files.read`'s default and largest length.
    public static let maxReadBytes = 4 << 20
    public static let maxNameBytes = 255
    public static let defaultLimit = 50
    public static let maxLimit = 200
    /// How many bytes `files.import` copies at a time (memory held per import).
    static let importPieceBytes = 1 << 20

    public typealias Page = KeysetPage<FileMetadata>

    private let store: any FileStore
    private let blobs: any BlobStore
    private let runner: any BlockingWorkRunner
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let settings: Settings
    private let chunkSize: Int
    private let ownUID: UInt32
    /// Enqueues the deletion of a blob no file references any more (`files.blob_delete`), with
    /// the id of the file whose deletion released it.
    private let releaseBlob: @Sendable (BlobDigest, _ releasedBy: String) async throws -> Void
    private let replyBudget: ReplyBudget
    private let locks = UploadLocks()

    /// - Parameters:
    ///   - ownUID: the daemon's uid: only a connection of this peer uid may `files.import`.
    ///   - chunkSize: `chunkSize(maxMessageBytes:)` of the daemon's message limit.
    ///   - releaseBlob: has a blob deleted once no file references it (the daemon enqueues a job).
    public init(
        store: any FileStore, blobs: any BlobStore, runner: any BlockingWorkRunner, clock: any WallClock, ids: any IDGenerator,
        settings: Settings = Settings(), chunkSize: Int = FilesService.maxChunkBytes, ownUID: UInt32,
        replyBudget: ReplyBudget = ReplyBudget(), releaseBlob: @escaping @Sendable (BlobDigest, _ releasedBy: String) async throws -> Void
    ) {
        self.store = store
        self.blobs = blobs
        self.runner = runner
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.chunkSize = chunkSize
        self.ownUID = ownUID
        self.replyBudget = replyBudget
        self.releaseBlob = releaseBlob
    }

    // MARK: Uploads

    /// `files.upload.begin`: reserves `size` against the quota and creates the staging area.
    ///
    /// - Throws: `FilesError.invalid`, `.tooLarge`, `.tooManyUploads`, `QuotaExceededError`.
    public func beginUpload(_ params: Files.UploadBegin.Params, userID: String) async throws -> Files.UploadBegin.Result {
        let name = try Self.validName(params.name)
        let mediaType = try params.mediaType.map { try Self.validMediaType($0) }
        try checkSize(params.size, field: "size")
        let sha256 = try params.sha256.map(Self.validSHA256)
        let now = clock.now()
        let upload = FileUpload(
            id: ids.makeID(prefix: "upl_"), userID: userID, name: name, mediaType: mediaType, size: params.size, sha256: sha256, received: 0,
            createdAt: now, expiresAt: now.addingTimeInterval(settings.uploadTTL))
        let staging = try Self.stagingID(upload.id)
        let blobs = self.blobs
        // The staging area first: a crash between the two leaves an area no upload owns, which
        // the start-up sweep removes; the other order could leave an upload without its area.
        try await runner.run { try blobs.createStaging(staging) }
        do {
            try await store.insertUpload(upload, maxOpenUploads: settings.maxOpenUploads)
        } catch {
            _ = try? await runner.run { try blobs.removeStaging(staging) }
            throw error
        }
        return .init(uploadId: upload.id, chunkSize: chunkSize, expiresAt: upload.expiresAt)
    }

    /// `files.upload.chunk`: `data` at `offset`, which must be where the upload stands; durable
    /// when it returns.
    ///
    /// - Throws: `FilesError.notFound`, `.offsetMismatch`, `.invalid`, `.tooLarge`.
    public func appendChunk(_ params: Files.UploadChunk.Params, userID: String) async throws -> Files.UploadStatus.Result {
        // Cheap checks before the lock; base64 is decoded on the runner, off the event loop.
        guard params.data.utf8.count <= (chunkSize + 2) / 3 * 4 else {
            throw FilesError.tooLarge(
                field: "data", reason: "at most chunkSize (\(chunkSize)) bytes a chunk", limit: Int64(chunkSize),
                actual: Int64(params.data.utf8.count / 4 * 3))
        }
        let encoded = params.data
        let data = try await runner.run { () throws -> Data in
            guard encoded.utf8.count % 4 == 0, let data = Data(base64Encoded: encoded) else {
                throw FilesError.invalid(field: "data", reason: "not base64 (standard alphabet, padded, no whitespace)")
            }
            return data
        }
        guard data.count <= chunkSize else {
            throw FilesError.tooLarge(
                field: "data", reason: "at most chunkSize (\(chunkSize)) bytes a chunk", limit: Int64(chunkSize), actual: Int64(data.count))
        }
        let blobs = self.blobs
        let store = self.store
        return try await locks.withLock(params.uploadId) {
            let upload = try await self.openUpload(id: params.uploadId, userID: userID)
            guard params.offset == upload.received else { throw FilesError.offsetMismatch(expected: upload.received, actual: params.offset) }
            let end = upload.received + Int64(data.count)
            guard end <= upload.size else {
                throw FilesError.tooLarge(
                    field: "data", reason: "past the size given to files.upload.begin", limit: upload.size - upload.received,
                    actual: Int64(data.count))
            }
            guard !data.isEmpty else { return Self.status(upload) }
            let staging = try Self.stagingID(upload.id)
            try await self.runner.run { try blobs.writeStaging(staging, data: data, at: params.offset) }
            // Under the lock nothing else advances it; false: the upload went meanwhile (expired).
            guard try await store.advanceUpload(id: upload.id, userID: userID, from: params.offset, to: end) else {
                throw FilesError.notFound(kind: "upload", id: upload.id)
            }
            var advanced = upload
            advanced.received = end
            return Self.status(advanced)
        }
    }

    /// `files.upload.status`.
    ///
    /// - Throws: `FilesError.notFound`.
    public func uploadStatus(id: String, userID: String) async throws -> Files.UploadStatus.Result {
        Self.status(try await openUpload(id: id, userID: userID))
    }

    /// `files.upload.commit`: the upload becomes a file when all its bytes came and match what begin
    /// announced; a mismatch removes the upload and its bytes.
    ///
    /// - Throws: `FilesError.notFound`, `.invalid` (bytes missing), `.checksumMismatch`, `QuotaExceededError`.
    public func commitUpload(id: String, userID: String) async throws -> FileMetadata {
        try await locks.withLock(id) {
            let upload = try await self.openUpload(id: id, userID: userID)
            guard upload.received == upload.size else {
                throw FilesError.invalid(
                    field: "uploadId",
                    reason: "incomplete: \(upload.received) of \(upload.size) bytes received; the next chunk starts at offset \(upload.received)")
            }
            let staging = try Self.stagingID(upload.id)
            let blobs = self.blobs
            let info = try await self.runner.run { try blobs.digestStaging(staging, length: upload.size) }
            if let expected = upload.sha256, expected != info.digest.hex {
                _ = try await self.store.deleteUpload(id: upload.id, userID: userID)
                _ = try? await self.runner.run { try blobs.removeStaging(staging) }
                throw FilesError.checksumMismatch(field: "sha256", expected: expected, actual: info.digest.hex)
            }
            var mediaType = upload.mediaType
            if mediaType == nil {
                mediaType = try await self.runner.run { () throws -> String in
                    let head = try blobs.readStaging(staging, range: 0..<Self.sniffLength(size: info.size))
                    return MediaTypeSniffer.mediaType(head: head, size: info.size)
                }
            }
            let file = FileMetadata(
                id: self.ids.makeID(prefix: "fil_"), name: upload.name, mediaType: mediaType ?? "application/octet-stream", size: info.size,
                sha256: info.digest.hex, createdAt: self.clock.now())
            _ = try await self.store.insertFile(
                file, userID: userID, fromUpload: upload.id, place: { try blobs.promoteStaging(staging, as: info) },
                event: FilesEvents.FileCreated(userID: userID, file: file))
            // After the commit: a crash before this leaves the staging area, which the sweep removes.
            _ = try? await self.runner.run { try blobs.removeStaging(staging) }
            return file
        }
    }

    // MARK: Import

    /// `files.import`: the daemon reads `path` itself, for a caller of its own uid only.
    ///
    /// - Throws: `AuthError.unauthorized` for any other peer, `FilesError.invalid` (`path`, `name`),
    ///   `.tooLarge`, `QuotaExceededError`.
    public func importFile(_ params: Files.Import.Params, userID: String, peerUID: UInt32?) async throws -> FileMetadata {
        guard peerUID == ownUID else {
            throw AuthError.unauthorized(
                reason:
                    "files.import reads a path with the daemon's own permissions: only a connection of the daemon's uid may call it; use files.upload.begin"
            )
        }
        guard params.path.hasPrefix("/") else { throw FilesError.invalid(field: "path", reason: "an absolute path") }
        let name = try Self.validName(
            params.name ?? String(params.path.split(separator: "/").last ?? ""), field: params.name == nil ? "path" : "name")
        let givenType = try params.mediaType.map { try Self.validMediaType($0) }
        let staging = try Self.stagingID(ids.makeID(prefix: "imp_"))
        let blobs = self.blobs
        let maxBytes = settings.maxFileBytes
        // Sniffing (up to a 4 MiB JSON parse) on the runner too, not on the caller's event loop.
        let copied = try await runner.run { () throws -> (info: BlobInfo, mediaType: String) in
            let copied = try Self.copy(path: params.path, into: staging, blobs: blobs, maxBytes: maxBytes)
            return (copied.info, givenType ?? MediaTypeSniffer.mediaType(head: copied.head, size: copied.info.size))
        }
        let file = FileMetadata(
            id: ids.makeID(prefix: "fil_"), name: name, mediaType: copied.mediaType, size: copied.info.size, sha256: copied.info.digest.hex,
            createdAt: clock.now())
        do {
            _ = try await store.insertFile(
                file, userID: userID, fromUpload: nil, place: { try blobs.promoteStaging(staging, as: copied.info) },
                event: FilesEvents.FileCreated(userID: userID, file: file))
        } catch {
            _ = try? await runner.run { try blobs.removeStaging(staging) }
            throw error
        }
        _ = try? await runner.run { try blobs.removeStaging(staging) }
        return file
    }

    /// Opens `path` once and copies the open file (no second lookup a symlink swap could
    /// redirect) into `staging`, a piece at a time; returns its digest and its first bytes.
    private static func copy(path: String, into staging: StagingID, blobs: any BlobStore, maxBytes: Int64) throws -> (info: BlobInfo, head: Data) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw FilesError.invalid(field: "path", reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw FilesError.invalid(field: "path", reason: "cannot stat: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw FilesError.invalid(field: "path", reason: "not a regular file") }
        guard Int64(status.st_size) <= maxBytes else {
            throw FilesError.tooLarge(
                field: "path", reason: "at most files.max_file_bytes (\(maxBytes)) bytes", limit: maxBytes, actual: Int64(status.st_size))
        }
        try blobs.createStaging(staging)
        do {
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: importPieceBytes, alignment: 16)
            defer { buffer.deallocate() }
            let hashing = ImportHashing()
            var offset: Int64 = 0
            var head = Data()
            while true {
                let count = Glibc.read(fd, buffer.baseAddress, importPieceBytes)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw FilesError.invalid(field: "path", reason: "cannot read: \(String(cString: strerror(errno)))")
                }
                if count == 0 { break }
                // The file may have grown since fstat.
                guard offset + Int64(count) <= maxBytes else {
                    throw FilesError.tooLarge(
                        field: "path", reason: "at most files.max_file_bytes (\(maxBytes)) bytes", limit: maxBytes, actual: offset + Int64(count))
                }
                let piece = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                if head.count < MediaTypeSniffer.jsonLimit { head.append(contentsOf: piece.prefix(MediaTypeSniffer.jsonLimit - head.count)) }
                // The digest is of the bytes written, from the same buffer (the source may change
                // under us; the blob's name must be its content's). Hashing and writing one piece
                // run at once on two threads, and the write does not wait for the disk
                // (`promoteStaging` does, once): bench/files.sh, BENCHMARKS.md.
                let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: piece.baseAddress!), count: count, deallocator: .none)
                let at = offset
                let failure = Mutex<(any Error)?>(nil)
                DispatchQueue.concurrentPerform(iterations: 2) { task in
                    if task == 0 {
                        hashing.update(data)
                    } else {
                        do { try blobs.writeStaging(staging, data: data, at: at, durable: false) } catch { failure.withLock { $0 = error } }
                    }
                }
                if let error = failure.withLock({ $0 }) { throw error }
                offset += Int64(count)
            }
            return (BlobInfo(digest: hashing.digest(), size: offset), head)
        } catch {
            _ = try? blobs.removeStaging(staging)
            throw error
        }
    }

    // MARK: Files

    /// `files.get`.
    ///
    /// - Throws: `FilesError.notFound`.
    public func get(id: String, userID: String) async throws -> FileMetadata {
        guard let file = try await store.file(id: id, userID: userID) else { throw FilesError.notFound(kind: "file", id: id) }
        return file
    }

    /// `files.read`: at most `maxReadBytes` from `offset`, base64.
    ///
    /// - Throws: `FilesError.notFound`, `.invalid`.
    public func read(_ params: Files.Read.Params, userID: String) async throws -> Files.Read.Result {
        let offset = params.offset ?? 0
        guard offset >= 0 else { throw FilesError.invalid(field: "offset", reason: "at least 0") }
        // 4 MiB, or what a reply of `limits.reply_budget_bytes` can carry in base64.
        let maxLength = min(Self.maxReadBytes, max(3, (replyBudget.bytes - 1024) / 4 * 3))
        let length = params.length ?? maxLength
        guard (0...maxLength).contains(length) else { throw FilesError.invalid(field: "length", reason: "between 0 and \(maxLength)") }
        let file = try await get(id: params.id, userID: userID)
        guard let digest = file.digest else { throw FilesError.notFound(kind: "file", id: params.id) }
        let end = min(file.size, offset + Int64(length))
        let blobs = self.blobs
        let encoded = try await runner.run { () throws -> String in
            let data = offset < end ? try blobs.read(digest, range: offset..<end) : Data()
            return data.base64EncodedString()
        }
        return .init(data: encoded, offset: offset, eof: end >= file.size)
    }

    /// `files.list`: newest first, a page at a time; `mediaType` exactly or `type/*`.
    ///
    /// - Throws: `FilesError.invalid` (`limit`, `cursor`, `mediaType`), `ReplyBudgetError`.
    public func list(_ params: Files.List.Params, userID: String) async throws -> Page {
        let limit = try FilesError.validLimit(params.limit, default: Self.defaultLimit, max: Self.maxLimit)
        let before = try params.cursor.map { try FilesError.position(cursor: $0, from: Files.List.name) }
        let mediaType = try params.mediaType.map { try Self.validMediaType($0, allowWildcard: true) }
        let rows = try await store.list(FileQuery(userID: userID, beforeSeq: before, limit: limit + 1, mediaType: mediaType))
        return try Page(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.file)
    }

    /// `files.delete`: the row goes at once; the blob, when it was its last reference, by a job.
    ///
    /// - Throws: `FilesError.notFound`.
    public func delete(id: String, userID: String) async throws -> Bool {
        guard let deletion = try await store.deleteFile(id: id, userID: userID, event: FilesEvents.FileDeleted(userID: userID, fileId: id)) else {
            throw FilesError.notFound(kind: "file", id: id)
        }
        if let digest = deletion.unreferencedBlob { try await releaseBlob(digest, id) }
        return true
    }

    // MARK: Expiry

    /// Removes expired uploads (rows and staged bytes), `limit` at most; returns how many went.
    public func expireUploads(limit: Int = 100) async throws -> Int {
        let expired = try await store.expiredUploads(now: clock.now(), limit: limit)
        var removed = 0
        let blobs = self.blobs
        for upload in expired {
            // Under the upload's lock: a chunk or commit in flight finishes first.
            try await locks.withLock(upload.id) {
                guard try await store.deleteUpload(id: upload.id, userID: upload.userID) else { return }
                removed += 1
                if let staging = StagingID(upload.id) { _ = try await runner.run { try blobs.removeStaging(staging) } }
            }
        }
        return removed
    }

    // MARK: Helpers

    /// The user's upload, unless it expired (then it is gone for the client, whether or not the
    /// expiry job has removed it yet).
    private func openUpload(id: String, userID: String) async throws -> FileUpload {
        guard let upload = try await store.upload(id: id, userID: userID), upload.expiresAt > clock.now() else {
            throw FilesError.notFound(kind: "upload", id: id)
        }
        return upload
    }

    private func checkSize(_ size: Int64, field: String) throws {
        guard size >= 0 else { throw FilesError.invalid(field: field, reason: "at least 0") }
        guard size <= settings.maxFileBytes else {
            throw FilesError.tooLarge(
                field: field, reason: "at most files.max_file_bytes (\(settings.maxFileBytes)) bytes", limit: settings.maxFileBytes, actual: size)
        }
    }

    private static func status(_ upload: FileUpload) -> Files.UploadStatus.Result {
        .init(uploadId: upload.id, offset: upload.received, size: upload.size, expiresAt: upload.expiresAt)
    }

    private static func sniffLength(size: Int64) -> Int64 {
        min(size, Int64(MediaTypeSniffer.jsonLimit))
    }

    private static func stagingID(_ id: String) throws -> StagingID {
        guard let staging = StagingID(id) else { throw FilesError.notFound(kind: "upload", id: id) }
        return staging
    }

    /// 1–255 bytes of UTF-8, no `/`, no control characters, not `.` or `..`.
    static func validName(_ name: String, field: String = "name") throws -> String {
        let bytes = name.utf8.count
        guard (1...maxNameBytes).contains(bytes) else {
            throw FilesError.invalid(field: field, reason: "a name of 1 to \(maxNameBytes) bytes of UTF-8")
        }
        guard !name.contains("/"), name != ".", name != ".." else { throw FilesError.invalid(field: field, reason: "a name without /, not . or ..") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw FilesError.invalid(field: field, reason: "no control characters")
        }
        return name
    }

    /// `type/subtype` (lowercased), at most 255 bytes of printable ASCII without spaces; for a
    /// list filter also `type/*`.
    static func validMediaType(_ mediaType: String, allowWildcard: Bool = false) throws -> String {
        let lowered = mediaType.lowercased()
        let parts = lowered.split(separator: "/", omittingEmptySubsequences: false)
        guard lowered.utf8.count <= 255, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0] != "*",
            allowWildcard || parts[1] != "*",
            lowered.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "\"") })
        else { throw FilesError.invalid(field: "mediaType", reason: "a media type such as text/plain") }
        return lowered
    }

    static func validSHA256(_ hex: String) throws -> String {
        guard let digest = BlobDigest(hex: hex.lowercased()) else { throw FilesError.invalid(field: "sha256", reason: "64 hex digits") }
        return digest.hex
    }
}

/// The SHA-256 of an import, updated on one thread while the other writes the same piece.
private final class ImportHashing: @unchecked Sendable {
    // Only one piece is hashed at a time (`concurrentPerform` returns after both halves), so the
    // state is never touched by two threads at once.
    private var hasher = SHA256()

    func update(_ data: Data) { hasher.update(data: data) }

    func digest() -> BlobDigest {
        BlobDigest(hasher.finalize())
    }
}
