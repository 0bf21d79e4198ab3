import Foundation

/// A stored file as clients see it (`files.get`, an attachment): who owns it is not part of it,
/// every call is scoped to one user. Identical content of several files (of one user or of
/// several) is one blob (`sha256`), which nothing here reveals: each file has its own id and each
/// owner is charged its full size.
public struct FileMetadata: Codable, Sendable, Equatable {
    /// `fil_…`, opaque.
    public var id: String
    /// The name it was given (a path's last component for `files.import`): 1–255 bytes of UTF-8,
    /// no `/`, no control characters.
    public var name: String
    /// As given, else sniffed from the first bytes (`application/octet-stream` when unknown).
    public var mediaType: String
    /// In bytes.
    public var size: Int64
    /// The lowercase hex SHA-256 of the content.
    public var sha256: String
    public var createdAt: Date

    public init(id: String, name: String, mediaType: String, size: Int64, sha256: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.mediaType = mediaType
        self.size = size
        self.sha256 = sha256
        self.createdAt = createdAt
    }

    /// The blob holding the content.
    public var digest: BlobDigest? { BlobDigest(hex: sha256) }
}

/// A file row with its position in the owner's list (`seq` grows with every insert).
public struct StoredFile: Sendable, Equatable {
    public var seq: Int64
    public var file: FileMetadata

    public init(seq: Int64, file: FileMetadata) {
        self.seq = seq
        self.file = file
    }
}

/// What `FileStore.list` selects.
public struct FileQuery: Sendable, Equatable {
    public var userID: String
    /// Only rows with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int
    /// Only files with exactly this media type, or, for `type/*`, with this top-level type.
    public var mediaType: String?

    public init(userID: String, beforeSeq: Int64? = nil, limit: Int, mediaType: String? = nil) {
        self.userID = userID
        self.beforeSeq = beforeSeq
        self.limit = limit
        self.mediaType = mediaType
    }
}

/// An upload in progress (`files.upload.begin` … `files.upload.commit`). Its bytes are staged in the
/// blob store under `id` (`BlobStore`'s staging); `received` is how many of them are durable, the
/// offset the next chunk must start at.
public struct FileUpload: Sendable, Equatable {
    /// `upl_…`, opaque; also the staging id.
    public var id: String
    public var userID: String
    public var name: String
    /// nil: sniffed at commit.
    public var mediaType: String?
    /// The size announced at begin: the commit needs exactly this many bytes.
    public var size: Int64
    /// The SHA-256 announced at begin (lowercase hex); nil when none was.
    public var sha256: String?
    public var received: Int64
    public var createdAt: Date
    /// After this the upload is gone (its staged bytes removed by the expiry job).
    public var expiresAt: Date

    public init(
        id: String, userID: String, name: String, mediaType: String?, size: Int64, sha256: String?, received: Int64, createdAt: Date,
        expiresAt: Date
    ) {
        self.id = id
        self.userID = userID
        self.name = name
        self.mediaType = mediaType
        self.size = size
        self.sha256 = sha256
        self.received = received
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}
