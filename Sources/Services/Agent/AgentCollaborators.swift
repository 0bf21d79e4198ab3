/// What the agent reads from the prompts domain: a prompt by id or by name, and its rendering.
/// `PromptsService` is one.
public protocol AgentPromptSource: Sendable {
    /// The prompt whatever its size (it goes into a request, not a reply).
    ///
    /// - Throws: `PromptsError.notFound`.
    func prompt(id: String, version: Int?, userID: String) async throws -> Prompt
    func prompt(named name: String, userID: String) async throws -> Prompt?
    /// - Throws: `PromptsError.invalid` (`variables.NAME` missing, text too long).
    func render(_ prompt: Prompt, variables: [String: String]) throws -> PromptsService.Rendered
}

extension PromptsService: AgentPromptSource {}

/// What the agent reads from the modules domain. `ModulesService` is one.
public protocol AgentModuleSource: Sendable {
    /// The module whatever its size (it goes into a request, not a reply).
    ///
    /// - Throws: `ModulesError.notFound`.
    func module(id: String, userID: String) async throws -> Module
}

extension ModulesService: AgentModuleSource {}
