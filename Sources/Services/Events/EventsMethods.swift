import Foundation
import RPC

/// The `events.*` methods: the caller's events, live (subscriptions) and stored (replay).
public enum Events {
    /// `filter` of a subscription or replay: only events about this chat or module.
    public struct Filter: Codable, Sendable, Equatable {
        public var chatId: String?
        public var moduleId: String?
        public init(chatId: String? = nil, moduleId: String? = nil) {
            self.chatId = chatId
            self.moduleId = moduleId
        }
    }

    public enum Subscribe: RPCMethod {
        public static let name = "events.subscribe"
        public static let summary =
            "Subscribes this connection to the caller's events: topics are names or patterns (\"chat.*\", \"*\"); filter narrows to one chat or module (a module's filter also takes its chats' events). With since, the stored events after that seq come first, then live ones, with no gap and no duplicate. Events arrive as events.event notifications after this reply; when the client reads too slowly, events.overflow ends the subscription: subscribe again with since: lastSeq."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var topics: [String]
            public var filter: Filter?
            public var since: Int64?
            public init(topics: [String], filter: Filter? = nil, since: Int64? = nil) {
                self.topics = topics
                self.filter = filter
                self.since = since
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var subscription: String
            /// Events after this seq will arrive: `since` when given, else the newest seq at the
            /// time of subscribing.
            public var after: Int64
            public init(subscription: String, after: Int64) {
                self.subscription = subscription
                self.after = after
            }
        }
        public static var errors: [RPCErrorDescription] { [EventsError.expiredDescription, EventsError.tooManySubscriptionsDescription] }
    }

    public enum Unsubscribe: RPCMethod {
        public static let name = "events.unsubscribe"
        public static let summary = "Ends one of this connection's subscriptions; events not yet written are dropped."
        public static let rateClass: RPCRateClassName = .exempt
        public struct Params: Codable, Sendable {
            public var subscription: String
            public init(subscription: String) { self.subscription = subscription }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var unsubscribed: Bool
            public init(unsubscribed: Bool) { self.unsubscribed = unsubscribed }
        }
        public static var errors: [RPCErrorDescription] { [EventsError.notFoundDescription] }
    }

    public enum Replay: RPCMethod {
        public static let name = "events.replay"
        public static let summary =
            "The caller's stored events after since, oldest first (limit 1-1000, default 100), for pull-style catch-up: call again with since: lastSeq while hasMore."
        public static let rateClass: RPCRateClassName = .expensive
        public struct Params: Codable, Sendable {
            public var since: Int64
            public var limit: Int?
            public var topics: [String]?
            public var filter: Filter?
            public init(since: Int64, limit: Int? = nil, topics: [String]? = nil, filter: Filter? = nil) {
                self.since = since
                self.limit = limit
                self.topics = topics
                self.filter = filter
            }
        }
        public struct Result: Codable, Sendable, Equatable {
            public var events: [EventItem]
            /// Pass as `since` to continue: the last seq examined (past `events.last` when later
            /// events did not match).
            public var lastSeq: Int64
            public var hasMore: Bool
            public init(events: [EventItem], lastSeq: Int64, hasMore: Bool) {
                self.events = events
                self.lastSeq = lastSeq
                self.hasMore = hasMore
            }
        }
        public static var errors: [RPCErrorDescription] { [EventsError.expiredDescription] }
    }
}

/// The notifications of the `events.*` domain.
public enum EventsNotifications {
    public enum Event: RPCNotification {
        public static let name = "events.event"
        public static let summary = "One event of a subscription, in seq order."
        public struct Params: Codable, Sendable {
            public var subscription: String
            public var seq: Int64
            public var topic: String
            public var occurredAt: Date
            public var data: JSONFragment
        }
    }

    public enum Ended: RPCNotification {
        public static let name = "events.ended"
        public static let summary =
            "The subscription ended because the session it was opened with was revoked (a logout or a password change elsewhere); every event sent before it was the user's."
        public struct Params: Codable, Sendable {
            public var subscription: String
            public var reason: String
        }
    }

    public enum Overflow: RPCNotification {
        public static let name = "events.overflow"
        public static let summary =
            "The subscription ended because the client read too slowly: every event up to lastSeq was sent; subscribe again with since: lastSeq."
        public struct Params: Codable, Sendable {
            public var subscription: String
            public var lastSeq: Int64
        }
    }
}
