import Foundation

/// The caller's audit log, a page at a time, and its retention.
public struct AuditService: Sendable {
    public struct Settings: Sendable {
        /// Entries older than this are pruned (`audit.retention_days`)…
        public var retentionAge: TimeInterval = 90 * 24 * 3600
        /// …and so are all but the newest `retentionCount` (`audit.retention_count`).
        public var retentionCount: Int = 1_000_000

        public init(retentionAge: TimeInterval = 90 * 24 * 3600, retentionCount: Int = 1_000_000) {
            self.retentionAge = retentionAge
            self.retentionCount = retentionCount
        }
    }

    public static let defaultLimit = 50
    public static let maxLimit = 200

    private let store: any AuditStore
    private let clock: any WallClock
    public let settings: Settings
    private let replyBudget: ReplyBudget

    /// - Parameter replyBudget: the most bytes a reply may hold: pages stop early.
    public init(store: any AuditStore, clock: any WallClock, settings: Settings = Settings(), replyBudget: ReplyBudget = ReplyBudget()) {
        self.store = store
        self.clock = clock
        self.settings = settings
        self.replyBudget = replyBudget
    }

    /// Newest first; the cursor is the last entry's id.
    ///
    /// - Throws: `EventsError.invalid` (`limit`, `cursor`), `ReplyBudgetError`.
    public func list(_ params: Audit.List.Params, userID: String) async throws -> KeysetPage<AuditRecord> {
        let limit = try EventsError.validLimit(params.limit, default: Self.defaultLimit, max: Self.maxLimit)
        let before = try params.cursor.map { try EventsError.position(cursor: $0, from: Audit.List.name) }
        let rows = try await store.records(userID: userID, beforeID: before, limit: limit + 1)
        return try KeysetPage(rows: rows, limit: limit, budget: replyBudget, position: \.id, item: { $0 })
    }

    /// `list` with each entry's count (version 2's `audit.list`).
    public func listWithCounts(_ params: Audit.List.Params, userID: String) async throws -> KeysetPage<AuditEntry> {
        let page = try await list(params, userID: userID)
        return KeysetPage(items: page.items.map(AuditEntry.init), nextCursor: page.nextCursor)
    }

    /// Prunes the entries past the retention age or count, as events are pruned (the daemon runs
    /// it with the events' retention). Returns how many were deleted.
    @discardableResult
    public func prune() async throws -> Int {
        try await store.prune(before: clock.now().addingTimeInterval(-settings.retentionAge), keepLast: settings.retentionCount)
    }
}
