import Foundation

// agent.cancel and agent.runs.*: the runs of this process and the stored ones.
extension AgentService {
    /// Cancels a run going on in this process and returns it once its end is stored; a run that
    /// already ended is returned as it is (so a second cancel is harmless).
    ///
    /// - Throws: `AgentError.notFound` (also for another user's run).
    public func cancel(runID: String, userID: String) async throws -> AgentRun {
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

    /// Marks the runs a crash left `running` as failed (`interrupted`): call once at start, before
    /// serving. Returns how many.
    public func failInterruptedRuns() async throws -> Int {
        try await store.failInterruptedRuns(at: clock.now())
    }
}
