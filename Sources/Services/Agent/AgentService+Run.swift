import Foundation

// The run loop: the start stored, then the model's requests (with tool rounds) in a child task
// that `agent.cancel` and the call's own cancellation stop; every way it ends goes to `end`
// (AgentService+End.swift).
extension AgentService {
    /// Stores the start, then runs the model in a child task, which `agent.cancel` and the calling
    /// task's cancellation cancel.
    func perform(
        _ run: AgentRun, start: AgentRunStart, question given: Message?, system: String?, options: Agent.Options, userID: String,
        attempt: Int = 1, onDelta: @escaping @Sendable (AgentDelta) -> Void, timedOut: @escaping @Sendable () -> Duration?
    ) async throws -> AgentAnswer {
        let handle = AgentRunHandle(userID: userID)
        registry.add(run.id, handle)
        // Watchers (agent.runs.watch) get every delta through the run's stream, and its end.
        let stream = streams.begin(run, userID: userID, attempt: attempt)
        defer {
            registry.remove(run.id)
            streams.close(stream)
        }
        let publish = stream.publishing(onDelta)
        let storedQuestion: Message?
        do {
            storedQuestion = try await store.start(start, userID: userID)
        } catch {
            handle.markFinished()
            throw error
        }
        guard let question = storedQuestion ?? given else {
            handle.markFinished()
            throw AgentError.notFound(kind: "message", id: run.userMessageId)
        }
        let outcome = await execute(
            run, handle: handle, question: question, system: system, options: options, userID: userID, onDelta: publish, timedOut: timedOut,
            abandons: { _, _ in false })
        await streams.end(stream, Self.ended(run, outcome))
        handle.markFinished()
        return try outcome.get()
    }

    /// The run's generation, its start stored and its handle registered: the generation is a child
    /// task (it runs where the caller's task runs: the connection's event loop, so a delta is
    /// written without a thread hop) beside a watcher that returns when `agent.cancel` asks; then
    /// the generation is cancelled, as by the caller's own cancellation, which reaches both children.
    ///
    /// `abandons` is asked before a failed or cancelled attempt's end is stored (`error` nil for a
    /// cancellation; `streamed`: deltas were sent): true leaves the run `running`, unended, and the
    /// outcome is `AgentAttemptAbandoned` — a background run's job runs it again (a transient
    /// provider error, a shutdown). A foreground run never abandons.
    func execute(
        _ run: AgentRun, handle: AgentRunHandle, question: Message, system: String?, options: Agent.Options, userID: String,
        onDelta: @escaping @Sendable (AgentDelta) -> Void, timedOut: @escaping @Sendable () -> Duration?,
        abandons: @escaping @Sendable (_ error: (any Error)?, _ streamed: Bool) async -> Bool
    ) async -> Result<AgentAnswer, any Error> {
        let service = self
        return await withTaskGroup(of: Result<AgentAnswer, any Error>?.self) { group in
            group.addTask {
                await service.generate(
                    run, question: question, system: system, options: options, userID: userID, onDelta: onDelta, timedOut: timedOut,
                    abandons: abandons)
            }
            group.addTask {
                await handle.untilCancelled()
                return nil
            }
            var answer: Result<AgentAnswer, any Error>?
            while let next = await group.next() {
                // Either the generation ended (the watcher is no longer needed) or a cancel came.
                if let next { answer = next }
                group.cancelAll()
            }
            return answer ?? .failure(CancellationError())
        }
    }

    /// What a run's text and tool turns came to so far.
    struct Progress {
        var text = ""
        var seq = 0
        var usage: LLMUsage?
        var steps: [LLMMessage] = []
        var searches: [WebSearchStep] = []
        var firstTokenAt: Date?
        var model: String?
        var context: AgentContextReport?
        /// `webSearch: true`: the answer lists its sources (maybe none).
        var searchOffered = false

        mutating func add(_ usage: LLMUsage) {
            guard let current = self.usage else {
                self.usage = usage
                return
            }
            self.usage = LLMUsage(
                promptTokens: current.promptTokens + usage.promptTokens, completionTokens: current.completionTokens + usage.completionTokens,
                estimated: current.estimated || usage.estimated)
        }
    }

    /// Everything after the start is stored; never throws: every end is stored, then returned.
    private func generate(
        _ run: AgentRun, question: Message, system: String?, options: Agent.Options, userID: String,
        onDelta: @escaping @Sendable (AgentDelta) -> Void,
        timedOut: @Sendable () -> Duration?, abandons: @Sendable ((any Error)?, Bool) async -> Bool
    ) async -> Result<AgentAnswer, any Error> {
        var progress = Progress()
        progress.searchOffered = options.webSearch == true
        let tools: [LLMTool]
        do {
            if options.webSearch == true {
                guard webSearch?.isConfigured == true else {
                    throw LLMError(
                        .notConfigured, "web search needs a Tavily API key", provider: "tavily", missingSettings: Self.missingSearchSettings)
                }
                tools = [Self.webSearchTool]
            } else {
                tools = []
            }
            let built = try await context(run, question: question, system: system, options: options, tools: tools, userID: userID)
            progress.context = built.report
            try Task.checkCancellation()
            return try await rounds(
                run, messages: built.messages, tools: tools, options: options, userID: userID, progress: &progress, onDelta: onDelta)
        } catch {
            if Task.isCancelled || error is CancellationError {
                if let limit = timedOut() {
                    let timeout = LLMError(.timeout, "the run passed the call's time limit (\(limit.components.seconds) s)", provider: "agentd")
                    return await end(run, .failed, progress: progress, error: timeout, userID: userID)
                }
                if await abandons(nil, progress.seq > 0) { return .failure(AgentAttemptAbandoned(error: CancellationError())) }
                return await end(run, .cancelled, progress: progress, error: nil, userID: userID)
            }
            if await abandons(error, progress.seq > 0) { return .failure(AgentAttemptAbandoned(error: error)) }
            return await end(run, .failed, progress: progress, error: error, userID: userID)
        }
    }

    /// An attempt of a background run that stopped without storing the run's end (`execute`'s
    /// `abandons`): `error` is why (`CancellationError` for a shutdown).
    struct AgentAttemptAbandoned: Error {
        var error: any Error
    }

    /// The model's requests: one, or more while it calls tools (at most `maxToolRounds`).
    private func rounds(
        _ run: AgentRun, messages initial: [LLMMessage], tools: [LLMTool], options: Agent.Options, userID: String, progress: inout Progress,
        onDelta: @escaping @Sendable (AgentDelta) -> Void
    ) async throws -> Result<AgentAnswer, any Error> {
        var messages = initial
        var finishReason = LLMFinishReason.stop
        for round in 1...Self.maxToolRounds {
            let offered = round < Self.maxToolRounds ? tools : []
            let request = LLMRequest(
                messages: messages, model: options.model, temperature: options.temperature, maxTokens: options.maxTokens, tools: offered)
            let requestStart = ContinuousClock.now
            var text = ""
            var calls: [Int: LLMToolCall] = [:]
            var usage: LLMUsage?
            var finished: (reason: LLMFinishReason, model: String)?
            do {
                for try await event in provider.stream(request) {
                    try Task.checkCancellation()
                    switch event {
                    case .text(let piece):
                        guard !piece.isEmpty else { continue }
                        if progress.firstTokenAt == nil { progress.firstTokenAt = clock.now() }
                        text += piece
                        progress.seq += 1
                        onDelta(AgentDelta(runId: run.id, chatId: run.chatId, seq: progress.seq, text: piece))
                    case .toolCall(let index, let id, let name, let arguments):
                        if progress.firstTokenAt == nil { progress.firstTokenAt = clock.now() }
                        var call = calls[index] ?? LLMToolCall(id: "", name: "", arguments: "")
                        if let id, !id.isEmpty { call.id = id }
                        if let name, !name.isEmpty { call.name = name }
                        call.arguments += arguments
                        calls[index] = call
                    case .usage(let reported):
                        usage = reported
                    case .finished(let reason, let model):
                        finished = (reason, model)
                    }
                }
                try Task.checkCancellation()
            } catch {
                record(request: request, started: requestStart, usage: nil, succeeded: false, error: error)
                progress.text += text
                progress.add(usage ?? Self.estimatedUsage(request, text: text))
                throw error
            }
            record(request: request, started: requestStart, usage: usage, succeeded: true, error: nil)
            progress.text += text
            progress.add(usage ?? Self.estimatedUsage(request, text: text))
            progress.model = finished?.model ?? progress.model
            finishReason = finished?.reason ?? .other
            let toolCalls = calls.sorted { $0.key < $1.key }.enumerated().map { position, entry in
                var call = entry.value
                if call.id.isEmpty { call.id = "call_r\(round)_\(position + 1)" }
                return call
            }
            guard !offered.isEmpty, !toolCalls.isEmpty else { break }
            // A tool turn: the calls, then one result each, then the model again.
            messages.append(LLMMessage(role: .assistant, content: text.isEmpty ? nil : text, toolCalls: toolCalls))
            progress.steps.append(LLMMessage(role: .assistant, content: nil, toolCalls: toolCalls))
            let results = await search(toolCalls)
            try Task.checkCancellation()
            for (call, result) in zip(toolCalls, results) {
                let message = LLMMessage(role: .tool, content: result.content, toolCallID: call.id)
                messages.append(message)
                progress.steps.append(message)
                if let step = result.step { progress.searches.append(step) }
            }
        }
        return await end(run, .completed, progress: progress, finishReason: finishReason, error: nil, userID: userID)
    }

    private static func estimatedUsage(_ request: LLMRequest, text: String) -> LLMUsage {
        LLMUsage(
            promptTokens: AgentContext.estimate(request.messages) + AgentContext.estimate(tools: request.tools),
            completionTokens: AgentContext.estimate(text), estimated: true)
    }

    /// One provider request in the LLM metrics. The model label is the configured model, or
    /// `other` for one a client named (labels never come from clients: the series stay few).
    private func record(request: LLMRequest, started: ContinuousClock.Instant, usage: LLMUsage?, succeeded: Bool, error: (any Error)?) {
        if let error = error as? LLMError, error.kind == .notConfigured { return }
        if !succeeded, error is CancellationError || Task.isCancelled { return }
        let model = request.model == nil || request.model == provider.defaultModel ? (provider.defaultModel ?? "default") : "other"
        metrics.request(provider: provider.name, model: model, duration: ContinuousClock.now - started, succeeded: succeeded)
        if let usage, !usage.estimated {
            metrics.tokens(provider: provider.name, model: model, input: usage.promptTokens, output: usage.completionTokens)
        }
    }

}
