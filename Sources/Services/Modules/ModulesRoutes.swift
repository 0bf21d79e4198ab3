import RPC

/// Registers the `modules.*` methods: one line each into `ModulesService`, all for a signed-in user.
public struct ModulesRoutes: Sendable {
    let service: ModulesService
    let auth: AuthService

    public init(service: ModulesService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let modules = self.service
        router.onAuthenticated(Modules.Create.self, using: auth) { params, context in try await modules.create(params, userID: context.user.id) }
        router.onAuthenticated(Modules.Get.self, using: auth) { params, context in try await modules.get(id: params.id, userID: context.user.id) }
        router.onAuthenticated(Modules.Update.self, using: auth) { params, context in try await modules.update(params, userID: context.user.id) }
        router.onAuthenticated(Modules.Delete.self, using: auth) { params, context in
            .init(deleted: try await modules.delete(id: params.id, userID: context.user.id))
        }
        router.onAuthenticated(Modules.List.self, using: auth) { params, context in try await modules.list(params, userID: context.user.id) }
        router.onAuthenticated(Modules.Files.Add.self, using: auth) { params, context in try await modules.addFile(params, userID: context.user.id) }
        router.onAuthenticated(Modules.Files.Remove.self, using: auth) { params, context in
            try await modules.removeFile(params, userID: context.user.id)
        }
    }
}
