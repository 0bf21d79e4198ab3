import Dispatch
import Logging
import NIOCore
import RPC
import Synchronization

/// Hands committed events to whoever listens: the live subscriptions of connected clients and the
/// in-process consumers (audit, …).
///
/// The outbox calls `committed(_:)` after each commit, in commit order, so events arrive here in
/// seq order with no gap. Dispatch runs on one serial queue of the bus's own: the writer that
/// committed never waits for it, and the order is kept. Fan-out never blocks either: a
/// subscription only appends to its connection's bounded queue (`RPCPushStream`), and a consumer
/// is only woken (it reads what it needs from the store in its own task). So a slow or stuck
/// subscriber cannot hold up the publisher or anyone else.
public final class EventBus: Sendable {
    private let queue = DispatchQueue(label: "agentd.events")
    private let state: Mutex<State>
    private let logger: Logger

    private struct State {
        /// The last seq dispatched: a subscription registered now receives every event after it.
        var lastSeq: Int64
        var subscriptions: [String: EventSubscription] = [:]
        /// The same by owner, then by id: an event is offered only to its own user's
        /// subscriptions, so one user's many subscriptions cost nothing to another user's events.
        var byUser: [String: [String: EventSubscription]] = [:]
        var consumers: [ConsumerWaker] = []
        var commitListeners: [@Sendable ([Event]) -> Void] = []
    }
    /// Committed events not yet taken by a dispatch, in seq order.
    private let undispatched = CoalescingQueue<Event>()
    /// Subscriptions offered a batch, summed over every dispatch (what a dispatch costs, for tests).
    private let visited = Atomic<Int>(0)

    /// An in-process consumer's topics and how to wake it.
    struct ConsumerWaker: Sendable {
        let topics: Set<String>
        let wake: @Sendable () -> Void
    }

    /// - Parameter lastSeq: the newest seq in the store when the daemon starts (live subscriptions
    ///   start after it).
    public init(lastSeq: Int64, logger: Logger) {
        self.state = Mutex(State(lastSeq: lastSeq))
        self.logger = logger
    }

    /// Called by the outbox once the transaction that wrote `events` has committed, in commit
    /// order. Returns at once.
    public func committed(_ events: [Event]) {
        if events.isEmpty { return }
        // Before the writers of these events are answered: a client that changed something and
        // reads it back never sees what a listener (the result cache) held from before.
        for listener in state.withLock({ $0.commitListeners }) { listener(events) }
        // Commits that arrive while a dispatch runs wait for the next one, which takes them all:
        // under load a fan-out pass (one hand-off and one write per connection) carries several
        // commits' events, and a lone commit is dispatched at once.
        if undispatched.append(contentsOf: events) { queue.async { self.dispatchUndispatched() } }
    }

    private func dispatchUndispatched() {
        let events = undispatched.takeAll()
        if !events.isEmpty { dispatch(events) }
    }

    /// Registers `listener` to run at each commit, synchronously on the writer's queue, before
    /// the writers are answered: for instant in-memory work only (dropping cache entries). Anything
    /// slower is an `EventConsumer`.
    public func onCommit(_ listener: @escaping @Sendable ([Event]) -> Void) {
        state.withLock { $0.commitListeners.append(listener) }
    }

    /// The last seq dispatched.
    public var lastSeq: Int64 { state.withLock { $0.lastSeq } }

    /// Starts delivering live events to `subscription`; returns the seq it starts after.
    func add(_ subscription: EventSubscription) -> Int64 {
        state.withLock { state in
            state.subscriptions[subscription.id] = subscription
            state.byUser[subscription.userID, default: [:]][subscription.id] = subscription
            return state.lastSeq
        }
    }

    func remove(subscriptionID: String) {
        state.withLock { state in
            guard let subscription = state.subscriptions.removeValue(forKey: subscriptionID) else { return }
            state.byUser[subscription.userID]?[subscriptionID] = nil
            if state.byUser[subscription.userID]?.isEmpty == true { state.byUser[subscription.userID] = nil }
        }
    }

    /// The live subscriptions of `userID` opened with a session.
    func sessionSubscriptions(of userID: String) -> [EventSubscription] {
        state.withLock { $0.byUser[userID]?.values.filter { $0.sessionTokenHash != nil } ?? [] }
    }

    /// Live `events.subscribe` subscriptions, on every connection (a metrics gauge).
    public var subscriptionCount: Int { state.withLock { $0.subscriptions.count } }

    /// How many subscriptions the dispatches so far offered events to, in all.
    var subscriptionsVisited: Int { visited.load(ordering: .relaxed) }

    func addConsumer(topics: Set<String>, wake: @escaping @Sendable () -> Void) {
        state.withLock { $0.consumers.append(ConsumerWaker(topics: topics, wake: wake)) }
    }

    private func dispatch(_ events: [Event]) {
        // Reading the subscriptions and moving `lastSeq` together: a subscription added after this
        // starts after these events, one added before receives them, never both or neither.
        let first = events[0].userID
        let oneUser = events.allSatisfy { $0.userID == first }
        let (subscriptions, byUser, consumers) = state.withLock {
            state -> ([String: EventSubscription]?, [String: [String: EventSubscription]], [ConsumerWaker]) in
            state.lastSeq = max(state.lastSeq, events.last!.seq)
            // The common batch is one user's (a lone commit, or one busy user): its subscriptions
            // only, with no grouping.
            if oneUser { return (state.byUser[first], [:], state.consumers) }
            return (nil, state.byUser, state.consumers)
        }
        if oneUser {
            if let subscriptions {
                let encoded = EncodedEvents(events, logger: logger)
                for subscription in subscriptions.values { subscription.deliver(encoded, at: events.indices) }
                visited.add(subscriptions.count, ordering: .relaxed)
            }
        } else if !byUser.isEmpty {
            // Each user's events, in seq order, found in one pass; each user's subscriptions are
            // offered only that slice.
            var slices: [String: [Int]] = [:]
            for (index, event) in events.enumerated() where byUser[event.userID] != nil {
                slices[event.userID, default: []].append(index)
            }
            let encoded = EncodedEvents(events, logger: logger)
            var count = 0
            for (userID, indices) in slices {
                guard let subscriptions = byUser[userID] else { continue }
                for subscription in subscriptions.values { subscription.deliver(encoded, at: indices) }
                count += subscriptions.count
            }
            visited.add(count, ordering: .relaxed)
        }
        for consumer in consumers where events.contains(where: { consumer.topics.contains($0.topic) }) {
            consumer.wake()
        }
    }
}

/// A batch of events with each one's notification body encoded once, on first use, for every
/// subscription it goes to.
final class EncodedEvents {
    let events: [Event]
    private var bodies: [ByteBuffer?]
    private let logger: Logger

    init(_ events: [Event], logger: Logger) {
        self.events = events
        self.bodies = Array(repeating: nil, count: events.count)
        self.logger = logger
    }

    /// `,"seq":…,"topic":…,"occurredAt":…,"data":…}}`: an `events.event` notification after its
    /// subscription member (see `EventSubscription.head`).
    func body(_ index: Int) -> ByteBuffer? {
        if let body = bodies[index] { return body }
        do {
            let body = try Self.body(of: events[index])
            bodies[index] = body
            return body
        } catch {
            logger.error("could not encode an event", metadata: ["seq": "\(events[index].seq)", "error": "\(error)"])
            return nil
        }
    }

    static func body(of event: Event) throws -> ByteBuffer {
        let item = try RPCJSONEncoder().encode(EventItem(event))
        var body = ByteBuffer()
        body.reserveCapacity(item.readableBytes + 2)
        body.writeStaticString(",")
        body.writeImmutableBuffer(item.getSlice(at: item.readerIndex + 1, length: item.readableBytes - 1)!)
        body.writeStaticString("}")
        return body
    }
}
