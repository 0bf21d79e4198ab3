import Foundation
import RPC

// Background runs (`background: true`): the start stored and the job enqueued; each attempt as
// the `agent.run` job runs it (AgentRunJob); the sweep at start for runs whose job is gone.
extension AgentService {
    /// Background runs a user may have going (queued or running) at once.
    public static let maxBackgroundRunsPerUser = 32

    /// Stores the start (question, chat, run row with its job id), then enqueues the job.
    ///
    /// Two steps, not one transaction (the queue is its own store): a crash between them leaves a
    /// `running` background run without a job, which `failInterruptedRuns` at the next start ends
    /// `failed` (`interrupted`), as it does a foreground run. Nothing promised is lost: the
    /// client is given the ids only after the job is stored, so a call that got no reply is the
    /// only one whose run can end that way, exactly like a foreground call cut by the same crash.
    func startInBackground(_ prepared: PreparedRun, userID: String) async throws -> AgentBackgroundRun {
        guard let scheduler else {
            throw AgentError.invalid(field: "background", reason: "this daemon runs no job queue; call without background")
        }
        // A background call returns at once, so the `agent` class's calls in progress do not bound
        // its runs: this does (checked before the insert, not with it: a user's two calls in
        // progress may pass it together, so at most one more).
        guard try await store.runningBackgroundRunCount(userID: userID) < Self.maxBackgroundRunsPerUser else {
            throw AgentError.tooManyBackgroundRuns(limit: Self.maxBackgroundRunsPerUser)
        }
        let jobID = ids.makeID(prefix: "job_")
        var run = prepared.run
        run.jobId = jobID
        run.attempt = 1
        var start = prepared.start
        start.run = run
        let question = try await store.start(start, userID: userID) ?? prepared.question
        guard let question else { throw AgentError.notFound(kind: "message", id: run.userMessageId) }
        let payload = AgentRunJob.Payload(runId: run.id, options: prepared.options, system: prepared.system)
        do {
            _ = try await scheduler.enqueue(
                NewJob(
                    id: jobID, kind: AgentRunJob.kind, ownerID: userID, payload: try JSONFragment(encoding: payload),
                    maxAttempts: AgentRunJob.maxAttempts, runAfter: clock.now(), idempotencyKey: run.id))
        } catch {
            // No job will run it: end it now rather than leave it running until the next start.
            _ = await end(run, .failed, progress: Progress(), error: error, userID: userID)
            throw error
        }
        return AgentBackgroundRun(runId: run.id, jobId: jobID, chatId: run.chatId, messageId: question.id)
    }

    /// Runs attempt `attempt` of a background run, from the beginning, with the ordinary run loop
    /// (`execute`): registered for `agent.cancel`, deltas to `onDelta`. Returns the run as it ended,
    /// or as it already was when it is not running (an earlier attempt stored its end just before
    /// a crash, or `agent.cancel` ended it while its job waited).
    ///
    /// - Parameter lastAttempt: no attempt follows this one; otherwise a transient provider error
    ///   before any delta leaves the run running and is thrown (the job retries it).
    /// - Throws: the `LLMError` to retry; `CancellationError` when the attempt was stopped without
    ///   a cancel (a shutdown: the run stays running for the job's next claim); `JobError` for a run
    ///   that ended failed (`kind` as the run's error) or cancelled (`cancelled`).
    func runAttempt(
        runID: String, userID: String, jobID: String, attempt: Int, lastAttempt: Bool, options: Agent.Options, system: String?,
        onDelta: @escaping @Sendable (AgentDelta) -> Void
    ) async throws -> AgentRun {
        let handle = AgentRunHandle(userID: userID)
        registry.add(runID, handle)
        defer {
            handle.markFinished()
            registry.remove(runID)
        }
        guard let run = try await store.beginAttempt(runID: runID, userID: userID, attempt: attempt) else {
            // Ended already (or gone with its chat): nothing to run again.
            guard let stored = try await store.run(id: runID, userID: userID) else { throw JobError(kind: "notFound", message: "the run is gone") }
            return stored
        }
        guard let question = try await chats.message(id: run.userMessageId, userID: userID) else {
            let missing = AgentError.notFound(kind: "message", id: run.userMessageId)
            _ = await end(run, .failed, progress: Progress(), error: missing, userID: userID)
            throw JobError(kind: "notFound", message: "the question is gone")
        }
        // Watchers (agent.runs.watch) get this attempt's deltas, numbered from 1, and the run's end;
        // an abandoned attempt suspends the stream instead: they wait for the next attempt.
        let stream = streams.begin(run, userID: userID, attempt: attempt)
        defer { streams.close(stream) }
        let jobs = self.jobs
        let outcome = await execute(
            run, handle: handle, question: question, system: system, options: options, userID: userID, onDelta: stream.publishing(onDelta),
            timedOut: { nil },
            abandons: { error, streamed in
                if let error {
                    // Retried: what the provider taxonomy calls transient, while nothing was streamed
                    // (a watcher saw no text that the next attempt would contradict).
                    guard !lastAttempt, !streamed, let error = error as? LLMError else { return false }
                    return LLMRetryPolicy().shouldRetry(error)
                }
                // Cancelled: by agent.cancel or jobs.cancel (the run ends cancelled), or by a
                // shutdown (it stays running; the job runs it again after the restart).
                if handle.isCancelRequested { return false }
                let job = try? await Task { try await jobs?.job(id: jobID, ownerID: userID) }.value
                return job.flatMap { $0 }.map { !$0.cancelRequested && $0.state == .running } ?? true
            })
        if case .failure(let failure) = outcome, failure is AgentAttemptAbandoned {
            await streams.suspend(stream)
        } else {
            await streams.end(stream, Self.ended(run, outcome))
        }
        switch outcome {
        case .success:
            return try await self.run(id: runID, userID: userID)
        case .failure(let failure as AgentAttemptAbandoned):
            throw failure.error
        case .failure(let error as AgentError):
            if case .cancelled = error { throw JobError(kind: "cancelled", message: "the run was cancelled") }
            let summary = Self.summary(error)
            throw JobError(kind: summary.kind, message: summary.message)
        case .failure(let error):
            let summary = Self.summary(error)
            throw JobError(kind: summary.kind, message: summary.message)
        }
    }

    /// At start, after the foreground runs are failed: a background run still `running` goes on
    /// when its job is live (the workers claim it again); one whose job is missing (a crash
    /// between its start and its enqueue) or ended (its job failed or was cancelled without it)
    /// ends too, so that none stays `running`. Returns how many ended.
    func endOrphanedBackgroundRuns() async throws -> Int {
        guard let jobs else { return 0 }
        var ended = 0
        for owned in try await store.runningBackgroundRuns() {
            let job = try await owned.run.jobId.asyncFlatMap { try await jobs.job(id: $0, ownerID: owned.userID) }
            if await settle(owned.run, userID: owned.userID, job: job) { ended += 1 }
        }
        return ended
    }

    /// An `agent.run` job ended `failed` or `cancelled` (its event): when no attempt of its run is
    /// going on here, the run ends too. That is the case of a job cancelled while queued
    /// (`jobs.cancel`), or failed by the workers without an attempt (a crash with no attempt
    /// left); when an attempt ran, it stored the run's end before its job ended, and this changes
    /// nothing.
    public func jobEnded(jobID: String, userID: String) async {
        guard let jobs else { return }
        do {
            guard let job = try await jobs.job(id: jobID, ownerID: userID), job.kind == AgentRunJob.kind, job.state.isFinished,
                let payload = try? job.payload.decode(AgentRunJob.Payload.self), registry.handle(payload.runId, userID: userID) == nil,
                let run = try await store.run(id: payload.runId, userID: userID), run.status == .running
            else { return }
            await settle(run, userID: userID, job: job)
        } catch {
            logger.error("could not end the run of an ended agent.run job", metadata: ["job": "\(jobID)", "error": "\(String(reflecting: error))"])
        }
    }

    /// Ends a running background run whose job is missing or ended; returns whether it did.
    @discardableResult
    private func settle(_ run: AgentRun, userID: String, job: Job?) async -> Bool {
        if let job, !job.state.isFinished { return false }
        let status: AgentRunStatus = job?.state == .cancelled ? .cancelled : .failed
        let error =
            job?.error
            ?? JobError(
                kind: job == nil ? "interrupted" : "internal",
                message: job == nil ? "agentd stopped before the run's job was stored" : "its job ended without running it")
        _ = await end(run, status, progress: Progress(), error: status == .failed ? error : nil, userID: userID)
        return true
    }
}

extension Optional {
    fileprivate func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
