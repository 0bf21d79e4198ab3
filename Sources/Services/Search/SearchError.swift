import RPC

/// The search domain's errors, and how they appear on the wire.
public enum SearchError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// A param over a fixed limit: `-32602` with `{field, reason, limit, actual}`.
    case overLimit(field: String, reason: String, limit: Int, actual: Int)

    public var rpcError: RPCError {
        switch self {
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .overLimit(let field, let reason, let limit, let actual):
            RPCError.invalidParams(field: field, reason: reason, limit: limit, actual: actual)
        }
    }
}
