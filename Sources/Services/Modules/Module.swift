import Foundation

/// A module: a user's document with a title, a description, content and tags.
public struct Module: Codable, Sendable, Equatable {
    /// `mod_…`, opaque.
    public var id: String
    /// 1–200 characters, trimmed.
    public var title: String
    public var description: String
    /// At most 1 MiB of UTF-8.
    public var content: String
    /// At most 32, each 1–64 characters; unique and sorted.
    public var tags: [String]
    public var createdAt: Date
    public var updatedAt: Date
    /// The files given to the module (`modules.files.add`), in the order they were added, at most
    /// 32: the agent reads them with the module's content. Absent when there are none, and in
    /// `modules.list`'s pages.
    public var files: [FileMetadata]?

    public init(
        id: String, title: String, description: String, content: String, tags: [String], createdAt: Date, updatedAt: Date,
        files: [FileMetadata]? = nil
    ) {
        self.id = id
        self.title = title
        self.description = description
        self.content = content
        self.tags = tags
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.files = files
    }
}
