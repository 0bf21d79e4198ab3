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

    /// The active branch as a transcript: the title, then each message under its role and time.
    static func markdown(chat: Chat, branch: [Message]) -> String {
        var text = "# \(chat.title)\n"
        for message in branch {
            let role = message.role.rawValue.prefix(1).uppercased() + message.role.rawValue.dropFirst()
            text += "\n## \(role) · \(message.createdAt.formatted(.iso8601))\n\n\(message.content)\n"
        }
        return text
    }
}
