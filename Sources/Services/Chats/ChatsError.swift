import RPC

/// The chats domain's errors, and how they appear on the wire.
public enum ChatsError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such chat, message or module for this user (another user's answers the same); `kind`
    /// says which.
    case notFound(kind: String, id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let kind, let id):
            RPCError(.notFound, "Not found", data: ["kind": kind, "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        }
    }

    static let notFoundDescription = RPCErrorDescription(
        .notFound, "Not found",
        data:
            "{kind: \"chat\" | \"message\" | \"module\" | \"file\", id}: no such chat, message, module or file (an attachment) for the caller (also another user's)"
    )
}
