import RPC

/// Registers the `prompts.*` methods: one line each into `PromptsService`, all for a signed-in user.
public struct PromptsRoutes: Sendable {
    let service: PromptsService
    let auth: AuthService

    public init(service: PromptsService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let prompts = self.service
        router.onAuthenticated(Prompts.Create.self, using: auth) { params, context in try await prompts.create(params, userID: context.user.id) }
        router.onAuthenticated(Prompts.Get.self, using: auth) { params, context in
            try await prompts.get(id: params.id, version: params.version, userID: context.user.id)
        }
        router.onAuthenticated(Prompts.Update.self, using: auth) { params, context in try await prompts.update(params, userID: context.user.id) }
        router.onAuthenticated(Prompts.Delete.self, using: auth) { params, context in
            .init(deleted: try await prompts.delete(id: params.id, userID: context.user.id))
        }
        router.onAuthenticated(Prompts.List.self, using: auth) { params, context in try await prompts.list(params, userID: context.user.id) }
        router.onAuthenticated(Prompts.Versions.self, using: auth) { params, context in
            try await prompts.versions(id: params.id, userID: context.user.id)
        }
        router.onAuthenticated(Prompts.Render.self, using: auth) { params, context in try await prompts.render(params, userID: context.user.id) }
    }
}
