import Synchronization

/// Something that happened in a domain (`user.registered`), for other domains and, later, clients.
public protocol DomainEvent: Sendable {
    /// The event's wire name, `domain.pastTense`.
    static var name: String { get }
}

/// Publishes domain events. The event bus arrives in a later issue; until then the daemon uses
/// `NoEventPublisher` and tests use `RecordingEventPublisher`.
public protocol EventPublisher: Sendable {
    func publish(_ event: some DomainEvent)
}

/// Drops every event.
public struct NoEventPublisher: EventPublisher {
    public init() {}
    public func publish(_ event: some DomainEvent) {}
}

/// Keeps every event it is given, in order: for tests.
public final class RecordingEventPublisher: EventPublisher {
    // The array is only touched under the mutex.
    private let recorded = Mutex<[any DomainEvent]>([])

    public init() {}

    public func publish(_ event: some DomainEvent) {
        recorded.withLock { $0.append(event) }
    }

    /// Every event published so far.
    public var events: [any DomainEvent] { recorded.withLock { $0 } }

    /// The events of one type, in order.
    public func events<E: DomainEvent>(of type: E.Type) -> [E] {
        events.compactMap { $0 as? E }
    }
}
