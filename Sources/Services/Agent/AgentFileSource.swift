import Foundation

/// What the agent reads of the files attached to messages and modules: which files, their bytes,
/// and the text extracted from those that are not text themselves (PDFs). `AgentFiles` (Services/
/// Files) is the daemon's, over the attachment store, the file store and the blob store; tests pass
/// a fake. Every call is scoped to one user: another user's message, chat or file has no files here.
public protocol AgentFileSource: Sendable {
    /// The files attached to each of `messageIDs` that has some, in their order.
    func attachments(messageIDs: [String], userID: String) async throws -> [String: [FileMetadata]]
    /// The files of the module of chat `chatID`, in the order they were added; empty when the chat
    /// has no module or the module no files.
    func moduleFiles(chatID: String, userID: String) async throws -> [FileMetadata]
    /// Those of `ids` the user has, in the order of `ids` (a question's files before it is stored).
    func files(ids: [String], userID: String) async throws -> [FileMetadata]
    /// The first `maxBytes` bytes of the file (all of them when it is smaller), read off the event
    /// loops.
    ///
    /// - Throws: `FilesError.notFound` when the file is gone.
    func read(_ file: FileMetadata, userID: String, maxBytes: Int) async throws -> Data
    /// The text extracted from the file (a PDF's, by the `files.extract_text` job).
    func extractedText(fileID: String, userID: String) async throws -> AgentExtractedText
}

/// Where a file's text extraction is.
public enum AgentExtractedText: Sendable, Equatable {
    /// Nothing extracts text from this kind of file.
    case none
    /// Queued or running: a run started now says so instead of the text.
    case pending
    case ready(String)
    case failed(reason: String)
}
