import RPC

extension RPCError.Code {
    /// The connection has as many `agent.runs.watch` going as it may.
    public static let tooManyWatches = RPCError.Code(-32042)
}

/// The agent domain's own errors (the provider's are `LLMError`), and how they appear on the wire.
public enum AgentError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such run for this user (another user's answers the same).
    case notFound(kind: String, id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// The run was cancelled (`agent.cancel`, or the call's own cancellation): `-32800` with
    /// `{runId, messageId?}` (the partial answer stored, when anything arrived).
    case cancelled(runId: String, messageId: String?)
    /// `agent.runs.watch` on a connection with `limit` watches going: `-32042` with `{setting, limit}`.
    case tooManyWatches(limit: Int)
    /// `background: true` while the user has `limit` background runs going: `-32018` (as the
    /// `agent` class's calls in progress) with `{class: "agent.background", maxConcurrent}`.
    case tooManyBackgroundRuns(limit: Int)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let kind, let id):
            RPCError(.notFound, "Not found", data: ["kind": kind, "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .cancelled(let runId, let messageId):
            RPCError(.requestCancelled, "Request cancelled", data: messageId.map { ["runId": runId, "messageId": $0] } ?? ["runId": runId])
        case .tooManyWatches(let limit):
            RPCError(
                .tooManyWatches, "Too many watches",
                data: try? JSONFragment(encoding: LimitData(setting: AgentService.watchLimitSetting, limit: limit)))
        case .tooManyBackgroundRuns(let limit):
            RPCError(
                .tooManyCallsInProgress, "Too many calls in progress",
                data: try? JSONFragment(encoding: InProgressData(class: "agent.background", maxConcurrent: limit)))
        }
    }

    private struct InProgressData: Encodable {
        var `class`: String
        var maxConcurrent: Int
    }

    private struct LimitData: Encodable {
        var setting: String
        var limit: Int
    }

    static let tooManyBackgroundRunsDescription = RPCErrorDescription(
        .tooManyCallsInProgress, "Too many calls in progress",
        data: "{class: \"agent.background\", maxConcurrent}: background: true while the caller has that many background runs going")
    static let tooManyWatchesDescription = RPCErrorDescription(.tooManyWatches, "Too many watches", data: "{setting, limit}")
    static let notFoundDescription = RPCErrorDescription(
        .notFound, "Not found",
        data:
            "{kind: \"run\" | \"chat\" | \"message\" | \"module\" | \"prompt\" | \"file\", id}: not the caller's (also another user's); file: an attachment"
    )
    static let cancelledDescription = RPCErrorDescription(
        .requestCancelled, "Request cancelled", data: "{runId, messageId?}: the run was cancelled; its partial answer is messageId")
}
