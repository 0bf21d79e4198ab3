import Foundation

/// Where a file's text stands (`file_texts.state`, schema/0022_file_texts.sql).
public enum FileTextState: String, Codable, Sendable, CaseIterable {
    /// The `files.extract_text` job has not finished yet.
    case pending
    /// `ExtractedText.text` holds it (possibly cut, `truncated`).
    case ready
    /// Extraction failed for good (a damaged, encrypted or hostile PDF; text that is not UTF-8):
    /// `ExtractedText.error` says why.
    case failed
    /// No text is extracted from this media type (images, archives, …): only the name is indexed.
    case skipped
}

/// A file's extracted text as the agent reads it (`FileTextSource`).
public struct ExtractedText: Codable, Sendable, Equatable {
    public var state: FileTextState
    /// With `ready`: the text (pdftotext's for a PDF, page breaks as form feeds; the leading bytes
    /// of a text file).
    public var text: String?
    /// With `ready`: the text was cut at `FileTextJob.Limits` (the rest of the file has more).
    public var truncated: Bool
    /// With `failed`: why.
    public var error: String?
    public var extractedAt: Date?

    public init(state: FileTextState, text: String? = nil, truncated: Bool = false, error: String? = nil, extractedAt: Date? = nil) {
        self.state = state
        self.text = text
        self.truncated = truncated
        self.error = error
        self.extractedAt = extractedAt
    }
}

/// How the agent reads the text extracted from a user's file (a PDF's, through pdftotext). The
/// agent holds this, not the store: reading is all it may do.
public protocol FileTextSource: Sendable {
    /// The text of the user's file `fileID`; nil when the user has no such file (another user's
    /// answers the same).
    func extractedText(fileID: String, userID: String) async throws -> ExtractedText?
}

/// A file whose text is still to extract, as the `files.extract_text` job needs it.
public struct FileTextTask: Sendable, Equatable {
    /// The file's position (`files.seq`): the cursor of `FileTextStore.pendingTexts`.
    public var seq: Int64
    public var fileID: String
    /// The file's owner (the event of the outcome is theirs).
    public var userID: String
    public var mediaType: String
    public var size: Int64
    public var digest: BlobDigest

    public init(seq: Int64, fileID: String, userID: String, mediaType: String, size: Int64, digest: BlobDigest) {
        self.seq = seq
        self.fileID = fileID
        self.userID = userID
        self.mediaType = mediaType
        self.size = size
        self.digest = digest
    }
}

/// How an extraction ended.
public enum FileTextOutcome: Sendable, Equatable {
    case ready(text: String, truncated: Bool)
    case failed(reason: String)
}

/// Where extracted texts live: `SQLiteFileTextStore` (Storage), table `file_texts`, whose rows
/// the database adds with each file (`pending` for the media types `FileTextJob.extracts` names,
/// else `skipped`) and removes with it. The text is in the search index (`files_fts`) as soon as
/// it is stored.
public protocol FileTextStore: FileTextSource {
    /// The file `fileID` (of any user: the job is the daemon's) when its text is pending; nil when
    /// the file is gone or its text is no longer pending.
    func pendingText(fileID: String) async throws -> FileTextTask?
    /// Files whose text is pending, of every user, by `seq`, after `afterSeq` (the start-up
    /// enqueue pages through them).
    func pendingTexts(afterSeq: Int64, limit: Int) async throws -> [FileTextTask]
    /// Stores the outcome for `fileID` when its text is still pending, with `event`; false (and
    /// no event) when it is not (the file was deleted meanwhile, or another attempt finished first).
    func finishText(fileID: String, outcome: FileTextOutcome, at: Date, event: FileTextEvents.TextExtracted) async throws -> Bool
}

/// The event of a file's text extraction: a client learns when search finds the file by its text
/// (or why it never will). The text itself is not in it.
public enum FileTextEvents {
    public struct TextExtracted: DomainEvent, Equatable {
        public static let topic = "file.text_extracted"
        public var userID: String
        public var fileId: String
        /// `ready` or `failed`.
        public var state: FileTextState
        /// With `failed`: why.
        public var error: String?

        public init(userID: String, fileId: String, outcome: FileTextOutcome) {
            self.userID = userID
            self.fileId = fileId
            switch outcome {
            case .ready:
                state = .ready
                error = nil
            case .failed(let reason):
                state = .failed
                error = reason
            }
        }

        enum CodingKeys: String, CodingKey { case fileId, state, error }
    }

    public static let all: [any DomainEvent.Type] = [TextExtracted.self]
}
