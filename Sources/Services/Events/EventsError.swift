import RPC

extension RPCError.Code {
    /// `since` is before the oldest stored event (pruned by retention).
    public static let eventsExpired = RPCError.Code(-32040)
    /// The connection has as many subscriptions as `events.max_subscriptions_per_connection`.
    public static let tooManySubscriptions = RPCError.Code(-32041)
}

/// The events domain's errors, and how they appear on the wire.
public enum EventsError: Error, Equatable, Sendable, RPCErrorConvertible, InvalidParamsError {
    /// Events after `since` up to `prunedThrough` are gone: the client must reload its state and
    /// subscribe without `since` (or from `prunedThrough`).
    case expired(since: Int64, prunedThrough: Int64)
    case tooManySubscriptions(limit: Int)
    /// No such subscription on this connection.
    case notFound(subscription: String)
    case invalid(field: String, reason: String)
    /// `field` holds more (patterns, bytes) than `limit`: `-32602` with the limit and the count.
    case overLimit(field: String, reason: String, limit: Int, actual: Int)

    public var rpcError: RPCError {
        switch self {
        case .expired(let since, let prunedThrough):
            RPCError(.eventsExpired, "Events expired", data: try? JSONFragment(encoding: ["since": since, "prunedThrough": prunedThrough]))
        case .tooManySubscriptions(let limit):
            RPCError(
                .tooManySubscriptions, "Too many subscriptions",
                data: try? JSONFragment(encoding: LimitData(setting: "events.max_subscriptions_per_connection", limit: limit)))
        case .notFound(let subscription):
            RPCError(.notFound, "Not found", data: ["kind": "subscription", "id": subscription])
        case .invalid(let field, let reason):
            RPCError.invalidParams(field: field, reason: reason)
        case .overLimit(let field, let reason, let limit, let actual):
            RPCError.invalidParams(field: field, reason: reason, limit: limit, actual: actual)
        }
    }

    private struct LimitData: Encodable {
        var setting: String
        var limit: Int
    }

    static let expiredDescription = RPCErrorDescription(
        .eventsExpired, "Events expired",
        data: "{since, prunedThrough}: the events after since were pruned; reload, then subscribe from prunedThrough or without since")
    static let tooManySubscriptionsDescription = RPCErrorDescription(.tooManySubscriptions, "Too many subscriptions", data: "{setting, limit}")
    static let notFoundDescription = RPCErrorDescription(
        .notFound, "Not found", data: "{kind: \"subscription\", id}: no such subscription on this connection")
}
