import Logging

/// An in-process handler of events (the audit log, cache invalidation, …), registered by topic in
/// the composition root.
///
/// Delivery is at least once, in seq order: each consumer has a cursor in the store, moved after
/// the events it handled, so after a crash it sees again what it had not finished. A consumer must
/// therefore be idempotent (the audit log keys its rows by the event's seq).
public protocol EventConsumer: Sendable {
    /// Unique; the name of its cursor in the store.
    var name: String { get }
    /// The exact topics it handles.
    var topics: Set<String> { get }
    /// Handles one event. A throw is logged with the event's seq and the consumer goes on with the
    /// next one (a failing event does not stop the others).
    func handle(_ event: Event) async throws
}

/// Runs one consumer in its own task: woken by the bus when an event of its topics commits, it
/// reads from its cursor in the store, handles the events, and moves its cursor. It also starts
/// with a read, which is how events committed before a crash but never handled are delivered
/// after the restart. A slow or failing consumer delays only itself.
public struct EventConsumerRunner: Sendable {
    public static let pageSize = 256

    private let consumer: any EventConsumer
    private let store: any EventStore
    private let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    public init(consumer: any EventConsumer, store: any EventStore, bus: EventBus, logger: Logger) {
        self.consumer = consumer
        self.store = store
        var logger = logger
        logger[metadataKey: "consumer"] = .string(consumer.name)
        self.logger = logger
        // One pending wake-up is enough: a run reads everything committed before it starts.
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let wake = self.wake
        bus.addConsumer(topics: consumer.topics) { wake.yield() }
    }

    /// Handles events until the task is cancelled.
    public func run() async {
        wake.yield()
        for await _ in wakeups {
            do {
                try await catchUp()
            } catch is CancellationError {
                return
            } catch {
                // The store failed: try again at the next wake-up (the cursor did not move).
                logger.error("event consumer could not read events", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Handles every stored event of its topics after its cursor; returns how many.
    @discardableResult
    public func catchUp() async throws -> Int {
        var cursor = try await store.consumerPosition(name: consumer.name)
        var handled = 0
        while true {
            try Task.checkCancellation()
            let events = try await store.events(topics: Array(consumer.topics), afterSeq: cursor, limit: Self.pageSize)
            guard let last = events.last else { return handled }
            for event in events {
                do {
                    try await consumer.handle(event)
                } catch {
                    logger.error("event consumer failed", metadata: ["seq": "\(event.seq)", "topic": "\(event.topic)", "error": "\(error)"])
                }
            }
            handled += events.count
            cursor = last.seq
            try await store.setConsumerPosition(name: consumer.name, seq: cursor)
        }
    }
}
