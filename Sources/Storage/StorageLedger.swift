import GRDB
import Services

/// Each user's stored bytes (`user_usage`, 0012) against the storage quota, inside the write jobs
/// of the group-commit writer.
///
/// Triggers keep the count for every write but one (0012): a message's insert, which the store
/// counts itself with `add`. `add` charges the message to the writer's open batch
/// (`GroupCommitWriter.usage`), which writes one UPDATE per user before it commits, in its
/// transaction: an append's check costs a primary-key read (joined to its read of the chat), not
/// an UPDATE of its own (issue 17: with one, appends were ~10% slower). Every check reads the bytes as
/// `user_usage` has them plus what the batch has charged them so far (`usedBytes`), so it sees
/// every write before it, committed or in the same batch, charged or counted by a trigger.
///
/// Jobs whose writes the triggers count wrap them in `refusingGrowthPastQuota`, which reads the
/// count before and after and throws when the job grew it past the quota (their savepoint then
/// takes the whole job back). The writer is single and every job runs to its end before the next,
/// so no two writes can both pass on the same room.
public struct StorageLedger: Sendable {
    public let quota: StorageQuota

    public init(quota: StorageQuota) {
        self.quota = quota
    }

    /// Charges `bytes` more to `userID` in the writer's open batch, refusing them when they would
    /// take the user past the quota (`enforce`; false for text that is already paid for, such as
    /// the answer of a run that was allowed to start). It changes nothing in the database (the
    /// batch writes the charges before it commits) and a job that fails takes its charges back
    /// (`GroupCommitWriter`), so a job without a savepoint may call it after its checks and before
    /// its first write.
    ///
    /// `stored`: the user's `user_usage.bytes` when the job read them itself with its other reads,
    /// after its last write (the append reads them with its chat: one statement less on the hot
    /// path); nil: read here.
    ///
    /// - Throws: `QuotaExceededError`.
    func add(_ bytes: Int64, userID: String, enforce: Bool = true, stored: Int64? = nil, writes: GroupCommitWriter, db: Database) throws {
        if enforce, !quota.isUnlimited {
            let used = try stored.map { $0 + writes.usage.pending(userID: userID) } ?? usedBytes(userID: userID, writes: writes, db: db)
            let actual = used + bytes
            if !quota.allows(actual) { throw QuotaExceededError(limit: quota.limitBytes, actual: actual) }
        }
        writes.usage.charge(bytes, userID: userID)
    }

    /// Throws when `bytes` more would take `userID` past the quota, changing nothing: for a job
    /// without a savepoint that writes other rows before `add`.
    ///
    /// - Throws: `QuotaExceededError`.
    func check(adding bytes: Int64, userID: String, writes: GroupCommitWriter, db: Database) throws {
        guard !quota.isUnlimited else { return }
        let actual = try usedBytes(userID: userID, writes: writes, db: db) + bytes
        if !quota.allows(actual) { throw QuotaExceededError(limit: quota.limitBytes, actual: actual) }
    }

    /// Runs `work` (writes the triggers count) and throws when it grew the user's stored bytes past
    /// the quota. Only in a job with a savepoint, which takes `work`'s writes back when this throws.
    ///
    /// - Throws: `QuotaExceededError`, or what `work` throws.
    func refusingGrowthPastQuota<T>(userID: String, writes: GroupCommitWriter, db: Database, _ work: () throws -> T) throws -> T {
        guard !quota.isUnlimited else { return try work() }
        let before = try usedBytes(userID: userID, writes: writes, db: db)
        let result = try work()
        let after = try usedBytes(userID: userID, writes: writes, db: db)
        if after > before, !quota.allows(after) { throw QuotaExceededError(limit: quota.limitBytes, actual: after) }
        return result
    }

    /// The user's stored bytes inside a write job: as `user_usage` counts them, plus what the
    /// writer's open batch has charged them and not written yet.
    func usedBytes(userID: String, writes: GroupCommitWriter, db: Database) throws -> Int64 {
        let stored = try writes.statement("SELECT bytes FROM user_usage WHERE user_id = ?", in: db).firstRow([userID]) { $0.integer(0) } ?? 0
        return stored + writes.usage.pending(userID: userID)
    }

    /// The user's stored bytes as committed (0 for an unknown user); inside a write job,
    /// `usedBytes`.
    public static func storedBytes(userID: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM user_usage WHERE user_id = ?"), arguments: [userID]) ?? 0
    }

    /// The user's stored bytes summed from the tables themselves, as 0012 computed them for existing
    /// databases: what the count must always equal (tests compare them).
    public static func recount(userID: String, db: Database) throws -> Int64 {
        try Int64.fetchOne(
            db,
            sql: """
                SELECT
                    coalesce((SELECT sum(length(CAST(title AS BLOB)) + length(CAST(description AS BLOB)) + length(CAST(content AS BLOB)))
                        FROM modules WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(length(CAST(title AS BLOB))) FROM chats WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(length(CAST(content AS BLOB))) FROM messages WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(length(CAST(name AS BLOB)) + length(CAST(description AS BLOB))) FROM prompts WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(length(CAST(v.body AS BLOB)) + length(CAST(v.variables AS BLOB)))
                        FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id WHERE p.user_id = ?1), 0)
                    + coalesce((SELECT sum(coalesce(length(CAST(nullif(steps, '[]') AS BLOB)), 0)
                        + coalesce(length(CAST(nullif(searches, '[]') AS BLOB)), 0)
                        + coalesce(length(CAST(error_message AS BLOB)), 0)) FROM agent_runs WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(size) FROM files WHERE user_id = ?1), 0)
                    + coalesce((SELECT sum(size) FROM file_uploads WHERE user_id = ?1), 0)
                """, arguments: [userID]) ?? 0
    }
}
