import Foundation
import RPC

/// Events of the prompts domain.
public enum PromptsEvents {
    public struct PromptCreated: DomainEvent, Equatable {
        public static let topic = "prompt.created"
        public var userID: String
        public var promptId: String
        public var name: String
        public var version: Int

        public init(userID: String, prompt: Prompt) {
            self.userID = userID
            self.promptId = prompt.id
            self.name = prompt.name
            self.version = prompt.latestVersion
        }

        enum CodingKeys: String, CodingKey { case promptId, name, version }
    }

    /// `version` is the latest one, which is new when the body or the variables changed.
    public struct PromptUpdated: DomainEvent, Equatable {
        public static let topic = "prompt.updated"
        public var userID: String
        public var promptId: String
        public var name: String
        public var version: Int

        public init(userID: String, prompt: Prompt) {
            self.userID = userID
            self.promptId = prompt.id
            self.name = prompt.name
            self.version = prompt.latestVersion
        }

        enum CodingKeys: String, CodingKey { case promptId, name, version }

        public static func staleCacheTags(of event: Event) -> [String] { PromptsEvents.promptTag(of: event) }
    }

    public struct PromptDeleted: DomainEvent, Equatable {
        public static let topic = "prompt.deleted"
        public var userID: String
        public var promptId: String

        public init(userID: String, promptId: String) {
            self.userID = userID
            self.promptId = promptId
        }

        enum CodingKeys: String, CodingKey { case promptId }

        public static func staleCacheTags(of event: Event) -> [String] { PromptsEvents.promptTag(of: event) }
    }

    public static let all: [any DomainEvent.Type] = [PromptCreated.self, PromptUpdated.self, PromptDeleted.self]

    private struct PromptData: Decodable {
        var promptId: String
    }

    /// The cache tag of the prompt a committed event names in its `data` (the stored event carries
    /// no prompt id of its own).
    static func promptTag(of event: Event) -> [String] {
        guard let data = try? JSONDecoder().decode(PromptData.self, from: Data(event.data.text.utf8)) else { return [] }
        return [RPCCacheRule.tag(Prompts.cacheTag, id: data.promptId)]
    }
}
