import RPC

/// Registers the `agent.*` methods (in every API version: they were added, no contract changed): one line each into `AgentService`, all for a
/// signed-in user. The deltas of a run go to the connection that called it, and to its watchers (`agent.runs.watch`);
/// with `background: true` the call answers the run's ids at once and the run goes on as an `agent.run` job
/// (`AgentRunJob`), its deltas to its watchers only.
public struct AgentRoutes: Sendable {
    let service: AgentService
    let auth: AuthService

    public init(service: AgentService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let agent = self.service
        router.onAuthenticated(Agent.Act.self, using: auth) { params, context in
            if params.background == true { return .background(try await agent.actInBackground(params, user: context.user)) }
            return .answer(try await agent.act(params, user: context.user, onDelta: Self.deltas(to: context), timedOut: Self.timeLimit(of: context)))
        }
        router.onAuthenticated(Agent.Regenerate.self, using: auth) { params, context in
            if params.background == true { return .background(try await agent.regenerateInBackground(params, user: context.user)) }
            return .answer(
                try await agent.regenerate(params, user: context.user, onDelta: Self.deltas(to: context), timedOut: Self.timeLimit(of: context)))
        }
        router.onAuthenticated(Agent.Cancel.self, using: auth) { params, context in
            try await agent.cancel(runID: params.runId, userID: context.user.id)
        }
        router.onAuthenticated(Agent.Runs.List.self, using: auth) { params, context in try await agent.runs(params, userID: context.user.id) }
        router.onAuthenticated(Agent.Runs.Get.self, using: auth) { params, context in try await agent.run(id: params.runId, userID: context.user.id) }
        router.onAuthenticated(Agent.Runs.Watch.self, using: auth) { params, context in
            try await agent.watch(params, userID: context.user.id, request: context.request)
        }
        router.describe(Agent.Delta.self)
        router.describe(Agent.RunEnded.self)
        router.describe(Agent.WatchOverflow.self)
    }

    /// A run's deltas go to the connection that called it.
    private static func deltas(to context: AuthenticatedContext) -> @Sendable (AgentDelta) -> Void {
        { [connection = context.request.connection] in connection.notify(Agent.Delta.self, $0) }
    }

    /// The call's time limit when that is why it was cancelled (`-32001`).
    private static func timeLimit(of context: AuthenticatedContext) -> @Sendable () -> Duration? {
        { [cancellation = context.request.cancellation] in
            if case .timedOut(let limit) = cancellation.reason { return limit }
            return nil
        }
    }
}
