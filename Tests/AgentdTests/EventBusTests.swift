import Foundation
import Logging
import RPC
import Testing

@testable import Services

/// The bus's fan-out at the unit level: what a dispatch costs and whom it reaches. Delivery over a
/// connection (order, catch-up, overflow) is tested over the socket (EventsTests).
@Suite("Event bus", .blockingIO, .timeLimit(.minutes(1)))
struct EventBusTests {
    /// A subscription still catching up (`since`) with room for no event: it ends as soon as one
    /// event reaches it, so whether it is still active says whether the bus offered it one.
    static func tripwire(_ id: String, userID: String, session: Data? = nil) -> EventSubscription {
        EventSubscription(id: id, userID: userID, sessionTokenHash: session, selector: EventSelector(patterns: ["*"]), capacity: 0, startingAfter: 0)
    }

    static func event(seq: Int64, userID: String) -> Event {
        Event(
            seq: seq, topic: "chat.created", userID: userID, chatID: nil, moduleID: nil, occurredAt: Date(timeIntervalSince1970: 0),
            data: JSONFragment(unchecked: "{}"))
    }

    static func waitUntil(_ what: String, _ condition: () -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BusTestError(what) }
            Thread.sleep(forTimeInterval: 0.001)
        }
    }

    struct BusTestError: Error, CustomStringConvertible {
        var description: String
        init(_ what: String) { description = "timed out waiting until \(what)" }
    }

    @Test("an event is offered only to its own user's subscriptions: 1,000 of other users cost it nothing")
    func dispatchVisitsOnlyTheOwnersSubscriptions() throws {
        let bus = EventBus(lastSeq: 0, logger: Logger(label: "test"))
        let others = (0..<1000).map { Self.tripwire("sub_other\($0)", userID: "usr_other\($0 % 10)") }
        for subscription in others { _ = bus.add(subscription) }
        let mine = [Self.tripwire("sub_a1", userID: "usr_a"), Self.tripwire("sub_a2", userID: "usr_a")]
        for subscription in mine { _ = bus.add(subscription) }
        #expect(bus.subscriptionCount == 1002)

        bus.committed([Self.event(seq: 1, userID: "usr_a")])
        try Self.waitUntil("usr_a's subscriptions received the event") { mine.allSatisfy { !$0.isActive } && bus.subscriptionsVisited > 0 }
        #expect(bus.subscriptionsVisited == 2, "subscriptions visited for one event of usr_a")
        #expect(others.allSatisfy { $0.isActive }, "another user's subscription received usr_a's event")

        // A batch with two users' events visits each user's subscriptions once.
        let bob = Self.tripwire("sub_b", userID: "usr_b")
        _ = bus.add(bob)
        let before = bus.subscriptionsVisited
        bus.committed([Self.event(seq: 2, userID: "usr_b"), Self.event(seq: 3, userID: "usr_other3"), Self.event(seq: 4, userID: "usr_b")])
        try Self.waitUntil("usr_b's subscription received its events") { !bob.isActive && bus.subscriptionsVisited > before }
        try Self.waitUntil("the whole batch was dispatched") { bus.subscriptionsVisited >= before + 1 + 100 }
        #expect(bus.subscriptionsVisited - before == 1 + 100, "subscriptions visited for a batch of usr_b and usr_other3")
        #expect(others.filter { !$0.isActive }.map(\.userID) == Array(repeating: "usr_other3", count: 100))
    }

    @Test("removing subscriptions keeps the count and each user's session subscriptions right")
    func sessionSubscriptionsByUser() {
        let bus = EventBus(lastSeq: 0, logger: Logger(label: "test"))
        let session = Data([1, 2, 3])
        _ = bus.add(Self.tripwire("sub_1", userID: "usr_a", session: session))
        _ = bus.add(Self.tripwire("sub_2", userID: "usr_a"))
        _ = bus.add(Self.tripwire("sub_3", userID: "usr_b", session: session))
        #expect(bus.sessionSubscriptions(of: "usr_a").map(\.id) == ["sub_1"])
        #expect(bus.sessionSubscriptions(of: "usr_b").map(\.id) == ["sub_3"])
        #expect(bus.sessionSubscriptions(of: "usr_c").isEmpty)
        bus.remove(subscriptionID: "sub_1")
        bus.remove(subscriptionID: "sub_1")
        bus.remove(subscriptionID: "sub_3")
        #expect(bus.sessionSubscriptions(of: "usr_a").isEmpty)
        #expect(bus.sessionSubscriptions(of: "usr_b").isEmpty)
        #expect(bus.subscriptionCount == 1)
    }
}
