import Synchronization

/// One run going on in this process: what `agent.cancel` stops and waits for. Registered before the
/// run's start is stored (so a client that learns the run id from `agent.run.started` can always
/// cancel it), attached to the run's task once that exists.
final class AgentRunHandle: Sendable {
    private struct State {
        var cancel: (@Sendable () -> Void)?
        var cancelled = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let userID: String
    // Invariant: only touched under the mutex; `waiters` is emptied when `finished` is set.
    private let state = Mutex(State())

    init(userID: String) {
        self.userID = userID
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Cancels the run's task: now when attached, else as soon as it is.
    func cancel() {
        let cancel = state.withLock { state -> (@Sendable () -> Void)? in
            state.cancelled = true
            return state.cancel
        }
        cancel?()
    }

    func attach(cancel: @escaping @Sendable () -> Void) {
        let cancelNow = state.withLock { state -> Bool in
            state.cancel = cancel
            return state.cancelled
        }
        if cancelNow { cancel() }
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
