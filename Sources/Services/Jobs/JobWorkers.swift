import Foundation
import Logging
import RPC
import Synchronization

/// Runs the queue's jobs in this process: per kind up to its concurrency at once, each attempt
/// holding a lease it renews, with retries, crash recovery, cancellation and graceful shutdown.
/// The daemon runs it in its service group (`JobWorkersService`); everything it waits on (the
/// clock, sleeps, jitter) is injected, so tests drive it without waiting.
///
/// - Claiming: whenever a kind has free slots and may have work due. A kind is looked at when an
///   enqueue in this process woke it (`JobScheduler` → `JobWakeSignal`: no polling on that path),
///   when one of its slots was given up, and otherwise when the earliest due job (`JobQueue.nextDue`)
///   is due or every `Settings.pollInterval`, for jobs other processes enqueued and for leases of
///   workers that died. A slot whose attempt ended claims its next job itself (a success: in the
///   same write as its end, `complete(…thenClaim:)`) and gives the slot up only when none is due.
/// - One heartbeat loop renews the leases of all running attempts every third of the shortest
///   kind's `policy.lease` (each for its own kind's lease). `.cancelRequested` (`jobs.cancel` seen
///   by a heartbeat, or `cancelRunning` here) cancels its handler's task and ends it `cancelled`;
///   `.lost` cancels it and stores nothing.
/// - The end: success → `complete`; an error its kind calls retriable with attempts left →
///   `fail(retryAt:)` after a backoff with jitter (`JobKindPolicy.backoff`); any other → `failed`
///   with a `JobError`. A recovered job (its worker died) of a kind that may not run again, or
///   with no attempts left, ends `failed` with `JobError.interrupted` without running.
/// - `shutdown(timeout:)`: no more claims; running attempts are cancelled and released (they run
///   again at the next start), waiting for their handlers at most `timeout`.
public final class JobWorkers: JobCanceller, Sendable {
    public struct Settings: Sendable {
        /// Attempts at once per kind, overriding the kind's `policy.concurrency` (`jobs.concurrency.*`).
        public var concurrency: [String: Int]
        /// The longest the workers go without looking at the queue when nothing woke them.
        public var pollInterval: Duration

        public init(concurrency: [String: Int] = [:], pollInterval: Duration = .seconds(5)) {
            self.concurrency = concurrency
            self.pollInterval = pollInterval
        }
    }

    /// Names this process's claims (`Job.workerId`): the host, then a random part.
    public let workerID: String
    private let queue: any JobQueue
    private let handlers: [String: any JobHandler]
    private let limits: [String: Int]
    private let signal: JobWakeSignal
    private let clock: any WallClock
    private let sleeper: any JobSleeper
    private let random: @Sendable () -> Double
    private let settings: Settings
    private let logger: Logger

    private struct State {
        /// By job id.
        var running: [String: JobAttempt] = [:]
        var runningByKind: [String: Int] = [:]
        var stopping = false
        /// `waitUntilIdle` callers, by a number of their own.
        var idleWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    // Only touched under the mutex; continuations are resumed after it is released.
    private let state = Mutex(State())
    /// Woken when a slot is given up (and at shutdown): what the claiming loop waits for while
    /// every slot is busy.
    private let slotFreed = JobWakeSignal()

    /// A wait when the queue says a job is due already but the last claim found none (a job
    /// enqueued by another process in between, clocks that disagree): short, but never a spin.
    static let minimumWait: Duration = .milliseconds(50)

    /// - Parameters:
    ///   - handlers: one per kind (a kind registered twice is a programming error).
    ///   - signal: the one the `JobScheduler`s that enqueue in this process wake.
    ///   - random: uniform in 0..<1, for the backoff's jitter.
    public init(
        queue: any JobQueue, handlers: [any JobHandler], signal: JobWakeSignal, workerID: String, clock: any WallClock,
        sleeper: any JobSleeper = TaskSleeper(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        settings: Settings = Settings(), logger: Logger
    ) {
        var byKind: [String: any JobHandler] = [:]
        for handler in handlers {
            precondition(byKind[handler.policy.kind] == nil, "job kind \(handler.policy.kind) registered twice")
            byKind[handler.policy.kind] = handler
        }
        self.handlers = byKind
        self.limits = byKind.mapValues { max(1, settings.concurrency[$0.policy.kind] ?? $0.policy.concurrency) }
        self.queue = queue
        self.signal = signal
        self.workerID = workerID
        self.clock = clock
        self.sleeper = sleeper
        self.random = random
        self.settings = settings
        var logger = logger
        logger[metadataKey: "worker_id"] = "\(workerID)"
        self.logger = logger
        for kind in settings.concurrency.keys.sorted() where byKind[kind] == nil {
            logger.warning("a concurrency is set for a job kind no handler runs here; ignored", metadata: ["kind": "\(kind)"])
        }
    }

    /// `host-` and 8 random hex digits.
    public static func makeWorkerID(host: String) -> String {
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        return host + "-" + String(repeating: "0", count: 8 - suffix.count) + suffix
    }

    /// The kinds registered, and how many of each may run at once here.
    public var concurrency: [String: Int] { limits }

    /// Claims and runs jobs until `shutdown(timeout:)` (or until the calling task is cancelled);
    /// returns once every attempt it started has ended or been released.
    public func run() async {
        let kinds = Set(handlers.keys)
        guard !kinds.isEmpty else { return }
        // One heartbeat loop for every attempt, not a timer per attempt: at thousands of short
        // jobs a second, creating and cancelling a sleep per attempt cost more than the jobs. Not a
        // child of the group below: it renews leases until the last attempt has ended.
        let beats = Task { await self.heartbeats() }
        await withDiscardingTaskGroup { group in
            var due = kinds
            while !isStopping, !Task.isCancelled {
                // Frees from before this look are seen by it.
                _ = slotFreed.take()
                due.formUnion(signal.take().intersection(kinds))
                for kind in due.sorted() {
                    let free = freeSlots(kind)
                    // A full kind stays due: the end of one of its attempts wakes it.
                    guard free > 0, !isStopping else { continue }
                    let claimed: [ClaimedJob]
                    do {
                        claimed = try await queue.claim(
                            kinds: [kind], workerID: workerID, limit: free, lease: handlers[kind]!.policy.lease, now: clock.now())
                    } catch {
                        // Looked at again at the next poll, not in a loop against a failing database.
                        logger.error("could not claim jobs", metadata: ["kind": "\(kind)", "error": "\(error)"])
                        due.remove(kind)
                        continue
                    }
                    if claimed.count < free { due.remove(kind) }
                    for job in claimed {
                        let attempt = register(job)
                        group.addTask { await self.runSlot(attempt) }
                    }
                }
                if isStopping || Task.isCancelled { break }
                // Claimed as many as it had slots: there may be more.
                if due.contains(where: { freeSlots($0) > 0 }) { continue }
                if kinds.contains(where: { freeSlots($0) > 0 }) {
                    await signal.wait(timeout: await idleWait(kinds: kinds), sleeper: sleeper)
                } else {
                    // Every slot is busy: only a slot that frees up (or shutdown) gives this loop
                    // work. Enqueues are noted in `signal` without waking it: under load they
                    // came thousands of times a second, each a wake-up and a new timer for nothing.
                    await slotFreed.wait(timeout: settings.pollInterval, sleeper: sleeper)
                }
                // Woken for some kinds, or the wait ran out: then every kind is looked at.
                let woken = signal.take().intersection(kinds)
                due.formUnion(woken.isEmpty ? kinds : woken)
            }
        }
        beats.cancel()
        await beats.value
    }

    /// Stops claiming, cancels the running attempts and releases them, waiting at most `timeout`
    /// for their handlers to stop; those that have not by then are released anyway. `run()`
    /// returns soon after.
    public func shutdown(timeout: Duration) async {
        let attempts = state.withLock { state -> [JobAttempt] in
            state.stopping = true
            return Array(state.running.values)
        }
        // Wakes the loop if it waits (no kind has that name: it claims nothing more).
        signal.wake(kind: "")
        slotFreed.wake(kind: "")
        for attempt in attempts { attempt.stop(.shutdown) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitUntilIdle() }
            group.addTask { [sleeper] in try? await sleeper.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        let stuck = state.withLock { Array($0.running.values) }
        for attempt in stuck {
            logger.warning(
                "a job did not stop within the shutdown timeout; released",
                metadata: ["job_id": "\(attempt.lease.jobID)", "kind": "\(attempt.kind)"])
            attempt.abandon()
        }
    }

    /// Cancels the attempt of `jobID` running here (`jobs.cancel`, after the queue marked it
    /// `cancelRequested`): its handler's task is cancelled and the job ends `cancelled`.
    @discardableResult
    public func cancelRunning(jobID: String) -> Bool {
        guard let attempt = state.withLock({ $0.running[jobID] }) else { return false }
        attempt.stop(.cancelRequested)
        return true
    }

    /// The ids of the jobs running here now.
    public var runningJobIDs: Set<String> { state.withLock { Set($0.running.keys) } }

    // MARK: - Slots

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func freeSlots(_ kind: String) -> Int {
        let running = state.withLock { $0.runningByKind[kind, default: 0] }
        return (limits[kind] ?? 0) - running
    }

    private func register(_ claimed: ClaimedJob) -> JobAttempt {
        let attempt = JobAttempt(claimed: claimed, handler: handlers[claimed.job.kind]!)
        let stopping = state.withLock { state -> Bool in
            state.running[claimed.job.id] = attempt
            state.runningByKind[claimed.job.kind, default: 0] += 1
            return state.stopping
        }
        // Claimed while shutdown began: given back without running.
        if stopping { attempt.stop(.shutdown) }
        return attempt
    }

    private func unregister(_ attempt: JobAttempt) {
        let idle = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running[attempt.lease.jobID] = nil
            state.runningByKind[attempt.kind, default: 1] -= 1
            guard state.running.isEmpty else { return [] }
            defer { state.idleWaiters = [:] }
            return Array(state.idleWaiters.values)
        }
        for waiter in idle { waiter.resume() }
        // A slot is free: the kind may have more due.
        signal.wake(kind: attempt.kind)
        slotFreed.wake(kind: attempt.kind)
    }

    /// Returns when no attempt runs here (or when the calling task is cancelled).
    private func waitUntilIdle() async {
        let id = state.withLock { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.running.isEmpty || Task.isCancelled { return true }
                    state.idleWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.idleWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// How long to wait when nothing is claimable: until the earliest job of a kind with free
    /// slots is due, at most the poll interval.
    private func idleWait(kinds: Set<String>) async -> Duration {
        let open = kinds.filter { freeSlots($0) > 0 }
        guard !open.isEmpty else { return settings.pollInterval }
        do {
            guard let due = try await queue.nextDue(kinds: open) else { return settings.pollInterval }
            let untilDue = due.timeIntervalSince(clock.now())
            return untilDue <= 0 ? Self.minimumWait : min(settings.pollInterval, .seconds(untilDue))
        } catch {
            logger.error("could not read when the next job is due", metadata: ["error": "\(error)"])
            return settings.pollInterval
        }
    }

    // MARK: - One attempt

    /// Runs `first`, then, while its kind has jobs due, the next ones in the same slot: the slot
    /// claims its successor itself (one job) instead of waking the claiming loop, which saves a
    /// task and two wake-ups per job under load. The loop is woken when the slot frees up.
    private func runSlot(_ first: JobAttempt) async {
        var attempt = first
        while true {
            var next: ClaimedJob?
            switch await runAttempt(attempt) {
            case .claimed(let claimed): next = claimed
            case .notClaimed:
                if !isStopping, !Task.isCancelled { next = await claimOne(kind: attempt.kind) }
            }
            // A job claimed is run (or, when shutdown began, released) whatever happens: it is
            // this worker's until then.
            guard let next else { break }
            attempt = replace(attempt, with: next)
        }
        unregister(attempt)
    }

    /// What a slot's attempt left for it.
    private enum SlotNext {
        /// Its end was stored with the next claim (`complete(…thenClaim:)`): its result, nil for none due.
        case claimed(ClaimedJob?)
        /// The slot claims its next job itself, unless the workers stop.
        case notClaimed
    }

    /// One more job of `kind` for a slot; nil when none is due or the claim failed.
    private func claimOne(kind: String) async -> ClaimedJob? {
        do {
            return try await queue.claim(kinds: [kind], workerID: workerID, limit: 1, lease: handlers[kind]!.policy.lease, now: clock.now()).first
        } catch {
            // The claiming loop, woken when the slot is given up, tries again.
            logger.error("could not claim jobs", metadata: ["kind": "\(kind)", "error": "\(error)"])
            return nil
        }
    }

    /// Puts the attempt of `claimed` in `previous`'s place (same kind, same slot).
    private func replace(_ previous: JobAttempt, with claimed: ClaimedJob) -> JobAttempt {
        let attempt = JobAttempt(claimed: claimed, handler: handlers[claimed.job.kind]!)
        let stopping = state.withLock { state -> Bool in
            state.running[previous.lease.jobID] = nil
            state.running[claimed.job.id] = attempt
            return state.stopping
        }
        // Claimed while shutdown began: given back without running.
        if stopping { attempt.stop(.shutdown) }
        return attempt
    }

    private func runAttempt(_ attempt: JobAttempt) async -> SlotNext {
        let job = attempt.claimed.job
        let policy = attempt.handler.policy
        var jobLogger = logger
        jobLogger[metadataKey: "job_id"] = "\(job.id)"
        jobLogger[metadataKey: "kind"] = "\(job.kind)"
        jobLogger[metadataKey: "attempt"] = "\(job.attempt)"
        let logger = jobLogger
        if attempt.claimed.recovered, !policy.rerunAfterCrash || job.attempt > job.maxAttempts {
            logger.notice("job interrupted by a stop of its worker; its kind does not run again", metadata: ["max_attempts": "\(job.maxAttempts)"])
            await store(logger) { try await $0.fail(attempt.lease, error: .interrupted, retryAt: nil, at: clock.now()) }
            return .notClaimed
        }
        if job.cancelRequested {
            await store(logger) { try await $0.fail(attempt.lease, error: Self.cancelled, retryAt: nil, at: clock.now()) }
            return .notClaimed
        }
        if attempt.stopReason == .shutdown {
            await store(logger) { try await $0.release(attempt.lease, at: clock.now()) }
            return .notClaimed
        }
        if attempt.claimed.recovered { logger.notice("job recovered after a stop of its worker; running it again") }
        attempt.start()
        let outcome = await withTaskCancellationHandler {
            await attempt.outcome()
        } onCancel: {
            // The workers' own task was cancelled (not a graceful shutdown): stop waiting.
            attempt.stop(.shutdown)
            attempt.abandon()
        }
        return await finish(attempt, outcome, policy: policy, logger: logger)
    }

    /// Every `heartbeatInterval`, renews the lease of every attempt running here (each for its
    /// kind's `policy.lease`), telling an attempt to stop when its job's cancel was asked for or
    /// its lease was lost. Until cancelled (after the last attempt ended).
    private func heartbeats() async {
        let interval = heartbeatInterval
        while true {
            do {
                try await sleeper.sleep(for: interval)
            } catch {
                return
            }
            let attempts = state.withLock { Array($0.running.values) }
            // At once, so that they share a write of the queue (the group commit on SQLite).
            await withDiscardingTaskGroup { group in
                for attempt in attempts where attempt.stopReason != .lost {
                    group.addTask { await self.renew(attempt) }
                }
            }
        }
    }

    /// A third of the shortest lease of the kinds run here: an attempt's lease is renewed at most
    /// that long after it began or was last renewed, at least twice before it would expire.
    private var heartbeatInterval: Duration {
        handlers.values.map { $0.policy.lease / 3 }.min() ?? .seconds(10)
    }

    private func renew(_ attempt: JobAttempt) async {
        let lease = attempt.handler.policy.lease
        do {
            let until = clock.now().addingTimeInterval(JobKindPolicy.seconds(lease))
            switch try await queue.heartbeat(attempt.lease, until: until) {
            case .held:
                break
            case .cancelRequested:
                attempt.stop(.cancelRequested)
            case .lost:
                // Ended here since the beat began: its lease went with its end.
                guard state.withLock({ $0.running[attempt.lease.jobID] === attempt }) else { return }
                var logger = logger
                logger[metadataKey: "job_id"] = "\(attempt.lease.jobID)"
                logger[metadataKey: "kind"] = "\(attempt.kind)"
                logger.warning("lost the lease of a running job; stopping it")
                attempt.stop(.lost)
            }
        } catch {
            // Tried again at the next beat; the lease holds for two more.
            logger.warning("could not renew a job's lease", metadata: ["job_id": "\(attempt.lease.jobID)", "error": "\(error)"])
        }
    }

    private func finish(_ attempt: JobAttempt, _ outcome: JobAttempt.Outcome, policy: JobKindPolicy, logger: Logger) async -> SlotNext {
        let lease = attempt.lease
        let job = attempt.claimed.job
        switch (attempt.stopReason, outcome) {
        case (.lost, _):
            logger.notice("job attempt stopped after its lease was lost; nothing stored")
        case (_, .abandoned):
            await store(logger) { try await $0.release(lease, at: clock.now()) }
        case (_, .finished(.success(let result))):
            // Done, even if a stop came too late to matter: the work is not thrown away.
            if attempt.stopReason != nil || isStopping {
                await store(logger) { try await $0.complete(lease, result: result, at: clock.now()) }
                return .notClaimed
            }
            // With the slot's next job in the same write.
            var claimed: ClaimedJob?
            await store(logger) {
                claimed = try await $0.complete(lease, result: result, at: clock.now(), thenClaim: [attempt.kind], limit: 1, lease: policy.lease)
                    .claimed.first
            }
            return .claimed(claimed)
        case (.shutdown, .finished(.failure)):
            await store(logger) { try await $0.release(lease, at: clock.now()) }
        case (.cancelRequested, .finished(.failure)):
            await store(logger) { try await $0.fail(lease, error: Self.cancelled, retryAt: nil, at: clock.now()) }
        case (nil, .finished(.failure(let error))):
            let jobError = Self.jobError(for: error)
            if jobError.kind == "internal" {
                logger.error("job failed", metadata: ["error": "\(error)"])
            }
            let now = clock.now()
            if policy.isRetriable(error), job.attempt < job.maxAttempts {
                var wait = JobKindPolicy.seconds(policy.backoff(beforeRetry: job.attempt, random: random()))
                // A provider that said when to come back is not asked before.
                if let llm = error as? LLMError, let retryAfterMs = llm.retryAfterMs {
                    wait = max(wait, Double(retryAfterMs) / 1000)
                }
                let retryAt = now.addingTimeInterval(wait)
                logger.info(
                    "job attempt failed; retrying", metadata: ["error_kind": "\(jobError.kind)", "retry_at": "\(retryAt.timeIntervalSince1970)"])
                await store(logger) { try await $0.fail(lease, error: jobError, retryAt: retryAt, at: now) }
            } else {
                logger.info("job failed", metadata: ["error_kind": "\(jobError.kind)"])
                await store(logger) { try await $0.fail(lease, error: jobError, retryAt: nil, at: now) }
            }
        }
        return .notClaimed
    }

    /// What a stopped job is failed with: the queue ends it `cancelled` (its cancel was requested).
    static let cancelled = JobError(kind: "cancelled", message: "the job was cancelled")

    /// The error a failed job keeps: a `JobError` as it is, an `LLMError` as its kind and message,
    /// anything else `internal` (its details go to the log only, as for an RPC reply).
    public static func jobError(for error: any Error) -> JobError {
        switch error {
        case let error as JobError: error
        case let error as LLMError: JobError(kind: error.kind.rawValue, message: error.message)
        default: JobError(kind: "internal", message: "Internal error")
        }
    }

    /// Writes an attempt's end; a failure is logged (the lease then expires and the job is claimed
    /// again as recovered), a lost lease is not an error.
    private func store<T>(_ logger: Logger, _ write: (any JobQueue) async throws -> T) async {
        do {
            _ = try await write(queue)
        } catch JobsError.leaseLost {
            logger.notice("job's lease was lost before its end was stored; nothing stored")
        } catch {
            logger.error("could not store a job's end", metadata: ["error": "\(error)"])
        }
    }
}
