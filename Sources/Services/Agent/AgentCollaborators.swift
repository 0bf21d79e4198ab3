/// What the agent reads from the prompts domain: a prompt by id or by name, and its rendering.
/// `PromptsService` is one.
public protocol AgentPromptSource: Sendable {
    /// - Throws: `PromptsError.notFound`.
    func get(id: String, version: Int?, userID: String) async throws -> Prompt
    func prompt(named name: String, userID: String) async throws -> Prompt?
    /// - Throws: `PromptsError.invalid` (`variables.NAME` missing, text too long).
    func render(_ prompt: Prompt, variables: [String: String]) throws -> PromptsService.Rendered
}

extension PromptsService: AgentPromptSource {}

/// What the agent reads from the modules domain. `ModulesService` is one.
public protocol AgentModuleSource: Sendable {
    /// - Throws: `ModulesError.notFound`.
    func get(id: String, userID: String) async throws -> Module
}

extension ModulesService: AgentModuleSource {}
