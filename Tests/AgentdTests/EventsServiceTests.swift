import AgentdTesting
import Foundation
import Logging
import RPC
import Services
import Storage
import Synchronization
import Testing

@testable import Daemon

/// The events domain through the container (`Dependencies.testing`), no socket: in-process
/// consumers (at least once, isolated from each other and from the publisher), the audit log,
/// replay and retention. Subscriptions are tested over the socket (EventsTests).
@Suite("Events service", .timeLimit(.minutes(1)))
struct EventsServiceTests {
    let clock = TestClock()
    let dependencies: Dependencies
    let alice: User
    let bob: User
    let store: SQLiteEventStore

    init() async throws {
        let collaborators = Dependencies.Collaborators(clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts())
        dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""), collaborators: collaborators)
        alice = try await dependencies.auth.register(username: "alice", password: "password1")
        bob = try await dependencies.auth.register(username: "bob", password: "password1")
        store = SQLiteEventStore(writer: dependencies.database.writer)
    }

    /// A consumer that records what it handles, can refuse some events and can be held.
    final class ProbeConsumer: EventConsumer {
        let name: String
        let topics: Set<String>
        private let handled = Mutex<[Int64]>([])
        private let refuse: Set<Int64>
        private let gate: AsyncStream<Void>?

        init(name: String, topics: Set<String>, refuse: Set<Int64> = [], gate: AsyncStream<Void>? = nil) {
            self.name = name
            self.topics = topics
            self.refuse = refuse
            self.gate = gate
        }

        struct Refused: Error {}

        func handle(_ event: Event) async throws {
            if let gate { for await _ in gate { break } }
            handled.withLock { $0.append(event.seq) }
            if refuse.contains(event.seq) { throw Refused() }
        }

        var seqs: [Int64] { handled.withLock { $0 } }
    }

    func runner(_ consumer: some EventConsumer) -> EventConsumerRunner {
        EventConsumerRunner(consumer: consumer, store: store, bus: dependencies.eventBus, logger: Dependencies.quietLogger)
    }

    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw HarnessError("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test("a consumer that throws on one event logs it and goes on; its cursor passes it, and a rerun handles nothing again")
    func failingConsumer() async throws {
        let modules = try await (0..<3).asyncMap { try await dependencies.modules.create(.init(title: "m\($0)"), userID: alice.id) }
        let seqs = try await store.events(topics: ["module.created"], afterSeq: 0, limit: 10).map(\.seq)
        #expect(seqs.count == modules.count)
        let consumer = ProbeConsumer(name: "probe", topics: ["module.created"], refuse: [seqs[1]])
        let runner = runner(consumer)
        #expect(try await runner.catchUp() == 3)
        #expect(consumer.seqs == seqs)
        #expect(try await store.consumerPosition(name: "probe") == seqs[2])
        #expect(try await runner.catchUp() == 0)
    }

    @Test("a held consumer delays neither the publisher nor another consumer")
    func slowConsumerIsolated() async throws {
        let (gate, release) = AsyncStream.makeStream(of: Void.self)
        let stuck = ProbeConsumer(name: "stuck", topics: ["module.created"], gate: gate)
        let other = ProbeConsumer(name: "other", topics: ["module.created"])
        let stuckRunner = runner(stuck)
        let otherRunner = runner(other)
        let tasks = [Task { await stuckRunner.run() }, Task { await otherRunner.run() }]
        defer { for task in tasks { task.cancel() } }

        for n in 0..<5 { _ = try await dependencies.modules.create(.init(title: "m\(n)"), userID: alice.id) }
        try await Self.waitUntil("the other consumer handled all five") { other.seqs.count == 5 }
        #expect(stuck.seqs.isEmpty)
        release.yield()
        try await Self.waitUntil("the stuck one handled its first") { stuck.seqs.count >= 1 }
        release.finish()
    }

    @Test("the audit consumer records audited events once per event, even when redelivered; audit.list pages per user")
    func audit() async throws {
        let module = try await dependencies.modules.create(.init(title: "gone"), userID: alice.id)
        _ = try await dependencies.modules.delete(id: module.id, userID: alice.id)
        let chat = try await dependencies.chats.create(.init(title: "bye"), userID: bob.id)
        _ = try await dependencies.chats.delete(id: chat.id, userID: bob.id)
        let auditRunner = try #require(dependencies.eventConsumers.first)
        try await auditRunner.catchUp()
        // A crash before the cursor moved: everything is delivered again, and recorded once.
        try await dependencies.database.writer.write { db in try db.execute(sql: "DELETE FROM event_consumers") }
        try await auditRunner.catchUp()

        let alicePage = try await dependencies.audit.list(.init(), userID: alice.id)
        #expect(alicePage.items.map(\.action) == ["module.deleted", "user.registered"])
        #expect(alicePage.items.first?.data == JSONFragment(unchecked: #"{"moduleId":"\#(module.id)"}"#))
        let bobPage = try await dependencies.audit.list(.init(limit: 1), userID: bob.id)
        #expect(bobPage.items.map(\.action) == ["chat.deleted"])
        let next = try await dependencies.audit.list(.init(cursor: bobPage.nextCursor, limit: 1), userID: bob.id)
        #expect(next.items.map(\.action) == ["user.registered"] && next.nextCursor == nil)
        await #expect(throws: EventsError.invalid(field: "limit", reason: "between 1 and 200")) {
            try await dependencies.audit.list(.init(limit: 0), userID: alice.id)
        }
    }

    @Test("replay: the caller's events only, paged by lastSeq, filtered by topic and chat; bad params and pruned history refused")
    func replay() async throws {
        let chat = try await dependencies.chats.create(.init(title: "c"), userID: alice.id)
        let other = try await dependencies.chats.create(.init(title: "o"), userID: alice.id)
        for n in 0..<4 {
            _ = try await dependencies.chats.append(
                .init(chatId: n.isMultiple(of: 2) ? chat.id : other.id, role: .user, content: "m\(n)"), userID: alice.id)
        }
        _ = try await dependencies.chats.create(.init(title: "bob's"), userID: bob.id)
        let events = dependencies.events

        let all = try await events.replay(.init(since: 0), userID: alice.id)
        #expect(all.events.map(\.topic) == ["user.registered", "chat.created", "chat.created"] + Array(repeating: "chat.message.created", count: 4))
        #expect(!all.hasMore && all.lastSeq == all.events.last?.seq)
        let first = try await events.replay(.init(since: 0, limit: 2), userID: alice.id)
        #expect(first.hasMore && first.events.count == 2)
        let rest = try await events.replay(.init(since: first.lastSeq), userID: alice.id)
        #expect(first.events + rest.events == all.events)

        let chatOnly = try await events.replay(.init(since: 0, topics: ["chat.message.*"], filter: .init(chatId: chat.id)), userID: alice.id)
        #expect(chatOnly.events.count == 2 && chatOnly.events.allSatisfy { $0.data.text.contains(chat.id) })

        await #expect(throws: EventsError.invalid(field: "limit", reason: "between 1 and 1000")) {
            try await events.replay(.init(since: 0, limit: 1001), userID: alice.id)
        }
        await #expect(throws: EventsError.self) { try await events.replay(.init(since: 0, topics: ["chats.*"]), userID: alice.id) }
        await #expect(throws: EventsError.invalid(field: "since", reason: "a seq, 0 or more")) {
            try await events.replay(.init(since: -1), userID: alice.id)
        }
        _ = try await store.prune(before: .distantPast, keepLast: 3, keepAfter: .max)
        let pruned = try await store.prunedThrough()
        await #expect(throws: EventsError.expired(since: 0, prunedThrough: pruned)) { try await events.replay(.init(since: 0), userID: alice.id) }
        // The newest three: alice's last two messages and bob's chat.
        #expect(
            try await events.replay(.init(since: pruned), userID: alice.id).events.map(\.topic) == ["chat.message.created", "chat.message.created"])
    }

    @Test("prune keeps what the audit consumer has not handled")
    func pruneWaitsForConsumers() async throws {
        for n in 0..<5 { _ = try await dependencies.modules.create(.init(title: "m\(n)"), userID: alice.id) }
        // Audit has handled nothing yet: nothing may go, whatever the retention says.
        #expect(try await dependencies.events.prune().deleted == 0)
        try await dependencies.eventConsumers.first!.catchUp()
        // Handled now, but within the default age and count: still kept.
        #expect(try await dependencies.events.prune().deleted == 0)
        clock.advance(by: 31 * 24 * 3600)
        #expect(try await dependencies.events.prune().deleted > 0)
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
