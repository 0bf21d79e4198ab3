import RPC

/// The modules domain's errors, and how they appear on the wire.
public enum ModulesError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// No such module for this user (another user's module answers the same).
    case notFound(id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let id):
            RPCError(.notFound, "Not found", data: ["kind": "module", "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        }
    }

    static let notFoundDescription = RPCErrorDescription(.notFound, "Not found", data: "{kind: \"module\", id}: no module with this id for the caller (also another user's)")
}
