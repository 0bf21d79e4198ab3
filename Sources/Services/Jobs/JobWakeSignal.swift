import Synchronization

/// Tells this process's workers (`JobWorkers`) that a kind may have work due now: a job was
/// enqueued or retried here (`JobScheduler`), or one of their attempts ended and freed a slot.
///
/// Separate from the workers so that the services which enqueue can be built before the workers
/// and their handlers (which hold those same services): the composition root makes one signal and
/// gives it to both. Waking is cheap and never waits; wakes that arrive while the workers are busy
/// are kept and taken together at their next look.
public final class JobWakeSignal: Sendable {
    private struct State {
        /// Kinds woken since the workers last took them.
        var kinds: Set<String> = []
        /// The one waiter (the workers' loop), suspended until a wake.
        var waiter: CheckedContinuation<Void, Never>?
    }

    // Only touched under the mutex; a continuation is resumed after the lock is released.
    private let state = Mutex(State())

    public init() {}

    /// Marks `kind` as possibly having work due now and wakes the workers if they wait.
    public func wake(kind: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.kinds.insert(kind)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The kinds woken since the last call, and forgets them.
    func take() -> Set<String> {
        state.withLock { state in
            defer { state.kinds = [] }
            return state.kinds
        }
    }

    /// Returns once a kind is woken (at once when one already is), or when the calling task is
    /// cancelled. One waiter at a time.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if !state.kinds.isEmpty || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Returns once a kind is woken, or after `timeout` on `sleeper`, or when the calling task is
    /// cancelled.
    func wait(timeout: Duration, sleeper: any JobSleeper) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await sleeper.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
