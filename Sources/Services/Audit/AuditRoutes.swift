import RPC

/// Registers the `audit.*` methods: one line each into `AuditService`, for a signed-in user.
public struct AuditRoutes: Sendable {
    let service: AuditService
    let auth: AuthService

    public init(service: AuditService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let audit = self.service
        router.onAuthenticated(Audit.List.self, in: .until("1"), using: auth) { params, context in
            try await audit.list(params, userID: context.user.id)
        }
        router.onAuthenticated(Audit.ListV2.self, in: .from("2"), using: auth) { params, context in
            try await audit.listWithCounts(params, userID: context.user.id)
        }
    }
}
