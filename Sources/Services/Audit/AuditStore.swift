import Foundation

/// Where the audit log lives. `SQLiteAuditStore` in Storage implements it.
public protocol AuditStore: Sendable {
    /// Records `event` for its user; recording the same event again changes nothing (delivery to
    /// consumers is at least once).
    func record(_ event: Event) async throws
    /// Records a security-relevant call; a call with the `coalesceKey` of an entry already there
    /// adds one to that entry's count instead.
    func record(call: AuditedCall) async throws
    /// Deletes the entries that occurred before `before`, and all but the newest `keepLast`.
    /// Returns how many were deleted.
    func prune(before: Date, keepLast: Int) async throws -> Int
    /// The user's entries, newest first, with an id below `beforeID` (nil: from the newest), at
    /// most `limit`.
    func records(userID: String, beforeID: Int64?, limit: Int) async throws -> [AuditRecord]
}
