import GRDB
import Synchronization

/// The message bytes charged by the jobs of the group-commit writer's open batch
/// (`StorageLedger.add`), not yet in `user_usage`: the batch writes one UPDATE per user before its
/// commit (`write(in:statements:)`), in its transaction, instead of one per message.
///
/// It follows the batch's jobs as the outbox follows their events: a job that fails, or is rolled
/// back to its savepoint, takes its charges back (`rollBack(to:)`), and a batch that does not
/// commit drops them all (`discard()`). Only the writer's queue uses it; the lock is for `Sendable`.
final class BatchUsage: Sendable {
    private struct State {
        /// Every charge of the open batch, in order, so that a job's can be taken off the end.
        var charges: [(userID: String, bytes: Int64)] = []
        /// The same, summed per user.
        var totals: [String: Int64] = [:]
    }

    private let state = Mutex(State())

    /// The update that writes a user's charges.
    static let updateSQL = "UPDATE user_usage SET bytes = bytes + ? WHERE user_id = ?"

    /// How many charges the batch holds so far: a job's mark for `rollBack(to:)`.
    var mark: Int { state.withLock { $0.charges.count } }

    /// Charges `bytes` to `userID` in the open batch.
    func charge(_ bytes: Int64, userID: String) {
        state.withLock { state in
            state.charges.append((userID, bytes))
            state.totals[userID, default: 0] += bytes
        }
    }

    /// What the open batch has charged `userID` so far, and `user_usage` does not count yet.
    func pending(userID: String) -> Int64 {
        state.withLock { $0.totals[userID] ?? 0 }
    }

    /// The job that started at `mark` failed or was rolled back: its charges are gone.
    func rollBack(to mark: Int) {
        state.withLock { state in
            guard mark < state.charges.count else { return }
            for charge in state.charges[mark...] { state.totals[charge.userID, default: 0] -= charge.bytes }
            state.charges.removeSubrange(mark...)
        }
    }

    /// The batch did not commit: its charges went with its writes.
    func discard() {
        state.withLock { state in
            state.charges.removeAll(keepingCapacity: true)
            state.totals.removeAll(keepingCapacity: true)
        }
    }

    /// Writes the batch's charges to `user_usage`, one UPDATE per user, in the batch's transaction
    /// (after its jobs, before its commit), and empties them.
    func write(in db: Database, statements: RawStatementCache) throws {
        let totals = state.withLock { state in
            defer {
                state.charges.removeAll(keepingCapacity: true)
                state.totals.removeAll(keepingCapacity: true)
            }
            return state.totals
        }
        for (userID, bytes) in totals where bytes != 0 {
            try statements.statement(Self.updateSQL, in: db).run([bytes, userID])
        }
    }
}
