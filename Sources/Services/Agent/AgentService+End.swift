import Foundation

// Persisting a run: its end, the answer (if any), the tool steps and searches, and its event, in
// one transaction; then the call's outcome.
extension AgentService {
    /// Stores the run's end (in a task of its own: the run's cancellation must not stop it) and
    /// makes the call's outcome.
    func end(
        _ run: AgentRun, _ status: AgentRunStatus, progress: Progress, finishReason: LLMFinishReason = .stop, error: (any Error)?, userID: String
    ) async -> Result<AgentAnswer, any Error> {
        let now = clock.now()
        var ended = run
        ended.status = status
        ended.model = progress.model ?? run.model
        ended.usage = progress.usage ?? LLMUsage(promptTokens: progress.context?.estimatedTokens ?? 0, completionTokens: 0, estimated: true)
        ended.context = progress.context
        ended.searchCount = progress.searches.count
        ended.firstTokenAt = progress.firstTokenAt
        ended.finishedAt = now
        switch status {
        case .completed: ended.finishReason = finishReason
        case .cancelled: ended.finishReason = .cancelled
        case .failed, .running: ended.finishReason = nil
        }
        if let error { ended.error = Self.summary(error) }
        // Completed: the answer, even empty. Cancelled: what arrived, when anything did. Failed: none.
        let storesAnswer = status == .completed || (status == .cancelled && (!progress.text.isEmpty || !progress.steps.isEmpty))
        let answer =
            storesAnswer
            ? NewMessage(
                id: ids.makeID(prefix: "msg_"), chatID: run.chatId, placement: .after(messageID: run.userMessageId), role: .assistant,
                content: progress.text, createdAt: now)
            : nil
        let idMap = Self.normalisedIDs(progress.steps)
        let searches = progress.searches.map { step in
            var step = step
            step.toolCallId = idMap[step.toolCallId] ?? step.toolCallId
            return step
        }
        let finished = ended
        let finish = AgentRunFinish(run: ended, answer: answer, steps: AgentContext.normalised(progress.steps), searches: searches) { message in
            switch finished.status {
            case .completed:
                AgentEvents.RunCompleted(
                    userID: userID, runId: finished.id, chatId: finished.chatId, messageId: message?.id, finishReason: finished.finishReason ?? .stop,
                    usage: finished.usage!)
            case .cancelled:
                AgentEvents.RunCancelled(userID: userID, runId: finished.id, chatId: finished.chatId, messageId: message?.id)
            case .failed, .running:
                AgentEvents.RunFailed(userID: userID, runId: finished.id, chatId: finished.chatId, errorKind: finished.error?.kind ?? "internal")
            }
        }
        let store = self.store
        let stored: (run: AgentRun, answer: Message?, firstAnswer: Bool)
        do {
            stored = try await Task { try await store.finish(finish, userID: userID) }.value
        } catch let storeError {
            logger.error("could not store the end of an agent run", metadata: ["run": "\(run.id)", "error": "\(String(reflecting: storeError))"])
            return .failure(error ?? storeError)
        }
        if status == .completed, stored.firstAnswer, let answer = stored.answer {
            await enqueueTitle(chatID: run.chatId, answerID: answer.id, model: run.model, userID: userID)
        }
        switch status {
        case .completed:
            guard let message = stored.answer, let context = progress.context else { return .failure(AgentError.notFound(kind: "run", id: run.id)) }
            return .success(
                AgentAnswer(
                    runId: run.id, chatId: run.chatId, message: message, finishReason: ended.finishReason ?? .stop, usage: ended.usage!,
                    context: context,
                    sources: progress.searchOffered ? Self.sources(searches) : nil))
        case .cancelled:
            return .failure(AgentError.cancelled(runId: run.id, messageId: stored.answer?.id))
        case .failed, .running:
            if let error, !(error is LLMError) {
                logger.error("agent run failed", metadata: ["run": "\(run.id)", "error": "\(String(reflecting: error))"])
            }
            return .failure(error ?? AgentError.notFound(kind: "run", id: run.id))
        }
    }

    /// The chat's title job, right after the commit that stored its first answer (not in that
    /// transaction: the queue is a protocol with its own transactions, and a PostgreSQL queue
    /// would not share the chats' SQLite one). A crash between the two commits loses only the
    /// title (the chat keeps the one made from the question); enqueueing twice is harmless (the
    /// chat id is the idempotency key). A failure is logged, never the run's: the answer is stored.
    private func enqueueTitle(chatID: String, answerID: String, model: String?, userID: String) async {
        guard let titles else { return }
        do {
            // A task of its own, as the finish: the call's cancellation must not stop it.
            _ = try await Task { try await titles.enqueue(chatID: chatID, answerID: answerID, model: model, userID: userID) }.value
        } catch {
            logger.error("could not enqueue a chat's title job", metadata: ["chat": "\(chatID)", "error": "\(String(reflecting: error))"])
        }
    }

    /// The provider's tool-call ids mapped to the stored ones (`AgentContext.normalised`).
    private static func normalisedIDs(_ steps: [LLMMessage]) -> [String: String] {
        var map: [String: String] = [:]
        var count = 0
        for call in steps.flatMap(\.toolCalls) {
            count += 1
            map[call.id] = "call_\(count)"
        }
        return map
    }

    static func summary(_ error: any Error) -> LLMErrorSummary {
        switch error {
        case let error as LLMError: LLMErrorSummary(kind: error.kind.rawValue, message: error.message)
        case let error as AgentError: LLMErrorSummary(kind: "invalid", message: "\(error)")
        case let error as ChatsError: LLMErrorSummary(kind: "notFound", message: "\(error)")
        case let error as JobError: LLMErrorSummary(kind: error.kind, message: error.message)
        case FilesError.attachmentUnsupported(let fileID, let name, let reason):
            LLMErrorSummary(kind: "attachmentUnsupported", message: "\(name) (\(fileID)): \(reason)")
        case FilesError.notFound: LLMErrorSummary(kind: "notFound", message: "\(error)")
        default: LLMErrorSummary(kind: "internal", message: "internal error")
        }
    }
}
