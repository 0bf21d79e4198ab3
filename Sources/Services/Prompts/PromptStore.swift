import Foundation

/// A prompt row with its position in the list (`seq` grows with every insert).
public struct StoredPrompt: Sendable, Equatable {
    public var seq: Int64
    public var prompt: Prompt

    public init(seq: Int64, prompt: Prompt) {
        self.seq = seq
        self.prompt = prompt
    }
}

/// What `PromptStore.list` selects: the user's prompts and the built-ins.
public struct PromptQuery: Sendable, Equatable {
    public var userID: String
    /// Only rows with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int

    public init(userID: String, beforeSeq: Int64? = nil, limit: Int) {
        self.userID = userID
        self.beforeSeq = beforeSeq
        self.limit = limit
    }
}

/// The body and declared variables of a new version.
public struct PromptContent: Sendable, Equatable {
    public var body: String
    public var variables: [String]

    public init(body: String, variables: [String]) {
        self.body = body
        self.variables = variables
    }
}

/// What `PromptStore.update` changes: nil fields stay as they are; `content` makes the next version.
public struct PromptChanges: Sendable, Equatable {
    public var name: String?
    public var description: String?
    public var content: PromptContent?
    public var updatedAt: Date

    public init(name: String? = nil, description: String? = nil, content: PromptContent? = nil, updatedAt: Date) {
        self.name = name
        self.description = description
        self.content = content
        self.updatedAt = updatedAt
    }
}

/// Why a write was refused.
public enum PromptStoreError: Error, Equatable, Sendable {
    /// The user already has a prompt with this name (compared without case).
    case nameTaken
}

/// Where prompts live. `SQLitePromptStore` in Storage implements it. Every call is scoped to one
/// user: another user's prompt is the same as a missing one. Built-in prompts (no owner) are found
/// by the reads for every user, and never by the writes. A write stores its event in the same
/// transaction (the outbox), only when it changes something.
public protocol PromptStore: Sendable {
    /// Inserts a user's prompt and its version 1 (`prompt.version`, body and variables); returns its `seq`.
    /// - Throws: `PromptStoreError.nameTaken`.
    func insert(_ prompt: Prompt, userID: String, event: PromptsEvents.PromptCreated) async throws -> Int64
    /// The user's or a built-in prompt at `version` (nil: the latest); nil when there is no such
    /// prompt for the user, or no such version.
    func prompt(id: String, version: Int?, userID: String) async throws -> Prompt?
    /// The user's prompt with this name (without case), else the built-in one; at its latest version.
    func prompt(named name: String, userID: String) async throws -> Prompt?
    /// In one write transaction: reads the user's prompt at its latest version, hands it to `edit`
    /// and applies the changes it returns (a `content` becomes version `latestVersion + 1`). Returns
    /// the prompt as it is then, at its latest version; nil when the user has no such prompt (also
    /// for a built-in). An error thrown by `edit` rolls everything back and is rethrown. `event`
    /// makes the event of the prompt as it is then.
    /// - Throws: `PromptStoreError.nameTaken`, or what `edit` throws.
    func update(
        id: String, userID: String, edit: @escaping @Sendable (Prompt) throws -> PromptChanges,
        event: @escaping @Sendable (Prompt) -> PromptsEvents.PromptUpdated
    ) async throws -> Prompt?
    /// Deletes the user's prompt and its versions; false when the user has no such prompt (also for
    /// a built-in).
    func delete(id: String, userID: String, event: PromptsEvents.PromptDeleted) async throws -> Bool
    /// The user's prompts and the built-ins, newest first (by `seq`), at most `query.limit` rows.
    func list(_ query: PromptQuery) async throws -> [StoredPrompt]
    /// Every version of the user's or a built-in prompt, oldest first; nil when there is no such prompt.
    func versions(id: String, userID: String) async throws -> [PromptVersionSummary]?
}
