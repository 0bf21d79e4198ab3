import RPC

/// The search domain's errors, and how they appear on the wire.
public enum SearchError: Error, Equatable, Sendable, RPCErrorConvertible {
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)

    public var rpcError: RPCError {
        switch self {
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        }
    }
}
