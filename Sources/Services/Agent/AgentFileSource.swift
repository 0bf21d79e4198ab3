import Foundation

/// What the agent reads of attached files beyond their metadata (which comes with the messages,
/// `Message.attachments`): a module's files, a question's files before it is stored, their bytes,
/// and the text extracted from those that are not text themselves (PDFs). `StoredAgentFiles` is
/// the daemon's, over the attachment, file, blob and extracted-text stores; tests may pass a fake.
/// Every call is scoped to one user: another user's chat or file has no files here.
public protocol AgentFileSource: Sendable {
    /// The files of the module of chat `chatID`, in the order they were added; empty when the chat
    /// has no module or the module no files.
    func moduleFiles(chatID: String, userID: String) async throws -> [FileMetadata]
    /// Those of `ids` the user has, in the order of `ids` (a question's files before it is stored).
    func files(ids: [String], userID: String) async throws -> [FileMetadata]
    /// The first `maxBytes` bytes of `file` (one of the user's, from a call above or a message),
    /// all of them when it is smaller; read off the event loops.
    ///
    /// - Throws: `FilesError.notFound` when its content is gone.
    func read(_ file: FileMetadata, userID: String, maxBytes: Int) async throws -> Data
    /// The text extracted from the file (a PDF's, by the `files.extract_text` job); nil when there
    /// is no such file of the user's.
    func extractedText(fileID: String, userID: String) async throws -> ExtractedText?
}

/// The daemon's `AgentFileSource`.
public struct StoredAgentFiles: AgentFileSource {
    private let attachments: any AttachmentStore
    private let chats: any ChatStore
    private let files: any FileStore
    private let blobs: any BlobStore
    private let texts: any FileTextSource
    private let runner: any BlockingWorkRunner

    /// `runner`: where blob reads block (never the event loops or the cooperative pool).
    public init(
        attachments: any AttachmentStore, chats: any ChatStore, files: any FileStore, blobs: any BlobStore, texts: any FileTextSource,
        runner: any BlockingWorkRunner
    ) {
        self.attachments = attachments
        self.chats = chats
        self.files = files
        self.blobs = blobs
        self.texts = texts
        self.runner = runner
    }

    public func moduleFiles(chatID: String, userID: String) async throws -> [FileMetadata] {
        guard let moduleID = try await chats.chat(id: chatID, userID: userID)?.moduleId else { return [] }
        return try await attachments.moduleFiles(moduleID: moduleID, userID: userID) ?? []
    }

    public func files(ids: [String], userID: String) async throws -> [FileMetadata] {
        ids.isEmpty ? [] : try await files.files(ids: ids, userID: userID)
    }

    public func read(_ file: FileMetadata, userID: String, maxBytes: Int) async throws -> Data {
        guard let digest = file.digest else { throw FilesError.notFound(kind: "file", id: file.id) }
        let blobs = self.blobs
        do {
            return try await runner.run { try blobs.read(digest, range: 0..<Int64(max(0, maxBytes))) }
        } catch BlobStoreError.notFound {
            throw FilesError.notFound(kind: "file", id: file.id)
        }
    }

    public func extractedText(fileID: String, userID: String) async throws -> ExtractedText? {
        try await texts.extractedText(fileID: fileID, userID: userID)
    }
}
