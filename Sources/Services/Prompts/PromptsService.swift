import Foundation

/// The caller's prompts: create, read, change (each change of the body or the variables makes a new
/// version; the old ones stay readable), delete, list and render them. Every call is scoped to one
/// user id; another user's prompt answers exactly like a missing one. Built-in prompts (seeded by a
/// migration) are read and rendered by every user and changed by none.
public struct PromptsService: Sendable {
    public static let maxNameLength = 100
    public static let maxDescriptionLength = 1000
    public static let maxBodyBytes = 256 << 10
    public static let maxVariables = 64
    /// A rendered text longer than this is refused: a body full of placeholders times a long value
    /// would otherwise grow without bound. Room for the largest module's content (1 MiB) and more.
    public static let maxRenderedBytes = 4 << 20
    public static let defaultLimit = 50
    public static let maxLimit = 200
    /// The name of the agent's system prompt (a built-in, unless the user has their own).
    public static let defaultSystemPromptName = "default.system"

    /// What `list` answers.
    public typealias Page = KeysetPage<Prompt>

    /// What `versions` answers: every version of one prompt, oldest first.
    public struct VersionList: Codable, Sendable, Equatable {
        public var id: String
        public var versions: [PromptVersionSummary]

        public init(id: String, versions: [PromptVersionSummary]) {
            self.id = id
            self.versions = versions
        }
    }

    /// What `render` answers.
    public struct Rendered: Codable, Sendable, Equatable {
        public var id: String
        /// The version that was rendered.
        public var version: Int
        public var text: String
        /// The given variables the body does not use, sorted: they were ignored.
        public var unused: [String]

        public init(id: String, version: Int, text: String, unused: [String]) {
            self.id = id
            self.version = version
            self.text = text
            self.unused = unused
        }
    }

    private let store: any PromptStore
    private let clock: any WallClock
    private let ids: any IDGenerator
    private let replyBudget: ReplyBudget

    /// - Parameter replyBudget: the most bytes a reply may hold: pages stop early, a larger prompt,
    ///   version list or rendering is refused.
    public init(store: any PromptStore, clock: any WallClock, ids: any IDGenerator, replyBudget: ReplyBudget = ReplyBudget()) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.replyBudget = replyBudget
    }

    /// - Throws: `PromptsError.invalid`.
    public func create(_ params: Prompts.Create.Params, userID: String) async throws -> Prompt {
        let name = try PromptsError.validTitle(params.name, field: "name", maxLength: Self.maxNameLength)
        let description = try Self.validate(description: params.description ?? "")
        let template = try Self.template(body: params.body)
        let content = try Self.content(body: params.body, template: template, variables: params.variables)
        let now = clock.now()
        let prompt = Prompt(
            id: ids.makeID(prefix: "prm_"), name: name, description: description, version: 1, latestVersion: 1,
            body: content.body, variables: content.variables, builtIn: false, createdAt: now, updatedAt: now, versionCreatedAt: now)
        do {
            _ = try await store.insert(prompt, userID: userID, event: PromptsEvents.PromptCreated(userID: userID, prompt: prompt))
        } catch PromptStoreError.nameTaken {
            throw Self.nameTaken(name)
        }
        return prompt
    }

    /// `prompts.get`: the prompt at `version`, or at its latest version.
    ///
    /// - Throws: `PromptsError.notFound`, `.invalid` (`version`), `ReplyBudgetError`.
    public func get(id: String, version: Int? = nil, userID: String) async throws -> Prompt {
        try replyBudget.check(try await prompt(id: id, version: version, userID: userID))
    }

    /// The prompt at `version`, or at its latest version, whatever its size (the agent's read: it
    /// goes into a request, not a reply).
    ///
    /// - Throws: `PromptsError.notFound`, `.invalid` (`version`).
    public func prompt(id: String, version: Int?, userID: String) async throws -> Prompt {
        if let version, version < 1 { throw PromptsError.invalid(field: "version", reason: "at least 1") }
        if let prompt = try await store.prompt(id: id, version: version, userID: userID) { return prompt }
        guard version != nil, let latest = try await store.prompt(id: id, version: nil, userID: userID) else {
            throw PromptsError.notFound(id: id)
        }
        throw PromptsError.invalid(field: "version", reason: "this prompt has versions 1 to \(latest.latestVersion)")
    }

    /// The user's prompt named `name` (without case), else the built-in one of that name, at its
    /// latest version; nil when neither exists. The agent finds its system prompt this way
    /// (`defaultSystemPromptName`), so a user overrides a built-in by creating a prompt of its name.
    public func prompt(named name: String, userID: String) async throws -> Prompt? {
        try await store.prompt(named: name, userID: userID)
    }

    /// Changes the given fields; absent ones stay as they are. A body or variables that differ from
    /// the latest version's make the next version; variables absent are derived from the body.
    ///
    /// - Throws: `PromptsError.invalid` (also `id` for a built-in prompt), `.notFound`.
    public func update(_ params: Prompts.Update.Params, userID: String) async throws -> Prompt {
        let name = try params.name.map { try PromptsError.validTitle($0, field: "name", maxLength: Self.maxNameLength) }
        let description = try params.description.map(Self.validate(description:))
        let template = try params.body.map(Self.template(body:))
        if let variables = params.variables { try Self.validate(variables: variables) }
        let now = clock.now()
        let edit: @Sendable (Prompt) throws -> PromptChanges = { current in
            var content: PromptContent?
            if params.body != nil || params.variables != nil {
                // Only the variables given: they must fit the latest body, read in this transaction.
                let body = params.body ?? current.body
                let new = try Self.content(body: body, template: template ?? Self.template(body: body), variables: params.variables)
                if new != PromptContent(body: current.body, variables: current.variables) { content = new }
            }
            return PromptChanges(name: name, description: description, content: content, updatedAt: now)
        }
        let updated: Prompt?
        do {
            updated = try await store.update(
                id: params.id, userID: userID, edit: edit, event: { PromptsEvents.PromptUpdated(userID: userID, prompt: $0) })
        } catch PromptStoreError.nameTaken {
            throw Self.nameTaken(name ?? "")
        }
        guard let prompt = updated else { throw try await refusal(id: params.id, userID: userID) }
        return prompt
    }

    /// Deletes the prompt with all its versions.
    ///
    /// - Throws: `PromptsError.notFound`, `.invalid` (`id`, a built-in prompt).
    public func delete(id: String, userID: String) async throws -> Bool {
        guard try await store.delete(id: id, userID: userID, event: PromptsEvents.PromptDeleted(userID: userID, promptId: id)) else {
            throw try await refusal(id: id, userID: userID)
        }
        return true
    }

    /// The user's prompts and the built-ins, newest first (a built-in sits where the migration that
    /// shipped it put it: after the prompts created since). The cursor is keyset-based (the last
    /// row's `seq`), so pages stay correct while prompts are added.
    ///
    /// - Throws: `PromptsError.invalid` (`limit`, `cursor`).
    public func list(_ params: Prompts.List.Params, userID: String) async throws -> Page {
        let limit = try PromptsError.validLimit(params.limit, default: Self.defaultLimit, max: Self.maxLimit)
        let before = try params.cursor.map { try PromptsError.position(cursor: $0, from: Prompts.List.name) }
        let rows = try await store.list(PromptQuery(userID: userID, beforeSeq: before, limit: limit + 1))
        return try Page(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.prompt)
    }

    /// - Throws: `PromptsError.notFound`, `ReplyBudgetError` (the list is not paged).
    public func versions(id: String, userID: String) async throws -> VersionList {
        guard let versions = try await store.versions(id: id, userID: userID) else { throw PromptsError.notFound(id: id) }
        return try replyBudget.check(VersionList(id: id, versions: versions))
    }

    /// Renders the prompt at `params.version` (or its latest) with `params.variables`.
    ///
    /// - Throws: `PromptsError.notFound`, `.invalid` (`variables.NAME` for a missing value,
    ///   `variables` when the text would be too long, `version`).
    public func render(_ params: Prompts.Render.Params, userID: String) async throws -> Rendered {
        let prompt = try await prompt(id: params.id, version: params.version, userID: userID)
        return try replyBudget.check(try render(prompt, variables: params.variables ?? [:]))
    }

    /// Renders a prompt already read (the agent's path: `prompt(named:userID:)`, then this). Values
    /// are inserted as given, never expanded again; values the body does not use are ignored.
    ///
    /// - Throws: `PromptsError.invalid`: `variables.NAME` with reason `missing` for the first
    ///   placeholder (in the body's order) without a value; `variables` when the text would be over
    ///   `maxRenderedBytes`.
    public func render(_ prompt: Prompt, variables: [String: String]) throws -> Rendered {
        let template = try Self.template(body: prompt.body)
        do throws(PromptTemplate.RenderError) {
            let text = try template.render(variables, maxBytes: Self.maxRenderedBytes)
            return Rendered(id: prompt.id, version: prompt.version, text: text, unused: template.unusedNames(in: variables))
        } catch {
            switch error {
            case .missing(let name):
                throw PromptsError.invalid(field: "variables.\(name)", reason: "missing")
            case .tooLarge(let limit):
                throw PromptsError.invalid(field: "variables", reason: "the rendered text would be over \(limit) bytes")
            }
        }
    }

    /// Why a write found nothing: the prompt is a built-in (read-only), or there is no such prompt
    /// for the user.
    private func refusal(id: String, userID: String) async throws -> PromptsError {
        if let prompt = try await store.prompt(id: id, version: nil, userID: userID), prompt.builtIn {
            return .invalid(
                field: "id", reason: "built-in prompts are read-only: create your own prompt named \"\(prompt.name)\" to use instead")
        }
        return .notFound(id: id)
    }

    private static func nameTaken(_ name: String) -> PromptsError {
        .invalid(field: "name", reason: "you already have a prompt named \"\(name)\"")
    }

    // MARK: Validation

    static func validate(description: String) throws -> String {
        guard description.count <= maxDescriptionLength else {
            throw PromptsError.invalid(field: "description", reason: "at most \(maxDescriptionLength) characters")
        }
        return description
    }

    /// The body parsed.
    static func template(body: String) throws -> PromptTemplate {
        guard !body.isEmpty else { throw PromptsError.invalid(field: "body", reason: "must not be empty") }
        guard body.utf8.count <= maxBodyBytes else {
            throw PromptsError.invalid(field: "body", reason: "at most \(maxBodyBytes) bytes of UTF-8")
        }
        do throws(PromptTemplate.ParseError) {
            return try PromptTemplate(parsing: body)
        } catch {
            throw PromptsError.invalid(field: "body", reason: error.description)
        }
    }

    /// A declared list: at most `maxVariables` names, each valid, none twice.
    static func validate(variables: [String]) throws {
        guard variables.count <= maxVariables else {
            throw PromptsError.invalid(field: "variables", reason: "at most \(maxVariables) variables")
        }
        var seen: [String: Int] = [:]
        for (index, name) in variables.enumerated() {
            guard PromptTemplate.isValidName(name) else {
                throw PromptsError.invalid(
                    field: "variables[\(index)]", reason: "not a variable name: letters, digits, _ and ., starting with a letter or _")
            }
            if let first = seen[name] {
                throw PromptsError.invalid(field: "variables[\(index)]", reason: "\"\(name)\" is already variables[\(first)]")
            }
            seen[name] = index
        }
    }

    /// A version's content: the declared variables (validated), or the body's placeholders when
    /// none are declared. Every placeholder must be declared.
    static func content(body: String, template: PromptTemplate, variables declared: [String]?) throws -> PromptContent {
        guard let declared else {
            guard template.variables.count <= maxVariables else {
                throw PromptsError.invalid(field: "body", reason: "uses \(template.variables.count) variables; at most \(maxVariables)")
            }
            return PromptContent(body: body, variables: template.variables)
        }
        try validate(variables: declared)
        let known = Set(declared)
        if let undeclared = template.variables.first(where: { !known.contains($0) }) {
            let list = declared.isEmpty ? "none" : declared.joined(separator: ", ")
            throw PromptsError.invalid(field: "body", reason: "uses {{\(undeclared)}}, which is not declared in variables (declared: \(list))")
        }
        return PromptContent(body: body, variables: declared)
    }
}
