import GRDB
import Services

/// Each user's stored bytes (`user_usage`, 0012) against the storage quota, inside the write jobs
/// of the group-commit writer.
///
/// Triggers keep the count for every write but one (0012): a message's insert, which the store
/// counts itself with `add`, one UPDATE that is both the check and the count. Jobs whose writes
/// the triggers count wrap them in `refusingGrowthPastQuota`, which reads the count before and
/// after and throws when the job grew it past the quota (their savepoint then takes the whole job
/// back). The writer is single and every job runs to its end before the next, so a check sees
/// every write before it, committed or in the same batch: no two writes can both pass on the
/// same room.
public struct StorageLedger: Sendable {
    public let quota: StorageQuota

    public init(quota: StorageQuota) {
        self.quota = quota
    }

    /// Counts `bytes` more for `userID`, refusing them when they would take the user past the quota
    /// (`enforce`; false for text that is already paid for, such as the answer of a run that was
    /// allowed to start). Nothing is changed when it throws, so a job without a savepoint may call
    /// it after its checks and before its first write.
    ///
    /// - Throws: `QuotaExceededError`.
    func add(_ bytes: Int64, userID: String, enforce: Bool = true, writes: GroupCommitWriter, db: Database) throws {
        let limit = enforce ? quota.limitBytes : 0
        try writes.statement("UPDATE user_usage SET bytes = bytes + ?1 WHERE user_id = ?2 AND (?3 = 0 OR bytes + ?1 <= ?3)", in: db)
            .run([bytes, userID, limit])
        if db.changesCount == 0 {
            // Refused (or a user without a row, which 0012's trigger makes impossible).
            throw QuotaExceededError(limit: quota.limitBytes, actual: try Self.storedBytes(userID: userID, db: db) + bytes)
        }
    }

    /// Throws when `bytes` more would take `userID` past the quota, changing nothing: for a job
    /// without a savepoint that writes other rows before `add`.
    ///
    /// - Throws: `QuotaExceededError`.
    func check(adding bytes: Int64, userID: String, db: Database) throws {
        guard !quota.isUnlimited else { return }
        let actual = try Self.storedBytes(userID: userID, db: db) + bytes
        if !quota.allows(actual) { throw QuotaExceededError(limit: quota.limitBytes, actual: actual) }
    }

    /// Runs `work` (writes the triggers count) and throws when it grew the user's stored bytes past
    /// the quota. Only in a job with a savepoint, which takes `work`'s writes back when this throws.
    ///
    /// - Throws: `QuotaExceededError`, or what `work` throws.
    func refusingGrowthPastQuota<T>(userID: String, db: Database, _ work: () throws -> T) throws -> T {
        guard !quota.isUnlimited else { return try work() }
        let before = try Self.storedBytes(userID: userID, db: db)
        let result = try work()
        let after = try Self.storedBytes(userID: userID, db: db)
        if after > before, !quota.allows(after) { throw QuotaExceededError(limit: quota.limitBytes, actual: after) }
        return result
    }

    /// The user's stored bytes as counted (0 for an unknown user).
    public static func storedBytes(userID: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM user_usage WHERE user_id = ?"), arguments: [userID]) ?? 0
    }

    /// The user's stored bytes summed from the tables themselves, as 0012 computed them for existing
    /// databases: what the count must always equal (tests compare them).
    public static func recount(userID: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: """
            SELECT
                coalesce((SELECT sum(length(CAST(title AS BLOB)) + length(CAST(description AS BLOB)) + length(CAST(content AS BLOB))) FROM modules WHERE user_id = ?1), 0)
                + coalesce((SELECT sum(length(CAST(title AS BLOB))) FROM chats WHERE user_id = ?1), 0)
                + coalesce((SELECT sum(length(CAST(content AS BLOB))) FROM messages WHERE user_id = ?1), 0)
                + coalesce((SELECT sum(length(CAST(name AS BLOB)) + length(CAST(description AS BLOB))) FROM prompts WHERE user_id = ?1), 0)
                + coalesce((SELECT sum(length(CAST(v.body AS BLOB)) + length(CAST(v.variables AS BLOB))) FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id WHERE p.user_id = ?1), 0)
                + coalesce((SELECT sum(coalesce(length(CAST(nullif(steps, '[]') AS BLOB)), 0) + coalesce(length(CAST(nullif(searches, '[]') AS BLOB)), 0)
                    + coalesce(length(CAST(error_message AS BLOB)), 0)) FROM agent_runs WHERE user_id = ?1), 0)
            """, arguments: [userID]) ?? 0
    }
}
