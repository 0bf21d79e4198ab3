import Crypto
import Foundation
import Services

#if canImport(Glibc)
import Glibc
#endif

/// `BlobStore` on a local file system, beside the database (`<database's folder>/blobs` unless
/// `files.blob_dir` says otherwise):
///
/// ```
/// <root>/ab/cd/abcd…   a blob, named by its SHA-256 (fan-out by its first two byte pairs), 0600
/// <root>/staging/<id>  an upload's bytes so far, 0600
/// ```
///
/// Folders are made 0700 when first needed (nothing is created until a write: `agentd openrpc` and
/// a graph that never stores a file leave no folder behind).
///
/// Whole or absent: a blob appears only by `link(2)` of a staged file that was fsynced first, and
/// that link is atomic, so a crash leaves either no name or a name for every byte. A blob's inode is
/// never written to again: `createStaging` makes a new inode rather than truncating one that a blob
/// may share, and `writeStaging` copies a staged file that was promoted before changing it.
///
/// Every call blocks on the disk and holds at most one piece (`pieceSize`) in memory, whatever the
/// blob's size; a failure is `BlobStoreError.io` naming the path and the system's reason.
public struct DiskBlobStore: BlobStore {
    /// The folder holding the fan-out folders and `staging`.
    public let root: String
    /// How much one read holds in memory (the digest, the copy of a promoted staged file).
    static let pieceSize = 1 << 20

    public init(root: String) {
        self.root = root
    }

    // MARK: Paths

    var stagingFolder: String { root + "/staging" }

    func stagingPath(_ id: StagingID) -> String { stagingFolder + "/" + id.value }

    /// `<root>/ab/cd`: 65,536 folders at most, so that no folder holds millions of names.
    func blobFolder(_ digest: BlobDigest) -> String {
        let hex = digest.hex
        return root + "/" + hex.prefix(2) + "/" + hex.dropFirst(2).prefix(2)
    }

    func blobPath(_ digest: BlobDigest) -> String { blobFolder(digest) + "/" + digest.hex }

    // MARK: Staging

    public func createStaging(_ id: StagingID) throws {
        try makeFolders(stagingFolder)
        let path = stagingPath(id)
        // A new inode, never O_TRUNC: the old one may be a blob's too (promoted, not yet removed).
        if unlink(path) != 0, errno != ENOENT { throw Self.ioError("unlink", path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.ioError("create", path) }
        defer { close(fd) }
        try syncFolder(stagingFolder)
    }

    public func writeStaging(_ id: StagingID, data: Data, at offset: Int64, durable: Bool) throws {
        let path = stagingPath(id)
        var fd = try openExisting(path, flags: O_RDWR, missing: "staging area \(id)")
        defer { close(fd) }
        var status = try Self.status(of: fd, path)
        guard offset >= 0, offset <= Int64(status.st_size) else {
            throw BlobStoreError.invalidOffset(expected: Int64(status.st_size), actual: offset)
        }
        if status.st_nlink > 1 {
            // Promoted and not removed yet: the inode is a blob's too, which must never change.
            close(fd)
            fd = try separateStaging(path, size: Int64(status.st_size))
            status = try Self.status(of: fd, path)
        }
        try data.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let written = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Self.ioError("write", path)
                }
                done += written
            }
        }
        let end = offset + Int64(data.count)
        if Int64(status.st_size) != end, ftruncate(fd, off_t(end)) != 0 { throw Self.ioError("truncate", path) }
        if durable {
            // fdatasync also makes the new size durable (it is needed to read the data back).
            guard fdatasync(fd) == 0 else { throw Self.ioError("fdatasync", path) }
        } else {
            // Start writing the bytes back now, without waiting (on Linux POSIX_FADV_DONTNEED starts
            // the writeback of dirty pages; sync_file_range is not in Swift's Glibc): the disk
            // works while the caller reads and hashes its next piece, and promoteStaging's fsync
            // finds little left to do.
            _ = posix_fadvise(fd, off_t(offset), off_t(data.count), POSIX_FADV_DONTNEED)
        }
    }

    public func stagingSize(_ id: StagingID) throws -> Int64? {
        try Self.size(at: stagingPath(id))
    }

    public func digestStaging(_ id: StagingID, length: Int64) throws -> BlobInfo {
        let path = stagingPath(id)
        let fd = try openExisting(path, flags: O_RDONLY, missing: "staging area \(id)")
        defer { close(fd) }
        let size = Int64(try Self.status(of: fd, path).st_size)
        guard length >= 0, length <= size else { throw BlobStoreError.invalidOffset(expected: size, actual: length) }
        // The kernel reads ahead for a whole-file sequential pass.
        _ = posix_fadvise(fd, 0, off_t(length), POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        var offset: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.pieceSize, alignment: 16)
        defer { buffer.deallocate() }
        while offset < length {
            let wanted = Int(min(Int64(Self.pieceSize), length - offset))
            let count = try Self.readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), at: offset, path)
            guard count == wanted else { throw BlobStoreError.invalidOffset(expected: offset + Int64(count), actual: length) }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            offset += Int64(count)
        }
        return BlobInfo(digest: BlobDigest(hasher.finalize()), size: length)
    }

    public func promoteStaging(_ id: StagingID, as info: BlobInfo) throws {
        let path = stagingPath(id)
        let fd = try openExisting(path, flags: O_RDONLY, missing: "staging area \(id)")
        defer { close(fd) }
        let staged = try Self.status(of: fd, path)
        guard Int64(staged.st_size) == info.size else { throw BlobStoreError.invalidOffset(expected: info.size, actual: Int64(staged.st_size)) }
        // The bytes first, then the name: a name must never point at bytes still in the page cache.
        guard fsync(fd) == 0 else { throw Self.ioError("fsync", path) }
        let folder = blobFolder(info.digest)
        try makeFolders(folder)
        let target = blobPath(info.digest)
        if link(path, target) != 0 {
            // Already there: content addressing says it holds these very bytes. Its folder is
            // synced again: the link may be from a promotion that died before its own sync.
            if errno == EEXIST { return try syncFolder(folder) }
            throw Self.ioError("link \(path) to", target)
        }
        // The path was linked, not the open file: make sure it was still the file checked above
        // (a createStaging in between would have put another inode there).
        var linked = Glibc.stat()
        guard statPath(target, &linked) == 0 else { throw Self.ioError("stat", target) }
        guard linked.st_ino == staged.st_ino, linked.st_dev == staged.st_dev else {
            unlink(target)
            throw BlobStoreError.io("staging area \(path) changed while it was promoted to \(target)")
        }
        try syncFolder(folder)
    }

    @discardableResult
    public func removeStaging(_ id: StagingID) throws -> Bool {
        try remove(stagingPath(id), folder: stagingFolder)
    }

    public func stagingIDs() throws -> [StagingID] {
        try Self.names(in: stagingFolder).compactMap(StagingID.init).sorted { $0.value < $1.value }
    }

    // MARK: Blobs

    public func stat(_ digest: BlobDigest) throws -> BlobInfo? {
        try Self.size(at: blobPath(digest)).map { BlobInfo(digest: digest, size: $0) }
    }

    public func read(_ digest: BlobDigest, range: Range<Int64>) throws -> Data {
        try read(blobPath(digest), range: range, missing: "blob \(digest)")
    }

    public func readStaging(_ id: StagingID, range: Range<Int64>) throws -> Data {
        try read(stagingPath(id), range: range, missing: "staging area \(id)")
    }

    private func read(_ path: String, range: Range<Int64>, missing: String) throws -> Data {
        let fd = try openExisting(path, flags: O_RDONLY, missing: missing)
        defer { close(fd) }
        let size = Int64(try Self.status(of: fd, path).st_size)
        let lower = max(0, min(range.lowerBound, size))
        let upper = max(lower, min(range.upperBound, size))
        let count = Int(upper - lower)
        var data = Data(count: count)
        let read = try data.withUnsafeMutableBytes { buffer in try Self.readFully(fd, into: buffer, at: lower, path) }
        // A file here never shrinks while read; fewer bytes than its size means the disk lost them.
        guard read == count else { throw BlobStoreError.io("\(path) ended at \(lower + Int64(read)), before its size \(size)") }
        return data
    }

    @discardableResult
    public func delete(_ digest: BlobDigest) throws -> Bool {
        try remove(blobPath(digest), folder: blobFolder(digest))
    }

    /// Every well-formed name in a well-formed place (`ab/cd/abcd…`); anything else in the folder
    /// (a stray file, a copy left by a tool) is not a blob and is left alone.
    public func digests() throws -> [BlobDigest] {
        var found: [BlobDigest] = []
        for first in try Self.names(in: root) where Self.isFanOutName(first) {
            for second in try Self.names(in: root + "/" + first) where Self.isFanOutName(second) {
                for name in try Self.names(in: root + "/" + first + "/" + second) {
                    guard let digest = BlobDigest(hex: name), name.hasPrefix(first + second) else { continue }
                    found.append(digest)
                }
            }
        }
        return found.sorted()
    }

    // MARK: Helpers

    /// Copies the staged file at `path` (`size` bytes) to a new inode that takes its name, and
    /// opens that one: the old inode stays the blob's alone.
    private func separateStaging(_ path: String, size: Int64) throws -> Int32 {
        let source = try openExisting(path, flags: O_RDONLY, missing: path)
        defer { close(source) }
        // A name that is a staging id no upload has: a copy a crash cut short is an orphan area,
        // which the start-up sweep removes.
        let temporary = stagingFolder + "/copy-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let copy = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard copy >= 0 else { throw Self.ioError("create", temporary) }
        do {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.pieceSize, alignment: 16)
            defer { buffer.deallocate() }
            var offset: Int64 = 0
            while offset < size {
                let wanted = Int(min(Int64(Self.pieceSize), size - offset))
                let count = try Self.readFully(source, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), at: offset, path)
                guard count > 0 else { break }
                var done = 0
                while done < count {
                    let written = pwrite(copy, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw Self.ioError("write", temporary)
                    }
                    done += written
                }
                offset += Int64(count)
            }
            guard fdatasync(copy) == 0 else { throw Self.ioError("fdatasync", temporary) }
            guard rename(temporary, path) == 0 else { throw Self.ioError("rename \(temporary) to", path) }
            try syncFolder(stagingFolder)
            return copy
        } catch {
            close(copy)
            unlink(temporary)
            throw error
        }
    }

    /// Unlinks `path` and makes that durable; false when it was not there.
    private func remove(_ path: String, folder: String) throws -> Bool {
        guard unlink(path) == 0 else {
            if errno == ENOENT { return false }
            throw Self.ioError("unlink", path)
        }
        try syncFolder(folder)
        return true
    }

    private func openExisting(_ path: String, flags: Int32, missing: String) throws -> Int32 {
        while true {
            let fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW)
            if fd >= 0 { return fd }
            switch errno {
            case EINTR: continue
            case ENOENT: throw BlobStoreError.notFound(missing)
            default: throw Self.ioError("open", path)
            }
        }
    }

    /// Creates `folder` and the missing folders above it up to `root` included (0700), fsyncing
    /// each parent that got a new entry, so that a durable file is never under a folder that a
    /// crash forgets.
    private func makeFolders(_ folder: String) throws {
        var missing: [String] = []
        var current = folder
        while true {
            var status = Glibc.stat()
            if statPath(current, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFDIR else { throw BlobStoreError.io("\(current) is not a folder") }
                break
            }
            guard errno == ENOENT else { throw Self.ioError("stat", current) }
            missing.append(current)
            guard let slash = current.lastIndex(of: "/"), slash != current.startIndex else { break }
            current = String(current[..<slash])
        }
        for created in missing.reversed() {
            if mkdir(created, 0o700) != 0, errno != EEXIST { throw Self.ioError("mkdir", created) }
            if let slash = created.lastIndex(of: "/"), slash != created.startIndex { try syncFolder(String(created[..<slash])) }
        }
    }

    private func syncFolder(_ folder: String) throws {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.ioError("open folder", folder) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Self.ioError("fsync folder", folder) }
    }

    private static func status(of fd: Int32, _ path: String) throws -> Glibc.stat {
        var status = Glibc.stat()
        guard fstat(fd, &status) == 0 else { throw ioError("fstat", path) }
        return status
    }

    /// The size of the regular file at `path`; nil when there is none.
    private static func size(at path: String) throws -> Int64? {
        var status = Glibc.stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw ioError("stat", path)
        }
        guard status.st_mode & S_IFMT == S_IFREG else { throw BlobStoreError.io("\(path) is not a regular file") }
        return Int64(status.st_size)
    }

    /// Reads until `buffer` is full or the file ends; the count read.
    private static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, _ path: String) throws -> Int {
        var done = 0
        while done < buffer.count {
            let count = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw ioError("read", path)
            }
            if count == 0 { break }
            done += count
        }
        return done
    }

    /// The entries of `folder` (not `.` and `..`); none when it does not exist yet.
    private static func names(in folder: String) throws -> [String] {
        guard let directory = opendir(folder) else {
            if errno == ENOENT { return [] }
            throw ioError("open folder", folder)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// Two lowercase hex digits.
    private static func isFanOutName(_ name: String) -> Bool {
        name.utf8.count == 2 && name.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    private static func ioError(_ action: String, _ path: String, _ code: Int32 = errno) -> BlobStoreError {
        .io("\(action) \(path): \(String(cString: strerror(code)))")
    }
}

/// stat(2), out of `DiskBlobStore`, where `stat` names the protocol's method.
private func statPath(_ path: String, _ status: inout Glibc.stat) -> Int32 {
    stat(path, &status)
}
