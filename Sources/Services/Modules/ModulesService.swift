import Foundation

/// The caller's modules: create, read, change, delete and list them a page at a time. Every call
/// is scoped to one user id; another user's module answers exactly like a missing one.
public struct ModulesService: Sendable {
    public static let maxTitleLength = 200
    public static let maxContentBytes = 1 << 20
    /// Every module is in `modules.list`'s pages and the agent's system prompt: a description is a
    /// summary, not a second content.
    public static let maxDescriptionBytes = 4 << 10
    public static let maxTags = 32
    public static let maxTagLength = 64
    public static let defaultLimit = 50
    public static let maxLimit = 200

    /// What `list` answers.
    public typealias Page = KeysetPage<Module>

    private let store: any ModuleStore
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let replyBudget: ReplyBudget

    /// - Parameter replyBudget: the most bytes a reply may hold: pages stop early, a larger module
    ///   is refused.
    public init(store: any ModuleStore, clock: any WallClock, ids: any IDGenerator, replyBudget: ReplyBudget = ReplyBudget()) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.replyBudget = replyBudget
    }

    /// - Throws: `ModulesError.invalid`.
    public func create(_ params: Modules.Create.Params, userID: String) async throws -> Module {
        let title = try ModulesError.validTitle(params.title, maxLength: Self.maxTitleLength)
        let content = params.content ?? ""
        try Self.validate(content: content)
        if let description = params.description { try Self.validate(description: description) }
        let tags = try Self.validate(tags: params.tags ?? [])
        let now = clock.now()
        let module = Module(
            id: ids.makeID(prefix: "mod_"), title: title, description: params.description ?? "", content: content,
            tags: tags, createdAt: now, updatedAt: now)
        _ = try await store.insert(module, userID: userID, event: ModulesEvents.ModuleCreated(userID: userID, module: module))
        return module
    }

    /// `modules.get`.
    ///
    /// - Throws: `ModulesError.notFound`, `ReplyBudgetError`.
    public func get(id: String, userID: String) async throws -> Module {
        try replyBudget.check(try await module(id: id, userID: userID))
    }

    /// The module, whatever its size (the agent's read: it goes into a request, not a reply).
    ///
    /// - Throws: `ModulesError.notFound`.
    public func module(id: String, userID: String) async throws -> Module {
        guard let module = try await store.module(id: id, userID: userID) else { throw ModulesError.notFound(id: id) }
        return module
    }

    /// Changes the given fields; absent ones stay as they are.
    ///
    /// - Throws: `ModulesError.invalid`, `.notFound`.
    public func update(_ params: Modules.Update.Params, userID: String) async throws -> Module {
        let title = try params.title.map { try ModulesError.validTitle($0, maxLength: Self.maxTitleLength) }
        if let content = params.content { try Self.validate(content: content) }
        if let description = params.description { try Self.validate(description: description) }
        let tags = try params.tags.map(Self.validate(tags:))
        let changes = ModuleChanges(title: title, description: params.description, content: params.content, tags: tags, updatedAt: clock.now())
        let event = ModulesEvents.ModuleUpdated(userID: userID, moduleId: params.id, fields: changes.fieldNames)
        guard let module = try await store.update(id: params.id, userID: userID, changes: changes, event: event) else {
            throw ModulesError.notFound(id: params.id)
        }
        return module
    }

    /// - Throws: `ModulesError.notFound`.
    public func delete(id: String, userID: String) async throws -> Bool {
        guard try await store.delete(id: id, userID: userID, event: ModulesEvents.ModuleDeleted(userID: userID, moduleId: id)) else {
            throw ModulesError.notFound(id: id)
        }
        return true
    }

    /// Newest first. The cursor is keyset-based (the last row's `seq`), so pages stay correct
    /// while modules are added.
    ///
    /// - Throws: `ModulesError.invalid` (`limit`, `cursor`), `ReplyBudgetError`.
    public func list(_ params: Modules.List.Params, userID: String) async throws -> Page {
        let limit = try ModulesError.validLimit(params.limit, default: Self.defaultLimit, max: Self.maxLimit)
        let before = try params.cursor.map { try ModulesError.position(cursor: $0, from: Modules.List.name) }
        let rows = try await store.list(ModuleQuery(userID: userID, beforeSeq: before, limit: limit + 1, tag: params.tag, text: params.query))
        return try Page(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.module)
    }

    // MARK: Files

    /// `modules.files.add`: idempotent (a file already there changes nothing, no event).
    ///
    /// - Throws: `ModulesError.notFound`; `FilesError.notFound(kind: "file")`, `.tooLarge` (`fileId`,
    ///   past `Attachments.maxPerModule`).
    public func addFile(_ params: Modules.Files.FileParams, userID: String) async throws -> Module {
        let event = ModulesEvents.ModuleUpdated(userID: userID, moduleId: params.moduleId, fields: ["files"])
        guard
            let module = try await store.addFile(
                moduleID: params.moduleId, fileID: params.fileId, userID: userID, maxFiles: Attachments.maxPerModule, updatedAt: clock.now(),
                event: event)
        else { throw ModulesError.notFound(id: params.moduleId) }
        return try replyBudget.check(module)
    }

    /// `modules.files.remove`.
    ///
    /// - Throws: `ModulesError.notFound`; `FilesError.notFound(kind: "file")` when the file is not in the module.
    public func removeFile(_ params: Modules.Files.FileParams, userID: String) async throws -> Module {
        let event = ModulesEvents.ModuleUpdated(userID: userID, moduleId: params.moduleId, fields: ["files"])
        guard
            let module = try await store.removeFile(
                moduleID: params.moduleId, fileID: params.fileId, userID: userID, updatedAt: clock.now(), event: event)
        else { throw ModulesError.notFound(id: params.moduleId) }
        return try replyBudget.check(module)
    }

    // MARK: Validation

    static func validate(content: String) throws {
        guard content.utf8.count <= maxContentBytes else {
            throw ModulesError.invalid(field: "content", reason: "at most \(maxContentBytes) bytes of UTF-8")
        }
    }

    static func validate(description: String) throws {
        let bytes = description.utf8.count
        guard bytes <= maxDescriptionBytes else {
            throw ModulesError.tooLong(
                field: "description", reason: "at most \(maxDescriptionBytes) bytes of UTF-8", limit: maxDescriptionBytes, actual: bytes)
        }
    }

    /// The tags unique and sorted.
    static func validate(tags: [String]) throws -> [String] {
        guard tags.count <= maxTags else { throw ModulesError.invalid(field: "tags", reason: "at most \(maxTags) tags") }
        for (index, tag) in tags.enumerated() {
            if tag.isEmpty || tag.count > maxTagLength {
                throw ModulesError.invalid(field: "tags[\(index)]", reason: "1 to \(maxTagLength) characters")
            }
            // The store joins a module's tags with U+001F; no tag needs a control character.
            if tag.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw ModulesError.invalid(field: "tags[\(index)]", reason: "no control characters")
            }
        }
        return Array(Set(tags)).sorted()
    }
}
