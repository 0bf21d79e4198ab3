import Foundation

// agent.cancel and agent.runs.*: the runs of this process and the stored ones.
extension AgentService {
    /// Cancels a run going on in this process and returns it once its end is stored; a run that
    /// already ended is returned as it is (so a second cancel is harmless).
    ///
    /// - Throws: `AgentError.notFound` (also for another user's run).
    ///
    /// A background run: its job is cancelled too (a queued job ends `cancelled` at once, and so
    /// does its run here; a running one is marked, and ends `cancelled` when its worker stops it —
    /// at once when it runs in this process).
    public func cancel(runID: String, userID: String) async throws -> AgentRun {
        if let jobs, let stored = try await store.run(id: runID, userID: userID), stored.status == .running, let jobID = stored.jobId {
            // First the job, so that its worker ends it `cancelled` (not retried) when the run stops.
            let job = try? await jobs.cancel(id: jobID, ownerID: userID, at: clock.now())
            if job?.state == .cancelled, registry.handle(runID, userID: userID) == nil {
                // It was queued (not yet claimed, or waiting for a retry): no attempt will end the run.
                _ = await end(stored, .cancelled, progress: Progress(), error: nil, userID: userID)
            }
        }
        if let handle = registry.handle(runID, userID: userID) {
            handle.cancel()
            await handle.waitUntilFinished()
        }
        return try await run(id: runID, userID: userID)
    }

    /// - Throws: `AgentError.notFound` (also for another user's run).
    public func run(id: String, userID: String) async throws -> AgentRun {
        guard let run = try await store.run(id: id, userID: userID) else { throw AgentError.notFound(kind: "run", id: id) }
        return run
    }

    /// Newest first; the keyset cursor keeps pages correct while runs are added.
    ///
    /// - Throws: `AgentError.invalid` (`limit`, `cursor`), `ReplyBudgetError`.
    public func runs(_ params: Agent.Runs.List.Params, userID: String) async throws -> KeysetPage<AgentRun> {
        let limit = try AgentError.validLimit(params.limit, default: Self.defaultRunLimit, max: Self.maxRunLimit)
        let before = try params.cursor.map { try AgentError.position(cursor: $0, from: Agent.Runs.List.name) }
        let rows = try await store.runs(AgentRunQuery(userID: userID, chatID: params.chatId, beforeSeq: before, limit: limit + 1))
        return try KeysetPage(rows: rows, limit: limit, budget: replyBudget, position: \.seq, item: \.run)
    }

    /// Marks the foreground runs a crash left `running` as failed (`interrupted`), and ends the
    /// background ones whose job is missing or ended (`endOrphanedBackgroundRuns`); a background
    /// run whose job is live is left to it. Call once at start, before serving and before the
    /// workers start. Returns how many ended.
    public func failInterruptedRuns() async throws -> Int {
        let foreground = try await store.failInterruptedRuns(at: clock.now())
        return foreground + (try await endOrphanedBackgroundRuns())
    }
}
