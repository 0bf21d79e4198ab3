import Foundation
import RPC

/// A committed domain event as the outbox stored it: what subscriptions, replays and in-process
/// consumers receive.
public struct Event: Sendable, Equatable {
    /// Global position: every committed event has the next one, with no gaps (a user sees gaps
    /// where other users' events are).
    public var seq: Int64
    public var topic: String
    public var userID: String
    public var chatID: String?
    public var moduleID: String?
    public var occurredAt: Date
    /// The event's `data` object, as JSON text.
    public var data: JSONFragment

    public init(seq: Int64, topic: String, userID: String, chatID: String?, moduleID: String?, occurredAt: Date, data: JSONFragment) {
        self.seq = seq
        self.topic = topic
        self.userID = userID
        self.chatID = chatID
        self.moduleID = moduleID
        self.occurredAt = occurredAt
        self.data = data
    }
}

/// An event as a client sees it (`events.replay` items and the params of `events.event` without
/// `subscription`).
public struct EventItem: Codable, Sendable, Equatable {
    public var seq: Int64
    public var topic: String
    public var occurredAt: Date
    public var data: JSONFragment

    public init(_ event: Event) {
        self.seq = event.seq
        self.topic = event.topic
        self.occurredAt = event.occurredAt
        self.data = event.data
    }
}

/// Which events a subscription, a replay or a consumer takes: topic patterns and the optional
/// chat/module filter. The owner is checked separately (always).
public struct EventSelector: Sendable, Equatable {
    /// Exact topics and `prefix.*` patterns (`*` alone: every topic).
    public var patterns: [String]
    public var chatID: String?
    public var moduleID: String?

    public init(patterns: [String], chatID: String? = nil, moduleID: String? = nil) {
        self.patterns = patterns
        self.chatID = chatID
        self.moduleID = moduleID
    }

    public func matches(_ event: Event) -> Bool {
        if let chatID, event.chatID != chatID { return false }
        if let moduleID, event.moduleID != moduleID { return false }
        return matches(topic: event.topic)
    }

    public func matches(topic: String) -> Bool {
        patterns.contains { Self.pattern($0, matches: topic) }
    }

    /// `*` matches everything; `chat.*` matches `chat.created` and `chat.message.created`; any other
    /// pattern matches only itself.
    public static func pattern(_ pattern: String, matches topic: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix(".*") {
            let prefix = pattern.dropLast(1)  // keeps the dot
            return topic.hasPrefix(prefix)
        }
        return pattern == topic
    }
}
