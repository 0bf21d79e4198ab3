/// Something that happened in a domain (`chat.created`), for in-process consumers and subscribed
/// clients (the Events domain).
///
/// A service does not publish an event itself: it hands the event to the store call that makes the
/// change, and the store writes both in one transaction (the outbox, `EventOutbox` in Storage).
/// The event bus dispatches it once that transaction has committed, so a rolled-back change
/// publishes nothing and a committed one is never lost.
///
/// The event's encoded form is the `data` clients receive: small (ids and a few fields, never a
/// module's content or a message's text), named in camelCase like every result.
public protocol DomainEvent: Sendable, Encodable {
    /// The topic, `domain.pastTense` (`chat.message.created`).
    static var topic: String { get }
    /// The owner: only this user's subscriptions see the event.
    var userID: String { get }
    /// The chat the event is about, for `filter.chatId`.
    var chatID: String? { get }
    /// The module the event is about, for `filter.moduleId`. When nil and `chatID` is set, the
    /// outbox files the event under that chat's module.
    var moduleID: String? { get }
    /// The encoded form written without the generic encoder, for events on a hot write path (the
    /// outbox encodes inside the write transaction): the same text `RPCJSONEncoder` makes (keys
    /// sorted, nil members left out; a test compares them). Nil: the outbox encodes the event.
    var json: String? { get }
    /// The result-cache tags (`RPCMethod.cacheRule`) that `event`, committed, makes stale: an event
    /// that changes an item a cached read shows names that item's tag.
    static func staleCacheTags(of event: Event) -> [String]
}

extension DomainEvent {
    public var chatID: String? { nil }
    public var moduleID: String? { nil }
    public var json: String? { nil }
    public static func staleCacheTags(of event: Event) -> [String] { [] }
}
