import Foundation
import RPC

/// The `files.*` methods: the caller's files, uploaded over the socket in chunks (resumable) or
/// imported from a path by the daemon's own user. docs/FILES.md.
public enum Files {
    /// The result-cache tag of one file (`file:<id>`): `file.deleted` makes it stale.
    public static let cacheTag = "file"

    public enum UploadBegin: RPCMethod {
        public static let name = "files.upload.begin"
        public static var errors: [RPCErrorDescription] { [FilesError.tooManyUploadsDescription, QuotaExceededError.description] }
        public static let summary =
            "Starts an upload of size bytes (at most files.max_file_bytes); send them with files.upload.chunk, chunkSize at a time, then files.upload.commit. Expires after an hour unfinished."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var name: String
            /// Sniffed from the first bytes when absent.
            public var mediaType: String?
            public var size: Int64
            /// Lowercase hex; the commit is refused when the bytes do not match.
            public var sha256: String?
            public init(name: String, mediaType: String? = nil, size: Int64, sha256: String? = nil) {
                self.name = name
                self.mediaType = mediaType
                self.size = size
                self.sha256 = sha256
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var uploadId: String
            /// The most bytes (before base64) one chunk may carry.
            public var chunkSize: Int
            public var expiresAt: Date
            public init(uploadId: String, chunkSize: Int, expiresAt: Date) {
                self.uploadId = uploadId
                self.chunkSize = chunkSize
                self.expiresAt = expiresAt
            }
        }
    }

    public enum UploadChunk: RPCMethod {
        public static let name = "files.upload.chunk"
        public static var errors: [RPCErrorDescription] { [FilesError.uploadNotFoundDescription, FilesError.offsetMismatchDescription] }
        public static let summary =
            "Appends base64 data (at most chunkSize bytes) at offset, which must be the upload's offset (files.upload.status); durable when answered."
        public static let rateClass: RPCRateClassName = .upload
        public struct Params: Codable, Sendable {
            public var uploadId: String
            public var offset: Int64
            /// Base64 (standard alphabet, padded).
            public var data: String
            public init(uploadId: String, offset: Int64, data: String) {
                self.uploadId = uploadId
                self.offset = offset
                self.data = data
            }
        }
        public typealias Result = UploadStatus.Result
    }

    public enum UploadStatus: RPCMethod {
        public static let name = "files.upload.status"
        public static var errors: [RPCErrorDescription] { [FilesError.uploadNotFoundDescription] }
        public static let summary = "Where an upload stands: offset is where the next chunk starts."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var uploadId: String
            public init(uploadId: String) { self.uploadId = uploadId }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var uploadId: String
            public var offset: Int64
            public var size: Int64
            public var expiresAt: Date
            public init(uploadId: String, offset: Int64, size: Int64, expiresAt: Date) {
                self.uploadId = uploadId
                self.offset = offset
                self.size = size
                self.expiresAt = expiresAt
            }
        }
    }

    public enum UploadCommit: RPCMethod {
        public static let name = "files.upload.commit"
        public static var errors: [RPCErrorDescription] {
            [FilesError.uploadNotFoundDescription, FilesError.checksumMismatchDescription, QuotaExceededError.description]
        }
        public static let summary =
            "Makes a complete upload a file; a sha256 or size that does not match what begin announced is refused and nothing is kept."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var uploadId: String
            public init(uploadId: String) { self.uploadId = uploadId }
        }
        public typealias Result = FileMetadata
    }

    public enum Import: RPCMethod {
        public static let name = "files.import"
        public static var errors: [RPCErrorDescription] { [FilesError.importUnauthorizedDescription, QuotaExceededError.description] }
        public static let summary =
            "Stores the file at an absolute path, read by the daemon itself: only for a caller whose peer uid is the daemon's own."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var path: String
            /// Default: the path's last component.
            public var name: String?
            public var mediaType: String?
            public init(path: String, name: String? = nil, mediaType: String? = nil) {
                self.path = path
                self.name = name
                self.mediaType = mediaType
            }
        }
        public typealias Result = FileMetadata
    }

    public enum Get: RPCMethod {
        public static let name = "files.get"
        public static var errors: [RPCErrorDescription] { [FilesError.fileNotFoundDescription] }
        public static let summary = "One of the caller's files (its metadata; files.read for the bytes)."
        public static let rateClass: RPCRateClassName = .read
        public static let cacheRule: RPCCacheRule? = .byID(tag: Files.cacheTag)
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = FileMetadata
    }

    public enum Read: RPCMethod {
        public static let name = "files.read"
        public static var errors: [RPCErrorDescription] { [FilesError.fileNotFoundDescription] }
        public static let summary = "Bytes of one of the caller's files, base64: length (default and at most 4 MiB) from offset (default 0)."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var id: String
            public var offset: Int64?
            public var length: Int?
            public init(id: String, offset: Int64? = nil, length: Int? = nil) {
                self.id = id
                self.offset = offset
                self.length = length
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            /// Base64.
            public var data: String
            public var offset: Int64
            /// True when the bytes reach the file's end.
            public var eof: Bool
            public init(data: String, offset: Int64, eof: Bool) {
                self.data = data
                self.offset = offset
                self.eof = eof
            }
        }
    }

    public enum List: RPCMethod {
        public static let name = "files.list"
        public static let summary =
            "The caller's files, newest first, a page at a time (limit 1-200, default 50); mediaType filters exactly, or by top-level type as image/*."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var cursor: String?
            public var limit: Int?
            public var mediaType: String?
            public init(cursor: String? = nil, limit: Int? = nil, mediaType: String? = nil) {
                self.cursor = cursor
                self.limit = limit
                self.mediaType = mediaType
            }
        }
        public typealias Result = KeysetPage<FileMetadata>
    }

    public enum Delete: RPCMethod {
        public static let name = "files.delete"
        public static var errors: [RPCErrorDescription] { [FilesError.fileNotFoundDescription] }
        public static let summary = "Deletes one of the caller's files: it leaves the messages and modules it was attached to."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var deleted: Bool
            public init(deleted: Bool) { self.deleted = deleted }
        }
    }
}

extension Files.UploadChunk.Params: RPCLargeStringParams {
    public static var largeStringName: String { "data" }
    public mutating func setLargeString(_ value: String) { data = value }
}
