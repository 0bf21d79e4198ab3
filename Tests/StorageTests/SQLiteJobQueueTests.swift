import Foundation
import GRDB
import RPC
import Services
import Testing

@testable import Storage

/// What only the SQLite queue has (the contract is `JobQueueContractTests`): its indexes serve the
/// hot queries without scanning or sorting the table, and a user's jobs go with the user.
@Suite("SQLite job queue", .timeLimit(.minutes(1)))
struct SQLiteJobQueueTests {
    static func plan(_ db: Database, _ sql: String) throws -> String {
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "\n")
    }

    @Test("claim, nextDue, the idempotency lookup, jobs.list and prune read through their indexes")
    func queryPlans() async throws {
        let harness = try await SQLiteJobQueueHarness()
        defer { harness.removeFiles() }
        try await harness.database.writer.read { db in
            let claimQueued = try Self.plan(
                db,
                """
                SELECT seq FROM jobs WHERE state = 'queued' AND kind = 'k' AND run_after <= '2026' ORDER BY priority DESC, run_after, seq LIMIT 1
                """)
            #expect(claimQueued.contains("USING INDEX jobs_queued") && !claimQueued.contains("TEMP B-TREE"), "\(claimQueued)")
            let claimExpired = try Self.plan(
                db,
                "SELECT seq FROM jobs WHERE state = 'running' AND kind IN ('a', 'b') AND lease_expires_at <= '2026' ORDER BY lease_expires_at LIMIT 1"
            )
            #expect(claimExpired.contains("jobs_running"), "\(claimExpired)")
            let nextDue = try Self.plan(db, "SELECT min(run_after) FROM jobs WHERE state = 'queued' AND kind IN ('a')")
            #expect(nextDue.contains("jobs_queued"), "\(nextDue)")
            let key = try Self.plan(db, "SELECT seq FROM jobs WHERE ifnull(owner_id, '') = '' AND kind = 'k' AND idempotency_key = 'x'")
            #expect(key.contains("jobs_idempotency"), "\(key)")
            let list = try Self.plan(db, "SELECT seq FROM jobs WHERE owner_id IS 'usr_1' ORDER BY seq DESC LIMIT 10")
            #expect(list.contains("jobs_owner_seq") && !list.contains("TEMP B-TREE"), "\(list)")
            let prune = try Self.plan(
                db, "SELECT seq FROM jobs WHERE finished_at < '2026' AND state IN ('succeeded', 'failed', 'cancelled') ORDER BY finished_at LIMIT 10")
            #expect(prune.contains("jobs_finished") && !prune.contains("TEMP B-TREE"), "\(prune)")
        }
    }

    @Test("a user's jobs are deleted with the user; the daemon's own stay")
    func ownerCascade() async throws {
        let harness = try await SQLiteJobQueueHarness()
        defer { harness.removeFiles() }
        try await harness.addUser("usr_1")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        _ = try await harness.queue.enqueue(NewJob(id: "job_user", kind: "k", ownerID: "usr_1", runAfter: now))
        _ = try await harness.queue.enqueue(NewJob(id: "job_system", kind: "k", ownerID: nil, runAfter: now))
        try await harness.database.writer.write { db in try db.execute(sql: "DELETE FROM users WHERE id = 'usr_1'") }
        #expect(try await harness.database.writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM jobs") } == ["job_system"])
    }

    @Test("an enqueue refused by the database (unknown owner) stores nothing and writes no event")
    func refusedEnqueue() async throws {
        let harness = try await SQLiteJobQueueHarness()
        defer { harness.removeFiles() }
        await #expect(throws: DatabaseError.self) {
            try await harness.queue.enqueue(NewJob(id: "job_1", kind: "k", ownerID: "usr_missing", runAfter: Date()))
        }
        #expect(try await harness.database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM jobs") } == 0)
        #expect(try await harness.jobEvents().isEmpty)
    }
}
