import Synchronization

/// Work handed from any thread to one consumer that drains it in a task of its own, with at most
/// one drain scheduled at a time.
///
/// Items added while a drain is already scheduled wait for that drain, which takes them all: under
/// load one drain carries many hand-offs (one wake-up and one pass instead of one each), and a lone
/// item is drained at once. The caller schedules the drain, on whatever runs it (an event loop, a
/// dispatch queue), when `append` says so; the drain starts with `takeAll()`.
///
/// Used where producers must never wait for the consumer: the group-commit writer's jobs (drained a
/// transaction at a time on the writer's queue), the event bus's commits (drained on its dispatch
/// queue) and a connection's push operations (drained on its event loop).
public struct CoalescingQueue<Item: Sendable>: ~Copyable, Sendable {
    private let state = Mutex<(waiting: [Item], drainScheduled: Bool)>(([], false))

    public init() {}

    /// Adds `item` after those waiting. Returns true when no drain was scheduled: the caller must
    /// schedule one now.
    public func append(_ item: Item) -> Bool {
        state.withLock { state in
            state.waiting.append(item)
            return Self.claimDrain(&state.drainScheduled)
        }
    }

    /// Adds `items` after those waiting, in order. Returns true when the caller must schedule a
    /// drain (as `append(_:)`).
    public func append(contentsOf items: [Item]) -> Bool {
        state.withLock { state in
            state.waiting += items
            return Self.claimDrain(&state.drainScheduled)
        }
    }

    /// In the drain: everything waiting, oldest first. From here on the next `append` schedules a
    /// new drain, so an item added while this one works on what it took is not left behind.
    public func takeAll() -> [Item] {
        state.withLock { state in
            state.drainScheduled = false
            defer { state.waiting = [] }
            return state.waiting
        }
    }

    /// In the drain: at most `limit` items, oldest first, and whether more are waiting. When more
    /// are, the drain stays claimed and the caller schedules the next one (a bounded drain, such as
    /// one transaction of at most `limit` writes); otherwise the next `append` schedules it.
    public func take(upTo limit: Int) -> (items: [Item], more: Bool) {
        state.withLock { state in
            let count = min(state.waiting.count, limit)
            let items = Array(state.waiting.prefix(count))
            state.waiting.removeFirst(count)
            state.drainScheduled = !state.waiting.isEmpty
            return (items, state.drainScheduled)
        }
    }

    /// Items waiting for a drain.
    public var count: Int { state.withLock { $0.waiting.count } }

    private static func claimDrain(_ drainScheduled: inout Bool) -> Bool {
        if drainScheduled { return false }
        drainScheduled = true
        return true
    }
}
