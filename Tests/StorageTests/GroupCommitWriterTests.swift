import Dispatch
import Foundation
import GRDB
import Synchronization
import Testing

@testable import Storage

/// GroupCommitWriter: writes queued while a transaction runs share the next one; a write that
/// throws is rolled back alone; callers resume after the commit.
@Suite("Group commit", .timeLimit(.minutes(1)))
struct GroupCommitWriterTests {
    /// Counts committed transactions.
    final class CommitCounter: TransactionObserver, Sendable {
        let commits = Atomic<Int>(0)
        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseDidCommit(_ db: Database) { commits.add(1, ordering: .relaxed) }
        func databaseDidRollback(_ db: Database) {}
    }

    static func database() async throws -> (AgentDatabase, String) {
        let folder = try AgentDatabaseTests.temporaryFolder()
        let database = try AgentDatabase.open(path: "\(folder)/agentd.sqlite")
        try await database.writer.write { db in try db.execute(sql: "CREATE TABLE items (n INTEGER PRIMARY KEY)") }
        return (database, folder)
    }

    /// Holds the writer queue until `release()`, so writes pile up behind it deterministically.
    final class WriterGate: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private let entered = DispatchSemaphore(value: 0)
        init(_ writer: any DatabaseWriter) {
            writer.asyncWriteWithoutTransaction { [semaphore, entered] _ in
                entered.signal()
                semaphore.wait()
            }
            entered.wait()
        }
        func release() { semaphore.signal() }
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            await Task.yield()
        }
    }

    @Test("100 writes queued behind a busy writer commit in one transaction; each caller gets its own value")
    func batches() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let counter = CommitCounter()
        try await database.writer.write { db in db.add(transactionObserver: counter, extent: .databaseLifetime) }
        // The transaction that added the observer counts itself.
        let before = counter.commits.load(ordering: .relaxed)
        let writes = GroupCommitWriter(writer: database.writer)

        let gate = WriterGate(database.writer)
        let values = try await withThrowingTaskGroup(of: Int64.self) { group in
            for n in 1...100 {
                group.addTask {
                    try await writes.write { db in
                        try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n])
                        return db.lastInsertedRowID
                    }
                }
            }
            try await Self.waitUntil { writes.queuedCount == 100 }
            #expect(counter.commits.load(ordering: .relaxed) == before)
            gate.release()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(values.sorted() == Array(1...100))
        #expect(counter.commits.load(ordering: .relaxed) - before == 1)
        let count = try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") }
        #expect(count == 100)
    }

    @Test("a write that throws is rolled back alone: the others of its batch commit")
    func failureIsolated() async throws {
        struct Refused: Error {}
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let writes = GroupCommitWriter(writer: database.writer)

        let gate = WriterGate(database.writer)
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for n in 1...10 {
                group.addTask {
                    do {
                        try await writes.write { db in
                            try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n])
                            // Written, then refused: the savepoint takes the row back.
                            if n.isMultiple(of: 3) { throw Refused() }
                        }
                        return (n, true)
                    } catch is Refused {
                        return (n, false)
                    }
                }
            }
            try await Self.waitUntil { writes.queuedCount == 10 }
            gate.release()
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.filter(\.value).keys.sorted() == [1, 2, 4, 5, 7, 8, 10])
        let stored = try await database.writer.read { db in try Int.fetchAll(db, sql: "SELECT n FROM items ORDER BY n") }
        #expect(stored == [1, 2, 4, 5, 7, 8, 10])
    }

    @Test("a batch larger than maxBatch is split: 10 queued writes with maxBatch 4 take 3 transactions")
    func maxBatch() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let counter = CommitCounter()
        try await database.writer.write { db in db.add(transactionObserver: counter, extent: .databaseLifetime) }
        // The transaction that added the observer counts itself.
        let before = counter.commits.load(ordering: .relaxed)
        let writes = GroupCommitWriter(writer: database.writer, maxBatch: 4)

        let gate = WriterGate(database.writer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...10 {
                group.addTask { try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n]) } }
            }
            try await Self.waitUntil { writes.queuedCount == 10 }
            gate.release()
            try await group.waitForAll()
        }
        #expect(counter.commits.load(ordering: .relaxed) - before == 3)
    }

    @Test("a batch of urgent writes skips beforeCommit; the next batch runs it; a mixed batch runs it")
    func urgentSkipsBeforeCommit() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let runs = Atomic<Int>(0)
        let writes = GroupCommitWriter(writer: database.writer) { _ in runs.add(1, ordering: .relaxed) }
        try await writes.write(urgent: true) { db in try db.execute(sql: "INSERT INTO items (n) VALUES (1)") }
        #expect(runs.load(ordering: .relaxed) == 0)
        try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (2)") }
        #expect(runs.load(ordering: .relaxed) == 1)
        // An urgent write and an ordinary one queued behind a busy writer share a batch, which runs it.
        let gate = WriterGate(database.writer)
        async let urgent: Void = writes.write(urgent: true) { db in try db.execute(sql: "INSERT INTO items (n) VALUES (3)") }
        try await Self.waitUntil { writes.queuedCount == 1 }
        async let ordinary: Void = writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (4)") }
        try await Self.waitUntil { writes.queuedCount == 2 }
        gate.release()
        _ = try await (urgent, ordinary)
        #expect(runs.load(ordering: .relaxed) == 2)
    }

    @Test("with an interval, beforeCommit runs in the first batch, is skipped until the interval passes, and is caught up on demand")
    func beforeCommitInterval() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let runs = Atomic<Int>(0)
        // An hour: within a test, only the first batch and the catch-ups run it.
        let writes = GroupCommitWriter(writer: database.writer, beforeCommitInterval: .seconds(3600)) { _ in runs.add(1, ordering: .relaxed) }
        try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (1)") }
        #expect(runs.load(ordering: .relaxed) == 1)
        // Nothing skipped it since: a catch-up has nothing to do and writes nothing.
        let counter = CommitCounter()
        database.writer.add(transactionObserver: counter, extent: .databaseLifetime)
        try await writes.catchUpBeforeCommit()
        #expect(counter.commits.load(ordering: .relaxed) == 0)
        for n in 2...4 { try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n]) } }
        #expect(runs.load(ordering: .relaxed) == 1)
        try await writes.catchUpBeforeCommit()
        #expect(runs.load(ordering: .relaxed) == 2)
        try await writes.catchUpBeforeCommit()
        #expect(runs.load(ordering: .relaxed) == 2)
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") } == 4)
    }

    @Test("a skipped beforeCommit is caught up by a batch of its own once the interval has passed, with no further write")
    func beforeCommitCatchUp() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let runs = Atomic<Int>(0)
        let writes = GroupCommitWriter(writer: database.writer, beforeCommitInterval: .milliseconds(50)) { _ in runs.add(1, ordering: .relaxed) }
        try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (1)") }
        try await writes.write { db in try db.execute(sql: "INSERT INTO items (n) VALUES (2)") }
        // The second came within 50 ms of the first (unless this machine stalled): either way it
        // is run once more, by the second batch or by the catch-up.
        try await Self.waitUntil { runs.load(ordering: .relaxed) == 2 }
        #expect(runs.load(ordering: .relaxed) == 2)
    }

    @Test("a lone write runs at once and its value comes back after the commit")
    func lone() async throws {
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let writes = GroupCommitWriter(writer: database.writer)
        let id = try await writes.write { db in
            try db.execute(sql: "INSERT INTO items (n) VALUES (42)")
            return db.lastInsertedRowID
        }
        #expect(id == 42)
        // Committed: another connection (a reader) sees it.
        #expect(try await database.writer.read { db in try Int.fetchOne(db, sql: "SELECT n FROM items") } == 42)
    }

    @Test("checksBeforeWrites: a job refused before writing fails alone; one that throws after a write aborts its batch, nothing commits")
    func checksBeforeWrites() async throws {
        struct Refused: Error {}
        let (database, folder) = try await Self.database()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let writes = GroupCommitWriter(writer: database.writer)

        // Batch 1: 1…5 insert, 3 is refused before writing.
        var gate = WriterGate(database.writer)
        var outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for n in 1...5 {
                group.addTask {
                    do {
                        try await writes.write(isolation: .checksBeforeWrites) { db in
                            if n == 3 { throw Refused() }
                            try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n])
                        }
                        return (n, true)
                    } catch { return (n, false) }
                }
            }
            try await Self.waitUntil { writes.queuedCount == 5 }
            gate.release()
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes == [1: true, 2: true, 3: false, 4: true, 5: true])

        // Batch 2: 10…14 insert, 12 throws after its insert: the whole batch is rolled back.
        gate = WriterGate(database.writer)
        outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for n in 10...14 {
                group.addTask {
                    do {
                        try await writes.write(isolation: .checksBeforeWrites) { db in
                            try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n])
                            if n == 12 { throw Refused() }
                        }
                        return (n, true)
                    } catch { return (n, false) }
                }
            }
            try await Self.waitUntil { writes.queuedCount == 5 }
            gate.release()
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.values.allSatisfy { !$0 }, "\(outcomes)")
        let stored = try await database.writer.read { db in try Int.fetchAll(db, sql: "SELECT n FROM items ORDER BY n") }
        #expect(stored == [1, 2, 4, 5])
    }
}
