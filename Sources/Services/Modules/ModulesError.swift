import RPC

/// The modules domain's errors, and how they appear on the wire.
public enum ModulesError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such module for this user (another user's module answers the same).
    case notFound(id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// A param over its size limit: `-32602` with `{field, reason, limit, actual}` (bytes).
    case tooLong(field: String, reason: String, limit: Int, actual: Int)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let id):
            RPCError(.notFound, "Not found", data: ["kind": "module", "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .tooLong(let field, let reason, let limit, let actual):
            RPCError.invalidParams(field: field, reason: reason, limit: limit, actual: actual)
        }
    }

    static let notFoundDescription = RPCErrorDescription(
        .notFound, "Not found", data: "{kind: \"module\", id}: no module with this id for the caller (also another user's)")
    static let moduleOrFileNotFoundDescription = RPCErrorDescription(
        .notFound, "Not found",
        data: "{kind: \"module\" | \"file\", id}: no such module or file for the caller (also another user's); for remove, a file not in the module")
}
