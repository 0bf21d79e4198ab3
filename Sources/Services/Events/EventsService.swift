import Foundation
import Logging
import NIOCore
import RPC
import Synchronization

/// The caller's events: live subscriptions on its connection, replays from the store, and the
/// retention that prunes old events.
public struct EventsService: Sendable {
    public struct Settings: Sendable {
        /// Events a subscription may have waiting for its client before it overflows.
        public var queueCapacity: Int = 4096
        public var maxSubscriptionsPerConnection: Int = 64
        /// Events older than this are pruned…
        public var retentionAge: TimeInterval = 30 * 24 * 3600
        /// …and so are all but the newest `retentionCount`.
        public var retentionCount: Int = 1_000_000

        public init(
            queueCapacity: Int = 4096, maxSubscriptionsPerConnection: Int = 64, retentionAge: TimeInterval = 30 * 24 * 3600,
            retentionCount: Int = 1_000_000
        ) {
            self.queueCapacity = queueCapacity
            self.maxSubscriptionsPerConnection = maxSubscriptionsPerConnection
            self.retentionAge = retentionAge
            self.retentionCount = retentionCount
        }
    }

    /// Patterns a subscription or a replay may give: each of the user's events is matched against
    /// every pattern of each of the user's subscriptions, on the bus's one dispatch queue.
    public static let maxPatterns = 64
    /// Bytes of one pattern (the longest topic is a few dozen).
    public static let maxPatternBytes = 256
    public static let defaultReplayLimit = 100
    public static let maxReplayLimit = 1000
    /// Stored events read per page by a catch-up or a replay.
    static let pageSize = 500
    /// A replay examines at most this many pages, then answers with `hasMore` (a rare topic in a
    /// long history must not make one call scan it all).
    static let maxReplayPages = 20

    private let store: any EventStore
    private let bus: EventBus
    private let ids: any IDGenerator
    private let clock: any WallClock
    /// Every topic there is, for checking patterns (a typo must not subscribe to nothing).
    private let topics: Set<String>
    /// The in-process consumers' names (their cursors) and topics.
    private let consumers: [(name: String, topics: [String])]
    private let sessions: any SessionChecker
    private let settings: Settings
    private let replyBudget: ReplyBudget

    /// - Parameters:
    ///   - topics: every event topic the domains publish.
    ///   - consumers: the in-process consumers: retention keeps what they have not handled.
    ///   - replyBudget: the most bytes a reply may hold: a replay stops early (`hasMore`).
    public init(
        store: any EventStore, bus: EventBus, ids: any IDGenerator, clock: any WallClock, topics: [String], consumers: [any EventConsumer],
        sessions: any SessionChecker, settings: Settings, replyBudget: ReplyBudget = ReplyBudget()
    ) {
        self.replyBudget = replyBudget
        self.sessions = sessions
        self.store = store
        self.bus = bus
        self.ids = ids
        self.clock = clock
        self.topics = Set(topics)
        self.consumers = consumers.map { ($0.name, $0.topics.sorted()) }
        self.settings = settings
    }

    // MARK: Subscriptions

    /// Subscribes `request`'s connection; events follow the reply.
    ///
    /// - Throws: `EventsError.invalid` (`topics`, `since`), `.overLimit` (`topics`), `.expired`, `.tooManySubscriptions`.
    /// - Parameters:
    ///   - sessionTokenHash: the session the caller signed in with (nil: its peer uid): when it is
    ///     revoked, the subscription ends.
    ///   - sessionExpiresAt: when that session expires: the subscription ends then, with
    ///     `events.ended {reason: "session expired"}`.
    public func subscribe(
        _ params: Events.Subscribe.Params, userID: String, session sessionTokenHash: Data? = nil, sessionExpiresAt: Date? = nil, request: RPCContext
    ) async throws -> Events.Subscribe.Result {
        let selector = try selector(topics: params.topics, filter: params.filter, field: "topics")
        if let since = params.since { try await checkAvailable(since: since) }
        let subscriptions = request.connection.attributes.setIfAbsent(ConnectionSubscriptionsKey.self, ConnectionSubscriptions())
        let subscription = EventSubscription(
            id: ids.makeID(prefix: "sub_"), userID: userID, sessionTokenHash: sessionTokenHash, sessionExpiresAt: sessionExpiresAt,
            selector: selector,
            capacity: settings.queueCapacity, startingAfter: params.since)
        guard subscriptions.add(subscription, limit: settings.maxSubscriptionsPerConnection) else {
            throw EventsError.tooManySubscriptions(limit: settings.maxSubscriptionsPerConnection)
        }
        let bus = self.bus
        let stream = request.openPushStream(
            RPCPushStreamOptions(
                capacity: settings.queueCapacity,
                overflowMessage: { lastWritten in
                    EventSubscription.overflowMessage(subscription: subscription.id, lastSeq: lastWritten ?? subscription.start)
                },
                onEnd: { _ in
                    subscription.streamEnded()
                    bus.remove(subscriptionID: subscription.id)
                    subscriptions.remove(subscription.id)
                }))
        subscription.attach(stream)
        let start = bus.add(subscription)
        // After `add`: a session expiring at once removes a subscription that is registered.
        if let sessionExpiresAt { Self.endAtExpiry(subscription, expiresAt: sessionExpiresAt, bus: bus, clock: clock, on: request.eventLoop) }
        if params.since == nil { subscription.setStart(start) }
        if let since = params.since {
            let store = self.store
            let logger = request.logger
            Task { await Self.catchUp(subscription, after: since, stream: stream, store: store, logger: logger) }
        }
        return .init(subscription: subscription.id, after: params.since ?? start)
    }

    /// Sends the stored events after `since`, a page at a time and no faster than the client
    /// reads, then switches the subscription to live.
    static func catchUp(_ subscription: EventSubscription, after since: Int64, stream: RPCPushStream, store: any EventStore, logger: Logger) async {
        var after = since
        // A page is sent in one go, and when it cannot be written at once (the stream is still
        // held for the subscribe reply, or the connection is momentarily full) it waits in the
        // stream's queue: a page longer than that queue would overflow a client that reads.
        let limit = min(pageSize, subscription.capacity)
        do {
            while subscription.isActive {
                let page = try await store.events(EventQuery(userID: subscription.userID, afterSeq: after, limit: limit))
                // Events after `after` that retention removed meanwhile would be a silent gap.
                if try await store.prunedThrough() > after {
                    subscription.endCatchUp()
                    return
                }
                guard let last = page.last else {
                    if try subscription.goLive(after: after) { return }
                    return
                }
                try subscription.sendCatchUp(page.filter(subscription.selector.matches))
                after = last.seq
                guard await stream.drained() else { return }
            }
        } catch {
            logger.error("event catch-up failed", metadata: ["subscription": "\(subscription.id)", "error": "\(error)"])
            subscription.endCatchUp()
        }
    }

    /// - Throws: `EventsError.notFound` when this connection has no such subscription.
    public func unsubscribe(_ id: String, request: RPCContext) throws -> Bool {
        guard let subscriptions = request.connection.attributes[ConnectionSubscriptionsKey.self],
            let subscription = subscriptions.remove(id)
        else { throw EventsError.notFound(subscription: id) }
        bus.remove(subscriptionID: id)
        subscription.end()
        return true
    }

    /// Ends `userID`'s subscriptions whose session no longer exists (after `user.sessions.revoked`),
    /// each with `events.ended` (reason `session expired` when it was its expiry that ended it).
    /// Returns how many ended.
    @discardableResult
    public func endRevokedSubscriptions(userID: String) async -> Int {
        var ended = 0
        for subscription in bus.sessionSubscriptions(of: userID) {
            guard let tokenHash = subscription.sessionTokenHash, await !sessions.isSessionValid(tokenHash: tokenHash) else { continue }
            bus.remove(subscriptionID: subscription.id)
            let expired = subscription.sessionExpiresAt.map { $0 <= clock.now() } ?? false
            subscription.endSession(reason: expired ? Self.sessionExpired : "session revoked")
            ended += 1
        }
        return ended
    }

    static let sessionExpired = "session expired"
    /// The longest a timer waits at once: a later expiry is reached in several waits.
    static let maxTimerWait: TimeInterval = 24 * 3600

    /// Ends `subscription` when its session expires, on a timer of the connection's event loop
    /// (no task per subscription, no scan of them all). The wall clock decides: when the timer
    /// fires early by it (the clock was set back), it waits again for the rest.
    static func endAtExpiry(_ subscription: EventSubscription, expiresAt: Date, bus: EventBus, clock: any WallClock, on eventLoop: any EventLoop) {
        let wait = min(max(0, expiresAt.timeIntervalSince(clock.now())), maxTimerWait)
        let timer = eventLoop.scheduleTask(in: .nanoseconds(Int64((wait * 1e9).rounded(.up)))) {
            guard subscription.isActive else { return }
            guard clock.now() >= expiresAt else {
                endAtExpiry(subscription, expiresAt: expiresAt, bus: bus, clock: clock, on: eventLoop)
                return
            }
            bus.remove(subscriptionID: subscription.id)
            subscription.endSession(reason: sessionExpired)
        }
        subscription.setExpiryTimer(timer)
    }

    // MARK: Replay

    /// Stops early, with `hasMore`, where the next event would pass the reply budget.
    ///
    /// - Throws: `EventsError.invalid` (`limit`, `topics`, `since`), `.overLimit` (`topics`), `.expired`; `ReplyBudgetError`
    ///   when the first event alone does not fit.
    public func replay(_ params: Events.Replay.Params, userID: String) async throws -> Events.Replay.Result {
        let limit = params.limit ?? Self.defaultReplayLimit
        guard (1...Self.maxReplayLimit).contains(limit) else {
            throw EventsError.invalid(field: "limit", reason: "between 1 and \(Self.maxReplayLimit)")
        }
        let selector = try selector(topics: params.topics ?? ["*"], filter: params.filter, field: "topics")
        try await checkAvailable(since: params.since)
        var found: [EventItem] = []
        var filler = ReplyBudget.Filler(replyBudget)
        var after = params.since
        for _ in 0..<Self.maxReplayPages {
            let page = try await store.events(EventQuery(userID: userID, afterSeq: after, limit: Self.pageSize))
            for event in page {
                guard selector.matches(event) else {
                    after = event.seq
                    continue
                }
                if found.count == limit { return .init(events: found, lastSeq: after, hasMore: true) }
                let item = EventItem(event)
                // Past the reply budget: stop before this event, which the next call starts with.
                guard try filler.add(item) else { return .init(events: found, lastSeq: after, hasMore: true) }
                found.append(item)
                after = event.seq
            }
            if page.count < Self.pageSize { return .init(events: found, lastSeq: after, hasMore: false) }
        }
        return .init(events: found, lastSeq: after, hasMore: true)
    }

    // MARK: Retention

    /// Prunes events past the retention age or count, keeping what an in-process consumer has not
    /// handled yet.
    public func prune() async throws -> PruneResult {
        // What a consumer has not handled starts at the first event of its topics after its cursor.
        // Not at the cursor itself: the cursor moves only over the consumer's own topics, so
        // everything committed after its last event (all other topics) would be kept forever.
        // The newest seq is read first: an event committed after that has a later seq, so it is
        // kept even if the look-up below did not see it.
        var keepAfter = try await store.latestSeq()
        for consumer in consumers {
            let cursor = try await store.consumerPosition(name: consumer.name)
            if let unhandled = try await store.events(topics: consumer.topics, afterSeq: cursor, limit: 1).first {
                keepAfter = min(keepAfter, unhandled.seq - 1)
            }
        }
        let cutoff = clock.now().addingTimeInterval(-settings.retentionAge)
        return try await store.prune(before: cutoff, keepLast: settings.retentionCount, keepAfter: keepAfter)
    }

    // MARK: Helpers

    private func checkAvailable(since: Int64) async throws {
        guard since >= 0 else { throw EventsError.invalid(field: "since", reason: "a seq, 0 or more") }
        let prunedThrough = try await store.prunedThrough()
        if since < prunedThrough { throw EventsError.expired(since: since, prunedThrough: prunedThrough) }
    }

    private func selector(topics patterns: [String], filter: Events.Filter?, field: String) throws -> EventSelector {
        guard !patterns.isEmpty else { throw EventsError.invalid(field: field, reason: "at least one topic or pattern") }
        guard patterns.count <= Self.maxPatterns else {
            throw EventsError.overLimit(
                field: field, reason: "at most \(Self.maxPatterns) topics or patterns", limit: Self.maxPatterns, actual: patterns.count)
        }
        for (index, pattern) in patterns.enumerated() where pattern.utf8.count > Self.maxPatternBytes {
            throw EventsError.overLimit(
                field: "\(field)[\(index)]", reason: "at most \(Self.maxPatternBytes) bytes", limit: Self.maxPatternBytes, actual: pattern.utf8.count)
        }
        for (index, pattern) in patterns.enumerated() where !topics.contains(where: { EventSelector.pattern(pattern, matches: $0) }) {
            throw EventsError.invalid(field: "\(field)[\(index)]", reason: "matches no topic; topics: \(topics.sorted().joined(separator: ", "))")
        }
        return EventSelector(patterns: patterns, chatID: filter?.chatId, moduleID: filter?.moduleId)
    }
}

/// The subscriptions of one connection (a connection attribute).
final class ConnectionSubscriptions: Sendable {
    private let subscriptions = Mutex<[String: EventSubscription]>([:])

    /// False when the connection already has `limit`.
    func add(_ subscription: EventSubscription, limit: Int) -> Bool {
        subscriptions.withLock { subscriptions in
            guard subscriptions.count < limit else { return false }
            subscriptions[subscription.id] = subscription
            return true
        }
    }

    @discardableResult
    func remove(_ id: String) -> EventSubscription? {
        subscriptions.withLock { $0.removeValue(forKey: id) }
    }
}

enum ConnectionSubscriptionsKey: RPCConnectionAttributeKey {
    typealias Value = ConnectionSubscriptions
}
