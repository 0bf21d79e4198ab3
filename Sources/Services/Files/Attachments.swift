import Foundation
import RPC

/// Files given to a message (`chats.messages.append`, `agent.act`, `agent.regenerate` with
/// `attachments`) or to a module (`modules.files.add`): the limits and the checks every caller
/// shares. Whether each file is the caller's is checked by the store, in the write that attaches
/// it (a file deleted meanwhile is refused, never half attached).
public enum Attachments {
    /// The most files one message carries.
    public static let maxPerMessage = 16
    /// The most files one module holds.
    public static let maxPerModule = 32

    /// The ids in their order; nil and `[]` are both "none".
    ///
    /// - Throws: `FilesError.invalid` (`attachments`: too many, a duplicate, an empty id),
    ///   `.tooLarge` past `maxPerMessage`.
    public static func validate(_ ids: [String]?, field: String = "attachments") throws -> [String] {
        guard let ids, !ids.isEmpty else { return [] }
        guard ids.count <= maxPerMessage else {
            throw FilesError.tooLarge(
                field: field, reason: "at most \(maxPerMessage) files per message", limit: Int64(maxPerMessage), actual: Int64(ids.count))
        }
        var seen = Set<String>()
        for (index, id) in ids.enumerated() {
            guard !id.isEmpty, id.utf8.count <= maxIDBytes else { throw FilesError.invalid(field: "\(field)[\(index)]", reason: "a file id") }
            guard seen.insert(id).inserted else {
                throw FilesError.invalid(field: "\(field)[\(index)]", reason: "\(id) is given twice")
            }
        }
        return ids
    }

    /// No id the daemon makes is longer; a longer one is no file of anyone's.
    static let maxIDBytes = 128
}

/// Where the files attached to messages and modules are read (the agent reads a run's files
/// through it). `SQLiteAttachmentStore` (Storage) implements it, on tables `message_attachments`
/// and `module_files` (schema/0021_attachments.sql). Scoped to one user: another user's message or
/// module has no files here.
public protocol AttachmentStore: Sendable {
    /// The files attached to each of `messageIDs` that is the user's, in the order they were given;
    /// a message without any (or not the user's, or whose files were all deleted) is not a key.
    func attachments(messageIDs: [String], userID: String) async throws -> [String: [FileMetadata]]
    /// The module's files in the order they were added; nil when the user has no such module.
    func moduleFiles(moduleID: String, userID: String) async throws -> [FileMetadata]?
}
