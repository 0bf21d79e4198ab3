import Foundation
import GRDB
import RPC
import Services
import Synchronization

/// The transactional outbox: the events of a transaction's changes, written to the `events`
/// table in that transaction (`record`), and handed to the event bus once it has committed.
///
/// `GroupCommitWriter` owns one and tells it about the transaction's outcome: a write that rolls
/// back to its savepoint takes its events with it (`rollBack(to:)`), a batch that fails to commit
/// takes them all (`discard`), and only a commit hands them on (`committed`), in commit order. A
/// crash between the commit and the hand-off loses nothing: the rows are in the table, and the
/// bus's consumers read from there when they start.
public final class EventOutbox: Sendable {
    private let clock: any WallClock
    private let publish: @Sendable ([Event]) -> Void
    /// The events recorded by the transaction in progress. Only touched on the writer's queue (one
    /// transaction at a time); the mutex is for the compiler, never contended.
    private let pending = Mutex<[Event]>([])

    /// - Parameter publish: receives each committed transaction's events, in seq order
    ///   (`EventBus.committed`).
    public init(clock: any WallClock, publish: @escaping @Sendable ([Event]) -> Void) {
        self.clock = clock
        self.publish = publish
    }

    /// The rows of `count` events; the seqs are their row ids, consecutive within the statement.
    /// No `RETURNING`: SQLite runs such a statement into a temporary table first, which cost as much
    /// as the insert itself on the append path.
    static func insertSQL(rows count: Int) -> String {
        "INSERT INTO events (topic, user_id, chat_id, module_id, occurred_at, data) VALUES "
            + repeatElement("(?, ?, ?, ?, ?, ?)", count: count).joined(separator: ", ")
    }
    /// The module of the events' chat, when an event names none: what `filter.moduleId` matches.
    static let chatModuleSQL = "SELECT module_id FROM chats WHERE id = ?"

    /// Where the module of the events' chat comes from, for events that name no module.
    enum ChatModule {
        /// The job read it already (nil: the chat is in no module).
        case known(String?)
        /// Look it up with this prepared `chatModuleSQL`.
        case ofChat(RawStatement)
    }

    /// Writes `events` in the open transaction on `db`, in one statement (`insert`, a prepared
    /// `insertSQL(rows: events.count)`); they are published if that transaction commits.
    func record(_ events: [any DomainEvent], insert: RawStatement, chatModule: ChatModule, db: Database) throws {
        let occurredAt = Timestamp.text(clock.now())
        let occurred = try Timestamp.date(occurredAt)
        var values: [(any Sendable)?] = []
        values.reserveCapacity(events.count * 6)
        var stored: [Event] = []
        var chatModules: [String: String?] = [:]
        for event in events {
            let topic = type(of: event).topic
            let data = try event.json ?? RPCJSONEncoder().encodeToString(event)
            var moduleID = event.moduleID
            if moduleID == nil, let chatID = event.chatID {
                switch chatModule {
                case .known(let known): moduleID = known
                case .ofChat(let statement):
                    if let cached = chatModules[chatID] {
                        moduleID = cached
                    } else {
                        moduleID = try statement.firstRow([chatID]) { $0.text(0) } ?? nil
                        chatModules[chatID] = moduleID
                    }
                }
            }
            values += [topic, event.userID, event.chatID, moduleID, occurredAt, data] as [(any Sendable)?]
            stored.append(
                Event(
                    seq: 0, topic: topic, userID: event.userID, chatID: event.chatID, moduleID: moduleID, occurredAt: occurred,
                    data: JSONFragment(unchecked: data)))
        }
        try insert.run(values)
        let last = db.lastInsertedRowID
        for index in stored.indices { stored[index].seq = last - Int64(stored.count - 1 - index) }
        pending.withLock { $0 += stored }
    }

    /// How many events the transaction has recorded so far: a write's mark for `rollBack(to:)`.
    var mark: Int { pending.withLock { $0.count } }

    /// The write that started at `mark` rolled back to its savepoint: its events are gone.
    func rollBack(to mark: Int) {
        pending.withLock { $0.removeSubrange(mark...) }
    }

    /// The transaction rolled back: nothing is published.
    func discard() {
        pending.withLock { $0.removeAll() }
    }

    /// The transaction committed: its events go to the bus.
    func committed() {
        let events = pending.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
        if !events.isEmpty { publish(events) }
    }
}
