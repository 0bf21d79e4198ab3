import Synchronization

/// One run going on in this process: what `agent.cancel` stops and waits for. Registered before the
/// run's start is stored (so a client that learns the run id from `agent.run.started` can always
/// cancel it); the run watches it for a cancel request while it generates.
final class AgentRunHandle: Sendable {
    private struct State {
        var cancelled = false
        /// The run's watcher, parked until `cancel()` (or until the run ends and cancels it).
        var watcher: CheckedContinuation<Void, Never>?
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let userID: String
    // Invariant: only touched under the mutex; `waiters` is emptied when `finished` is set.
    private let state = Mutex(State())

    init(userID: String) {
        self.userID = userID
    }

    /// Asks the run to stop: `untilCancelled()` returns, and the run cancels its generation.
    func cancel() {
        let watcher = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.cancelled = true
            defer { state.watcher = nil }
            return state.watcher
        }
        watcher?.resume()
    }

    /// Whether `cancel()` was called (`agent.cancel`).
    var isCancelRequested: Bool { state.withLock { $0.cancelled } }

    /// Returns when `cancel()` is called (at once when it already was), or when the calling task
    /// is cancelled. One watcher at a time: the run's.
    func untilCancelled() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.cancelled || Task.isCancelled { return true }
                    state.watcher = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let watcher = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.watcher = nil }
                return state.watcher
            }
            watcher?.resume()
        }
    }

    /// The run's end is stored.
    func markFinished() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the run's end is stored.
    func waitUntilFinished() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
