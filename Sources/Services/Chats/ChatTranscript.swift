import Foundation

/// The documents `chats.export` produces.
enum ChatTranscript {
    /// Version tag of the JSON document, so a later importer can tell formats apart.
    static let jsonFormat = "agentd.chat.v1"

    private struct Document: Encodable {
        var format: String
        var chat: Chat
        var messages: [Message]
    }

    /// The chat and every message of its tree, parents before children, pretty-printed with sorted
    /// keys (stable output for diffs).
    static func json(chat: Chat, messages: [Message]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(Document(format: jsonFormat, chat: chat, messages: messages)), as: UTF8.self) + "\n"
    }

    /// The active branch as a transcript: the title, then each message under its role and time,
    /// followed by the names of its files when it has some.
    static func markdown(chat: Chat, branch: [Message]) -> String {
        var text = "# \(chat.title)\n"
        for message in branch {
            let role = message.role.rawValue.prefix(1).uppercased() + message.role.rawValue.dropFirst()
            text += "\n## \(role) · \(message.createdAt.formatted(.iso8601))\n\n\(message.content)\n"
            if let files = message.attachments, !files.isEmpty {
                text += "\nAttachments: " + files.map { "\($0.name) (\($0.mediaType), \($0.size) bytes)" }.joined(separator: ", ") + "\n"
            }
        }
        return text
    }
}
