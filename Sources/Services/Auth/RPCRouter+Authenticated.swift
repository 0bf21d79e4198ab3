import RPC

extension RPCRouter {
    /// Registers a method that needs a user: the handler gets an `AuthenticatedContext`, and a
    /// call without a principal is answered with `-32020 Unauthorized` before the handler runs.
    public mutating func onAuthenticated<M: RPCMethod>(
        _ method: M.Type, in range: RPCVersionRange = .all, deprecated: String? = nil, using auth: AuthService,
        _ handler: @escaping @Sendable (M.Params, AuthenticatedContext) async throws -> M.Result
    ) {
        on(M.self, in: range, deprecated: deprecated) { params, context in
            try await handler(params, try await AuthenticatedContext(context, auth: auth))
        }
    }
}
