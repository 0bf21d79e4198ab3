import RPC

/// The jobs domain's errors, and how they appear on the wire.
public enum JobsError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// No such job for this owner (another user's answers the same).
    case notFound(id: String)
    /// A param fails validation: `-32602` with `{field, reason}`.
    case invalid(field: String, reason: String)
    /// `jobs.retry` of a job that is not failed or cancelled: `-32602` naming its state.
    case invalidState(id: String, state: JobState)
    /// The worker's lease on the job is gone (it expired and another worker claimed the job, or
    /// the job ended): the worker stores nothing more. Never reaches a client.
    case leaseLost(JobLease)

    public var rpcError: RPCError {
        switch self {
        case .notFound(let id):
            RPCError(.notFound, "Not found", data: ["kind": "job", "id": id])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .invalidState(_, let state):
            RPCError.invalidParams(field: "id", reason: "the job is \(state.rawValue); only a failed or cancelled job can be retried")
        case .leaseLost:
            RPCError(.internalError, "Internal error")
        }
    }

    static let notFoundDescription = RPCErrorDescription(.notFound, "Not found", data: "{kind: \"job\", id}: not the caller's (also another user's)")
}
