/// The caller's audit log, a page at a time.
public struct AuditService: Sendable {
    public static let defaultLimit = 50
    public static let maxLimit = 200

    private let store: any AuditStore
    private let replyBudget: ReplyBudget

    /// - Parameter replyBudget: the most bytes a reply may hold: pages stop early.
    public init(store: any AuditStore, replyBudget: ReplyBudget = ReplyBudget()) {
        self.store = store
        self.replyBudget = replyBudget
    }

    /// Newest first; the cursor is the last entry's id.
    ///
    /// - Throws: `EventsError.invalid` (`limit`, `cursor`), `ReplyBudgetError`.
    public func list(_ params: Audit.List.Params, userID: String) async throws -> KeysetPage<AuditRecord> {
        let limit = params.limit ?? Self.defaultLimit
        guard (1...Self.maxLimit).contains(limit) else { throw EventsError.invalid(field: "limit", reason: "between 1 and \(Self.maxLimit)") }
        let before = try params.cursor.map { cursor in
            guard let seq = PageCursor.decode(cursor) else { throw EventsError.invalid(field: "cursor", reason: "not a cursor from audit.list") }
            return seq
        }
        let rows = try await store.records(userID: userID, beforeID: before, limit: limit + 1)
        return try KeysetPage(rows: rows, limit: limit, budget: replyBudget, position: \.id, item: { $0 })
    }
}
