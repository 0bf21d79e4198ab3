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

/// Where modules live. `SQLiteModuleStore` in Storage implements it. Every call is scoped to one
/// user: another user's module is the same as a missing one.
public protocol ModuleStore: Sendable {
    /// Inserts a module and its tags; returns its `seq`.
    func insert(_ module: Module, userID: String) async throws -> Int64
    func module(id: String, userID: String) async throws -> Module?
    /// Replaces the module's fields and tags; false when the user has no such module.
    func update(_ module: Module, userID: String) async throws -> Bool
    /// False when the user has no such module.
    func delete(id: String, userID: String) async throws -> Bool
    /// Newest first (by `seq`), at most `query.limit` rows.
    func list(_ query: ModuleQuery) async throws -> [StoredModule]
}
