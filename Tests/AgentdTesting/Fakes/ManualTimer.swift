import Synchronization

/// A timer the test fires by hand (`Dependencies.Collaborators.agentPartialTimer`): `wait` parks
/// until `fire()` (or until the waiting task is cancelled, which throws), and records the interval
/// asked for. A test learns that the waiter came back (its work between two waits is done) with
/// `arrivals(atLeast:)`, never by sleeping.
public final class ManualTimer: Sendable {
    private struct State {
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var next: UInt64 = 0
        var arrivals = 0
        var intervals: [Duration] = []
        var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    // Invariant: only touched under the mutex.
    private let state = Mutex(State())

    public init() {}

    /// Every interval asked for, in order.
    public var intervals: [Duration] { state.withLock { $0.intervals } }

    public func wait(_ interval: Duration) async throws {
        let id = state.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // The arrival counts once the wait is registered, so that a `fire()` after
                // `arrivals(atLeast:)` returned always ends it.
                let (cancelled, reached) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if Task.isCancelled { return (true, []) }
                    state.waiters[id] = continuation
                    state.arrivals += 1
                    state.intervals.append(interval)
                    let arrivals = state.arrivals
                    let reached = state.arrivalWaiters.filter { $0.count <= arrivals }.map(\.continuation)
                    state.arrivalWaiters.removeAll { $0.count <= arrivals }
                    return (false, reached)
                }
                for waiter in reached { waiter.resume() }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    /// Ends every wait in progress.
    public func fire() {
        let waiters = state.withLock { state in
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `wait` was called `count` times in all.
    public func arrivals(atLeast count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.arrivals >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }
}
