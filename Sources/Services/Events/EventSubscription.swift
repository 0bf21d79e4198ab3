import Foundation
import NIOCore
import RPC
import Synchronization

/// One client's subscription: which events it takes, and the push stream on its connection that
/// carries them.
///
/// A subscription with `since` first catches up from the store (`EventsService` reads pages and
/// calls `sendCatchUp`) while live events are buffered here; `goLive` then sends the buffered ones
/// the catch-up did not cover and switches to sending live events straight away. Both paths and
/// the switch run under one lock, and every event is sent only if its seq is past the last one
/// sent, so the client sees each event once, in seq order, with no gap.
final class EventSubscription: Sendable {
    let id: String
    let userID: String
    /// The session the subscriber signed in with (nil: recognised by its peer uid): when it is
    /// revoked, the subscription ends.
    let sessionTokenHash: Data?
    /// When that session expires: the subscription ends then (`EventsService`'s timer).
    let sessionExpiresAt: Date?
    let selector: EventSelector
    /// The most events buffered during a catch-up before the subscription overflows (the same
    /// bound as the stream's queue).
    let capacity: Int
    /// `{"jsonrpc":"2.0","method":"events.event","params":{"subscription":"…"`.
    let head: ByteBuffer
    private let state: Mutex<State>

    private struct State {
        var phase: Phase
        /// The seq of the last event sent to the stream; nothing at or before it is sent again.
        var lastSent: Int64
        var stream: RPCPushStream?
        var start: Int64
        /// Ends the subscription when its session expires; cancelled when it ends otherwise, so an
        /// ended subscription is not kept until then.
        var expiryTimer: Scheduled<Void>?
    }

    enum Phase {
        case catchingUp(buffer: [Event])
        case live
        case ended
    }

    init(
        id: String, userID: String, sessionTokenHash: Data? = nil, sessionExpiresAt: Date? = nil, selector: EventSelector, capacity: Int,
        startingAfter since: Int64?
    ) {
        self.id = id
        self.userID = userID
        self.sessionTokenHash = sessionTokenHash
        self.sessionExpiresAt = sessionExpiresAt
        self.selector = selector
        self.capacity = capacity
        var head = ByteBuffer()
        head.writeString(#"{"jsonrpc":"2.0","method":"\#(EventsNotifications.Event.name)","params":{"subscription":"\#(id)""#)
        self.head = head
        self.state = Mutex(State(phase: since == nil ? .live : .catchingUp(buffer: []), lastSent: since ?? 0, start: since ?? 0))
    }

    /// Attaches the stream, before the subscription is added to the bus.
    func attach(_ stream: RPCPushStream) {
        state.withLock { $0.stream = stream }
    }

    /// Where the client stands when nothing was written since the stream opened: its `since`, or
    /// the bus's last seq when it subscribed without one (set once added to the bus).
    func setStart(_ seq: Int64) {
        state.withLock { $0.start = seq }
    }

    var start: Int64 { state.withLock { $0.start } }

    var isActive: Bool {
        state.withLock { if case .ended = $0.phase { false } else { true } }
    }

    /// Live events from the bus (its dispatch queue): those of `batch` at `indices`, in seq order
    /// (the bus offers a subscription only its user's events).
    func deliver(_ batch: EncodedEvents, at indices: some Sequence<Int>) {
        var messages: [RPCPushMessage] = []
        state.withLock { state in
            for index in indices {
                let event = batch.events[index]
                guard event.userID == userID, event.seq > state.lastSent, selector.matches(event) else { continue }
                switch state.phase {
                case .ended:
                    return
                case .catchingUp(var buffer):
                    buffer.append(event)
                    if buffer.count > capacity {
                        // The client reads slower than events come in while it catches up.
                        overflow(&state)
                        return
                    }
                    state.phase = .catchingUp(buffer: buffer)
                case .live:
                    guard let body = batch.body(index) else { continue }
                    messages.append(RPCPushMessage(position: event.seq, head: head, body: body))
                    state.lastSent = event.seq
                }
            }
            if !messages.isEmpty { state.stream?.send(messages) }
        }
    }

    /// Stored events read by the catch-up, oldest first (already filtered by user and selector).
    func sendCatchUp(_ events: [Event]) throws {
        try state.withLock { state in
            guard case .catchingUp = state.phase else { return }
            try send(events, &state)
        }
    }

    /// Sends the events past `lastSent` (stored or buffered ones, encoded here) and moves it.
    private func send(_ events: [Event], _ state: inout State) throws {
        var messages: [RPCPushMessage] = []
        for event in events where event.seq > state.lastSent {
            messages.append(RPCPushMessage(position: event.seq, head: head, body: try EncodedEvents.body(of: event)))
            state.lastSent = event.seq
        }
        state.stream?.send(messages)
    }

    /// The catch-up found nothing after `after`: sends the buffered live events past it and
    /// switches to live. False when the subscription ended meanwhile.
    func goLive(after: Int64) throws -> Bool {
        try state.withLock { state in
            guard case .catchingUp(let buffer) = state.phase else { return false }
            state.lastSent = max(state.lastSent, after)
            try send(buffer, &state)
            state.phase = .live
            return true
        }
    }

    /// The catch-up cannot go on (the events it needs were pruned): ends like an overflow, so the
    /// client resubscribes and learns why.
    func endCatchUp() {
        state.withLock { state in overflow(&state) }
    }

    /// Ends the subscription after the events already sent, with `events.overflow`.
    private func overflow(_ state: inout State) {
        let lastSeq = max(state.lastSent, state.start)
        state.phase = .ended
        state.stream?.finish(with: Self.overflowMessage(subscription: id, lastSeq: lastSeq))
    }

    /// Sets the timer that ends the subscription when its session expires (cancelled at once
    /// when the subscription already ended).
    func setExpiryTimer(_ timer: Scheduled<Void>) {
        let ended = state.withLock { state in
            if case .ended = state.phase { return true }
            state.expiryTimer = timer
            return false
        }
        if ended { timer.cancel() }
    }

    /// Its session ended (`reason`: `session revoked`, `session expired`): ends after the events
    /// already sent, with `events.ended`.
    func endSession(reason: String) {
        let timer = state.withLock { state -> Scheduled<Void>? in
            if case .ended = state.phase { return nil }
            state.phase = .ended
            var buffer = ByteBuffer()
            buffer.writeString(
                #"{"jsonrpc":"2.0","method":"\#(EventsNotifications.Ended.name)","params":{"reason":"\#(reason)","subscription":"\#(id)"}}"#)
            state.stream?.finish(with: buffer)
            return state.expiryTimer.take()
        }
        timer?.cancel()
    }

    /// `events.unsubscribe`, or the stream ended on its own.
    func end() {
        let (stream, timer) = state.withLock { state -> (RPCPushStream?, Scheduled<Void>?) in
            state.phase = .ended
            return (state.stream, state.expiryTimer.take())
        }
        timer?.cancel()
        stream?.close()
    }

    /// Marks the subscription ended without touching the stream (it already ended).
    func streamEnded() {
        state.withLock { state in
            state.phase = .ended
            return state.expiryTimer.take()
        }?.cancel()
    }

    static func overflowMessage(subscription: String, lastSeq: Int64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(
            #"{"jsonrpc":"2.0","method":"\#(EventsNotifications.Overflow.name)","params":{"subscription":"\#(subscription)","lastSeq":\#(lastSeq)}}"#)
        return buffer
    }
}
