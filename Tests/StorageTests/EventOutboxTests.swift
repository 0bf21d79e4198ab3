import Foundation
import GRDB
import Logging
import Services
import Synchronization
import Testing

@testable import Storage

/// The transactional outbox: an event is stored with its change, published only once that change
/// commits, in seq order with no gap; retention prunes without losing what consumers still need.
@Suite("Event outbox and retention", .timeLimit(.minutes(1)))
struct EventOutboxTests {
    struct Happened: DomainEvent {
        static let topic = "test.happened"
        var userID: String
        var chatID: String?
        var n: Int

        enum CodingKeys: String, CodingKey { case n }
    }

    /// Keeps what the outbox publishes, batch by batch.
    final class Published: Sendable {
        private let batches = Mutex<[[Event]]>([])
        func add(_ events: [Event]) { batches.withLock { $0.append(events) } }
        var all: [[Event]] { batches.withLock { $0 } }
    }

    struct Fixture {
        let database: AgentDatabase
        let folder: String
        let writes: GroupCommitWriter
        let published: Published
        let store: SQLiteEventStore

        init(clock: any WallClock = SystemClock()) async throws {
            folder = try AgentDatabaseTests.temporaryFolder()
            database = try AgentDatabase.open(path: "\(folder)/agentd.sqlite")
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            _ = try await database.migrate(logger: logger)
            try await database.writer.write { db in try db.execute(sql: "CREATE TABLE items (n INTEGER PRIMARY KEY)") }
            let published = Published()
            self.published = published
            writes = GroupCommitWriter(writer: database.writer, outbox: EventOutbox(clock: clock, publish: published.add))
            store = SQLiteEventStore(writer: database.writer)
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }

        /// User `usr_1` with chat `cht_1` in module `mod_1`.
        func chatInModule() async throws {
            try await database.writer.write { db in
                try db.execute(sql: "INSERT INTO users (id, username, created_at) VALUES ('usr_1', 'a', '2026-01-01T00:00:00.000Z')")
                try db.execute(
                    sql:
                        "INSERT INTO modules (id, user_id, title, description, content, created_at, updated_at) VALUES ('mod_1', 'usr_1', 't', '', '', 'x', 'x')"
                )
                try db.execute(
                    sql: "INSERT INTO chats (id, user_id, module_id, title, created_at, updated_at) VALUES ('cht_1', 'usr_1', 'mod_1', 't', 'x', 'x')"
                )
            }
        }

        /// Inserts `n` and records its event, in one job; `refuse` throws after both.
        func write(_ n: Int, refuse: Bool = false, isolation: GroupCommitWriter.Isolation = .savepoint) async throws {
            struct Refused: Error {}
            let writes = self.writes
            try await writes.write(isolation: isolation) { db in
                try db.execute(sql: "INSERT INTO items (n) VALUES (?)", arguments: [n])
                try writes.record(Happened(userID: "usr_1", n: n), in: db)
                if refuse { throw Refused() }
            }
        }
    }

    static func ns(_ events: [Event]) -> [String] { events.map(\.data.text) }

    @Test("a batch with refused writes publishes, after its commit, only the committed events: seqs gap-free, as stored")
    func rolledBackPublishesNothing() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let gate = GroupCommitWriterTests.WriterGate(fixture.database.writer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1...9 {
                group.addTask { try? await fixture.write(n, refuse: n.isMultiple(of: 3)) }
            }
            try await GroupCommitWriterTests.waitUntil { fixture.writes.queuedCount == 9 }
            #expect(fixture.published.all.isEmpty)  // nothing before the commit
            gate.release()
            try await group.waitForAll()
        }
        let batches = fixture.published.all
        #expect(batches.count == 1)
        let events = batches.flatMap { $0 }
        #expect(Set(Self.ns(events)) == Set([1, 2, 4, 5, 7, 8].map { #"{"n":\#($0)}"# }))
        // Seqs follow the order of the batch and have no gap (rolled-back numbers are given back).
        #expect(events.map(\.seq) == Array(1...6))
        let stored = try await fixture.store.events(EventQuery(userID: "usr_1", afterSeq: 0, limit: 100))
        #expect(stored == events)
    }

    @Test("a batch that aborts (a checksBeforeWrites job failing after a change) publishes nothing and stores nothing")
    func abortedBatch() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let gate = GroupCommitWriterTests.WriterGate(fixture.database.writer)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await fixture.write(1) }
            group.addTask { try? await fixture.write(2, refuse: true, isolation: .checksBeforeWrites) }
            try? await GroupCommitWriterTests.waitUntil { fixture.writes.queuedCount == 2 }
            gate.release()
        }
        #expect(fixture.published.all.isEmpty)
        #expect(try await fixture.store.events(EventQuery(userID: "usr_1", afterSeq: 0, limit: 100)).isEmpty)
        // The next commit starts where the aborted batch did.
        try await fixture.write(3)
        #expect(fixture.published.all.flatMap { $0 }.map(\.seq) == [1])
    }

    @Test("an event about a chat is filed under the chat's module")
    func moduleFromChat() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.chatInModule()
        let writes = fixture.writes
        try await writes.write { db in try writes.record(Happened(userID: "usr_1", chatID: "cht_1", n: 1), in: db) }
        let event = try #require(fixture.published.all.first?.first)
        #expect(event.chatID == "cht_1" && event.moduleID == "mod_1")
        #expect(try await fixture.store.events(EventQuery(userID: "usr_1", afterSeq: 0, limit: 1)) == [event])
    }

    @Test("several events in one statement: consecutive seqs in order, as stored; the chat's module looked up once or given")
    func severalEvents() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.chatInModule()
        try await fixture.write(1)
        let writes = fixture.writes
        try await writes.write { db in
            try writes.record(
                [
                    Happened(userID: "usr_1", chatID: "cht_1", n: 2), Happened(userID: "usr_1", n: 3),
                    Happened(userID: "usr_1", chatID: "cht_1", n: 4),
                ], in: db)
            try writes.record([Happened(userID: "usr_1", chatID: "cht_1", n: 5)], chatModuleID: "mod_given", in: db)
            try writes.record([Happened(userID: "usr_1", chatID: "cht_1", n: 6)], chatModuleID: nil, in: db)
        }
        let events = try #require(fixture.published.all.last)
        #expect(events.map(\.seq) == [2, 3, 4, 5, 6])
        #expect(Self.ns(events) == ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}", "{\"n\":5}", "{\"n\":6}"])
        #expect(events.map(\.moduleID) == ["mod_1", nil, "mod_1", "mod_given", nil])
        #expect(try await fixture.store.events(EventQuery(userID: "usr_1", afterSeq: 1, limit: 10)) == events)
    }

    @Test("retention: by count and by age, never past what consumers handled; the mark and the newest seq survive")
    func prune() async throws {
        let clock = TestWallClock()
        let fixture = try await Fixture(clock: clock)
        defer { fixture.remove() }
        for n in 1...10 {
            try await fixture.write(n)
            clock.advance(by: 3600)
        }
        let store = fixture.store
        // Keep the newest 7, but a consumer has only handled up to 2: stop there.
        var result = try await store.prune(before: .distantPast, keepLast: 7, keepAfter: 2)
        #expect(result == PruneResult(deleted: 2, prunedThrough: 2))
        // The consumer caught up: the count rule removes up to 3.
        result = try await store.prune(before: .distantPast, keepLast: 7, keepAfter: .max)
        #expect(result == PruneResult(deleted: 1, prunedThrough: 3))
        // Events 1-10 happened an hour apart: those before the 6th are older than its time.
        let sixth = try #require(try await store.events(EventQuery(userID: "usr_1", afterSeq: 5, limit: 1)).first)
        result = try await store.prune(before: sixth.occurredAt, keepLast: 100, keepAfter: .max)
        #expect(result == PruneResult(deleted: 2, prunedThrough: 5))
        #expect(try await store.prunedThrough() == 5)
        #expect(try await store.events(EventQuery(userID: "usr_1", afterSeq: 0, limit: 100)).map(\.seq) == Array(6...10))
        // Pruning everything keeps the counter: the next event is 11, never a reused seq.
        result = try await store.prune(before: .distantFuture, keepLast: 0, keepAfter: .max)
        #expect(result.prunedThrough == 10)
        #expect(try await store.latestSeq() == 10)
        try await fixture.write(11)
        #expect(fixture.published.all.last?.map(\.seq) == [11])
    }

    @Test("consumer cursors start at 0 and only move forward")
    func cursors() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        #expect(try await fixture.store.consumerPosition(name: "audit") == 0)
        try await fixture.store.setConsumerPosition(name: "audit", seq: 5)
        try await fixture.store.setConsumerPosition(name: "audit", seq: 3)
        #expect(try await fixture.store.consumerPosition(name: "audit") == 5)
    }
}

/// A wall clock tests move by hand.
final class TestWallClock: WallClock, Sendable {
    private let current = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    func now() -> Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }
}
