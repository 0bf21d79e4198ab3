import Foundation

/// What `EventStore.events` selects: one user's events after a seq.
public struct EventQuery: Sendable, Equatable {
    public var userID: String
    public var afterSeq: Int64
    public var limit: Int

    public init(userID: String, afterSeq: Int64, limit: Int) {
        self.userID = userID
        self.afterSeq = afterSeq
        self.limit = limit
    }
}

/// What `EventStore.prune` removed.
public struct PruneResult: Sendable, Equatable {
    public var deleted: Int
    /// Every event up to this seq is gone now.
    public var prunedThrough: Int64

    public init(deleted: Int, prunedThrough: Int64) {
        self.deleted = deleted
        self.prunedThrough = prunedThrough
    }
}

/// The stored events (the outbox table): read back for replays, catch-up and in-process consumers,
/// and pruned. Events are written by the stores of the domains, in their transactions
/// (`EventOutbox` in Storage), never through this protocol. `SQLiteEventStore` implements it.
public protocol EventStore: Sendable {
    /// The user's events after `afterSeq`, oldest first, at most `limit`.
    func events(_ query: EventQuery) async throws -> [Event]
    /// Every user's events of these topics after `afterSeq`, oldest first, at most `limit`: what an
    /// in-process consumer reads.
    func events(topics: [String], afterSeq: Int64, limit: Int) async throws -> [Event]
    /// The newest seq committed (0 when there is none).
    func latestSeq() async throws -> Int64
    /// Events up to this seq have been pruned (0 when none has).
    func prunedThrough() async throws -> Int64

    /// Where a consumer stopped (0 when it never ran).
    func consumerPosition(name: String) async throws -> Int64
    func setConsumerPosition(name: String, seq: Int64) async throws

    /// Deletes events older than `cutoff` and all but the newest `keepLast`, but none after `keepAfter`
    /// (what in-process consumers have not handled yet).
    func prune(before cutoff: Date, keepLast: Int, keepAfter: Int64) async throws -> PruneResult
}
