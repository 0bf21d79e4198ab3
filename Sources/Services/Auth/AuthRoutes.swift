import RPC

/// Registers the `auth.*` methods: one line each into `AuthService`.
public struct AuthRoutes: Sendable {
    let service: AuthService

    public init(service: AuthService) {
        self.service = service
    }

    public func register(on router: inout RPCRouter) {
        let auth = self.service
        router.on(Auth.Register.self) { params, _ in try await auth.register(username: params.username, password: params.password) }
        router.on(Auth.Login.self) { params, context in try await auth.login(params, on: context.connection) }
        router.on(Auth.Authenticate.self) { params, context in try await auth.authenticate(token: params.token, on: context.connection) }
        router.onAuthenticated(Auth.Logout.self, using: auth) { _, context in try await auth.logout(context) }
        router.onAuthenticated(Auth.WhoAmI.self, in: .until("1"), using: auth) { _, context in context.user }
        router.onAuthenticated(Auth.WhoAmIV2.self, in: .from("2"), using: auth) { _, context in try await auth.whoami(context.user) }
        router.onAuthenticated(Auth.ChangePassword.self, using: auth) { params, context in
            .init(revokedSessions: try await auth.changePassword(context.principal, oldPassword: params.oldPassword, newPassword: params.newPassword))
        }
    }
}
