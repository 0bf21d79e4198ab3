import RPC

extension RPCError.Code {
    /// A reply that would pass `limits.reply_budget_bytes` (docs/ERRORS.md).
    public static let replyTooLarge = RPCError.Code(-32006)
}

/// A single item (or an export) whose reply would pass the reply budget: `-32006` with
/// `{setting, limit, actual}` in bytes (`actual` is an estimate, never below the real size by
/// more than the envelope).
public struct ReplyBudgetError: Error, Equatable, Sendable, RPCErrorConvertible {
    public var limit: Int
    public var actual: Int

    public init(limit: Int, actual: Int) {
        self.limit = limit
        self.actual = actual
    }

    public var rpcError: RPCError {
        .limit(.replyTooLarge, "Reply too large", setting: ReplyBudget.setting, limit: limit, actual: actual)
    }
}
