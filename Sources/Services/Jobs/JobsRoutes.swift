import RPC

/// Registers the `jobs.*` methods (in every API version: they were added, no contract changed):
/// one line each into `JobsService`, all for a signed-in user.
public struct JobsRoutes: Sendable {
    let service: JobsService
    let auth: AuthService

    public init(service: JobsService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let jobs = self.service
        router.onAuthenticated(Jobs.List.self, using: auth) { params, context in try await jobs.list(params, userID: context.user.id) }
        router.onAuthenticated(Jobs.Get.self, using: auth) { params, context in try await jobs.job(id: params.id, userID: context.user.id) }
        router.onAuthenticated(Jobs.Cancel.self, using: auth) { params, context in try await jobs.cancel(id: params.id, userID: context.user.id) }
        router.onAuthenticated(Jobs.Retry.self, using: auth) { params, context in try await jobs.retry(id: params.id, userID: context.user.id) }
    }
}
