import RPC
import Services
import Storage

@testable import Daemon

/// An event as the outbox stored it: the user it is filed under and its data. Services tests
/// compare these with the events they expect, encoded the same way.
struct RecordedEvent: Equatable, CustomStringConvertible {
    var userID: String
    var data: String

    init(userID: String, data: String) {
        self.userID = userID
        self.data = data
    }

    /// The form `event` has once stored.
    init(_ event: some DomainEvent) throws {
        self.init(userID: event.userID, data: try RPCJSONEncoder().encodeToString(event))
    }

    var description: String { "\(userID) \(data)" }
}

extension Dependencies {
    /// Every committed event of `type`'s topic, oldest first (read from the outbox table, so only
    /// committed changes have one).
    func recorded<E: DomainEvent>(_ type: E.Type) async throws -> [RecordedEvent] {
        try await SQLiteEventStore(writer: database.writer).events(topics: [E.topic], afterSeq: 0, limit: 100_000)
            .map { RecordedEvent(userID: $0.userID, data: $0.data.text) }
    }
}
