import Foundation

/// A prompt: a named template whose body holds `{{variable}}` placeholders, at one of its versions.
/// Changing the body or the variables makes a new version; the old ones stay readable.
public struct Prompt: Codable, Sendable, Equatable {
    /// `prm_…`, opaque.
    public var id: String
    /// 1–100 characters, trimmed; unique per user without case.
    public var name: String
    public var description: String
    /// The version shown here: the latest unless another one was asked for.
    public var version: Int
    /// The newest version; versions `1...latestVersion` all stay readable.
    public var latestVersion: Int
    /// The template of this version (at most 256 KiB of UTF-8), see `PromptTemplate`.
    public var body: String
    /// The variables this version declares, in order: the names `prompts.render` accepts. Every
    /// placeholder of the body is one of them.
    public var variables: [String]
    /// Shipped with agentd: every user may read and render it, nobody may change it.
    public var builtIn: Bool
    public var createdAt: Date
    /// When the name, the description or the latest version last changed.
    public var updatedAt: Date
    /// When this version was made.
    public var versionCreatedAt: Date

    public init(
        id: String, name: String, description: String, version: Int, latestVersion: Int, body: String, variables: [String],
        builtIn: Bool, createdAt: Date, updatedAt: Date, versionCreatedAt: Date
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.version = version
        self.latestVersion = latestVersion
        self.body = body
        self.variables = variables
        self.builtIn = builtIn
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.versionCreatedAt = versionCreatedAt
    }
}

/// One version of a prompt, without its body (`prompts.get` with `version` has it).
public struct PromptVersionSummary: Codable, Sendable, Equatable {
    public var version: Int
    public var variables: [String]
    public var createdAt: Date

    public init(version: Int, variables: [String], createdAt: Date) {
        self.version = version
        self.variables = variables
        self.createdAt = createdAt
    }
}
