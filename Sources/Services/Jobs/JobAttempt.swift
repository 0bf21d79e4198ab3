import RPC
import Synchronization

/// One claimed job while a worker holds it: its handler's task, why it was told to stop, and how
/// it ended. Shared by the workers' loop, the attempt's own task, its heartbeats, `jobs.cancel`
/// (`JobWorkers.cancelRunning`) and shutdown.
final class JobAttempt: Sendable {
    /// Why the worker stopped the attempt's handler; the highest one asked wins.
    enum StopReason: Int, Comparable, Sendable {
        /// Graceful shutdown: the job is released (it runs again at the next start).
        case shutdown
        /// `jobs.cancel`: the job ends `cancelled`.
        case cancelRequested
        /// Another worker holds the job now: nothing is stored.
        case lost

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    enum Outcome: Sendable {
        /// The handler returned or threw.
        case finished(Result<JSONFragment?, any Error>)
        /// Shutdown stopped waiting for a handler that did not stop when cancelled.
        case abandoned
    }

    let claimed: ClaimedJob
    let handler: any JobHandler

    private struct State {
        var stopReason: StopReason?
        var task: Task<Void, Never>?
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
    }

    // Only touched under the mutex; tasks are cancelled and continuations resumed after it is released.
    private let state = Mutex(State())

    init(claimed: ClaimedJob, handler: any JobHandler) {
        self.claimed = claimed
        self.handler = handler
    }

    var lease: JobLease { claimed.lease }
    var kind: String { claimed.job.kind }
    var stopReason: StopReason? { state.withLock { $0.stopReason } }

    /// Runs the handler in a task of its own. Not a child of the worker's task: cancelling it is
    /// how one attempt stops, and shutdown must be able to give up on a handler that ignores that.
    func start() {
        let handler = handler
        let claimed = claimed
        let task = Task {
            let result: Result<JSONFragment?, any Error>
            do {
                result = .success(try await handler.run(claimed))
            } catch {
                result = .failure(error)
            }
            self.deliver(.finished(result))
        }
        let stopAtOnce = state.withLock { state -> Bool in
            state.task = task
            return state.stopReason != nil
        }
        if stopAtOnce { task.cancel() }
    }

    /// Cancels the handler's task, remembering why (unless a weightier reason came first).
    func stop(_ reason: StopReason) {
        let task = state.withLock { state -> Task<Void, Never>? in
            if let current = state.stopReason, current >= reason { return nil }
            state.stopReason = reason
            return state.task
        }
        task?.cancel()
    }

    /// Ends the wait for a handler that has not stopped (shutdown's timeout passed).
    func abandon() {
        deliver(.abandoned)
    }

    /// How the attempt ended: the first of the handler's end and `abandon()`.
    func outcome() async -> Outcome {
        await withCheckedContinuation { continuation in
            let outcome = state.withLock { state -> Outcome? in
                if state.outcome == nil { state.waiter = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }

    private func deliver(_ outcome: Outcome) {
        let waiter = state.withLock { state -> CheckedContinuation<Outcome, Never>? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }
}
