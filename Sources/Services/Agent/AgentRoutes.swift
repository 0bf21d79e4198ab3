import RPC

/// Registers the `agent.*` methods (API version 2 only): one line each into `AgentService`, all for a
/// signed-in user. The deltas of a run go to the connection that called it.
public struct AgentRoutes: Sendable {
    let service: AgentService
    let auth: AuthService

    public init(service: AgentService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let agent = self.service
        router.onAuthenticated(Agent.Act.self, in: .from("2"), using: auth) { params, context in
            try await agent.act(params, user: context.user) { [connection = context.request.connection] in connection.notify(Agent.Delta.self, $0) }
        }
        router.onAuthenticated(Agent.Regenerate.self, in: .from("2"), using: auth) { params, context in
            try await agent.regenerate(params, user: context.user) { [connection = context.request.connection] in connection.notify(Agent.Delta.self, $0) }
        }
        router.onAuthenticated(Agent.Cancel.self, in: .from("2"), using: auth) { params, context in try await agent.cancel(runID: params.runId, userID: context.user.id) }
        router.onAuthenticated(Agent.Runs.List.self, in: .from("2"), using: auth) { params, context in try await agent.runs(params, userID: context.user.id) }
        router.onAuthenticated(Agent.Runs.Get.self, in: .from("2"), using: auth) { params, context in try await agent.run(id: params.runId, userID: context.user.id) }
        router.describe(Agent.Delta.self, in: .from("2"))
    }
}
