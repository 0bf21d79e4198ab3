import Foundation

/// A module row with its position in the owner's list (`seq` grows with every insert).
public struct StoredModule: Sendable, Equatable {
    public var seq: Int64
    public var module: Module

    public init(seq: Int64, module: Module) {
        self.seq = seq
        self.module = module
    }
}

/// What `ModuleStore.list` selects.
public struct ModuleQuery: Sendable, Equatable {
    public var userID: String
    /// Only rows with `seq` below this (the keyset cursor); nil from the newest.
    public var beforeSeq: Int64?
    public var limit: Int
    /// Only modules with exactly this tag.
    public var tag: String?
    /// Only modules whose title or description contains this, without case.
    public var text: String?

    public init(userID: String, beforeSeq: Int64? = nil, limit: Int, tag: String? = nil, text: String? = nil) {
        self.userID = userID
        self.beforeSeq = beforeSeq
        self.limit = limit
        self.tag = tag
        self.text = text
    }
}

/// The fields `ModuleStore.update` changes: nil ones stay as they are.
public struct ModuleChanges: Sendable, Equatable {
    public var title: String?
    public var description: String?
    public var content: String?
    /// When given, replaces every tag.
    public var tags: [String]?
    public var updatedAt: Date

    public init(title: String? = nil, description: String? = nil, content: String? = nil, tags: [String]? = nil, updatedAt: Date) {
        self.title = title
        self.description = description
        self.content = content
        self.tags = tags
        self.updatedAt = updatedAt
    }

    /// The names of the fields given, as clients spell them.
    public var fieldNames: [String] {
        [title.map { _ in "title" }, description.map { _ in "description" }, content.map { _ in "content" }, tags.map { _ in "tags" }].compactMap {
            $0
        }
    }
}

/// Where modules live. `SQLiteModuleStore` in Storage implements it. Every call is scoped to one
/// user: another user's module is the same as a missing one. A write stores its `event` in the
/// same transaction (the outbox), only when it changes something.
public protocol ModuleStore: Sendable {
    /// Inserts a module and its tags; returns its `seq`.
    func insert(_ module: Module, userID: String, event: ModulesEvents.ModuleCreated) async throws -> Int64
    func module(id: String, userID: String) async throws -> Module?
    /// Applies `changes` in one transaction (concurrent partial updates of different fields both
    /// hold) and returns the module as it is then; nil when the user has no such module.
    func update(id: String, userID: String, changes: ModuleChanges, event: ModulesEvents.ModuleUpdated) async throws -> Module?
    /// False when the user has no such module.
    func delete(id: String, userID: String, event: ModulesEvents.ModuleDeleted) async throws -> Bool
    /// Newest first (by `seq`), at most `query.limit` rows (without their `files`).
    func list(_ query: ModuleQuery) async throws -> [StoredModule]

    /// Adds one of the user's files to the module (its `updatedAt` and `event` only when it was not
    /// there yet) and returns the module; nil when the user has no such module.
    ///
    /// - Throws: `FilesError.notFound(kind: "file")` for a file that is not the user's,
    ///   `FilesError.tooLarge` (`fileId`) when the module has `maxFiles` files already.
    func addFile(moduleID: String, fileID: String, userID: String, maxFiles: Int, updatedAt: Date, event: ModulesEvents.ModuleUpdated)
        async throws -> Module?
    /// Takes a file out of the module (the file stays) and returns the module; nil when the user
    /// has no such module.
    ///
    /// - Throws: `FilesError.notFound(kind: "file")` when the file is not in the module.
    func removeFile(moduleID: String, fileID: String, userID: String, updatedAt: Date, event: ModulesEvents.ModuleUpdated) async throws -> Module?
}
