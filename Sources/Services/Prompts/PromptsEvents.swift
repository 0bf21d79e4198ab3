/// Events of the prompts domain, published after the write.
public enum PromptsEvents {
    public struct PromptCreated: DomainEvent, Equatable {
        public static let name = "prompt.created"
        public var userID: String
        public var prompt: Prompt

        public init(userID: String, prompt: Prompt) {
            self.userID = userID
            self.prompt = prompt
        }
    }

    /// `prompt` is at its latest version, which is new when the body or the variables changed.
    public struct PromptUpdated: DomainEvent, Equatable {
        public static let name = "prompt.updated"
        public var userID: String
        public var prompt: Prompt

        public init(userID: String, prompt: Prompt) {
            self.userID = userID
            self.prompt = prompt
        }
    }

    public struct PromptDeleted: DomainEvent, Equatable {
        public static let name = "prompt.deleted"
        public var userID: String
        public var id: String

        public init(userID: String, id: String) {
            self.userID = userID
            self.id = id
        }
    }
}
