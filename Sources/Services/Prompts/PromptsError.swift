import RPC

/// The prompts domain's errors, and how they appear on the wire.
public enum PromptsError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such prompt for this user (another user's prompt answers the same): `-32030`, shared with
    /// the other domains, with `{kind: "prompt", id}`.
    case notFound(id: String)
    /// A param fails validation (also a missing variable, `variables.NAME`, and a change to a
    /// built-in prompt, `id`): `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let id):
            RPCError(.notFound, "Not found", data: ["kind": "prompt", "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        }
    }

    static let notFoundDescription = RPCErrorDescription(
        .notFound, "Not found", data: "{kind: \"prompt\", id}: no prompt with this id for the caller (also another user's)")
}
