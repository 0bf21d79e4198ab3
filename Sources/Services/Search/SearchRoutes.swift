import RPC

/// Registers the `search.*` methods: one line each into `SearchService`, for a signed-in user.
public struct SearchRoutes: Sendable {
    let service: SearchService
    let auth: AuthService

    public init(service: SearchService, auth: AuthService) {
        self.service = service
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let search = self.service
        router.onAuthenticated(Search.QueryV1.self, in: .until("1"), using: auth) { params, context in
            try await search.queryV1(params, userID: context.user.id)
        }
        router.onAuthenticated(Search.Query.self, in: .from("2"), using: auth) { params, context in
            try await search.query(params, userID: context.user.id)
        }
    }
}
