import AgentdTesting
import Foundation
import JobQueueTesting
import RPC
import Services
import Storage
import Testing

@testable import Daemon
@testable import Services

/// Background agent runs (`background: true`) through the service and the `agent.run` handler,
/// driven by hand like a worker would (claim, run, complete or fail) against an in-memory queue,
/// so each step — a retry, a crash, a cancel — happens exactly when the test says.
@Suite("Agent background runs (service and agent.run handler)", .timeLimit(.minutes(2)))
struct AgentBackgroundServiceTests {
    let clock = TestClock()
    let queue = InMemoryJobQueue()
    /// When a streaming run stores its partial answer (agent.runs.watch's 250 ms), fired by hand.
    let partialTimer = ManualTimer()

    struct Graph {
        var dependencies: Dependencies
        var agent: AgentService { dependencies.agent }
        var alice: User
        var deltas = DeltaRecorder()
        var handler: AgentRunJob

        /// One worker step: claims the due `agent.run` jobs and runs each attempt as `JobWorkers`
        /// does (complete; fail, retried when the policy says so and attempts are left; release
        /// on a cancellation nobody asked for).
        func work(_ queue: InMemoryJobQueue, now: Date) async throws -> [Job] {
            var ended: [Job] = []
            for claimed in try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 10, lease: .seconds(30), now: now) {
                ended.append(try await finish(claimed, queue: queue, now: now, outcome: await outcome(of: claimed)))
            }
            return ended
        }

        func outcome(of claimed: ClaimedJob) async -> Result<JSONFragment?, any Error> {
            do { return .success(try await handler.run(claimed)) } catch { return .failure(error) }
        }

        func finish(_ claimed: ClaimedJob, queue: InMemoryJobQueue, now: Date, outcome: Result<JSONFragment?, any Error>) async throws -> Job {
            switch outcome {
            case .success(let result):
                return try await queue.complete(claimed.lease, result: result, at: now)
            case .failure(let error as CancellationError):
                let job = try await queue.job(id: claimed.job.id, ownerID: claimed.job.ownerID)
                if job?.cancelRequested == true {
                    return try await queue.fail(claimed.lease, error: JobError(kind: "cancelled", message: ""), retryAt: nil, at: now)
                }
                _ = error
                try await queue.release(claimed.lease, at: now)
                return try #require(try await queue.job(id: claimed.job.id, ownerID: claimed.job.ownerID))
            case .failure(let error):
                let retry = handler.policy.isRetriable(error) && claimed.lease.attempt < claimed.job.maxAttempts
                let jobError =
                    (error as? JobError) ?? (error as? LLMError).map { JobError(kind: $0.kind.rawValue, message: $0.message) }
                    ?? JobError(kind: "internal", message: "\(error)")
                return try await queue.fail(claimed.lease, error: jobError, retryAt: retry ? now : nil, at: now)
            }
        }
    }

    func graph(_ provider: any LLMProvider) async throws -> Graph {
        let collaborators = Dependencies.Collaborators(
            clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), llmProvider: provider, webSearch: nil,
            jobQueue: queue, agentPartialTimer: { [partialTimer] in try await partialTimer.wait($0) })
        let dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""), collaborators: collaborators)
        let deltas = DeltaRecorder()
        return Graph(
            dependencies: dependencies, alice: try await dependencies.auth.register(username: "alice", password: "password1"), deltas: deltas,
            handler: AgentRunJob(service: dependencies.agent, onDelta: deltas.record))
    }

    func answers(_ graph: Graph, chatID: String) async throws -> [Message] {
        try await graph.dependencies.chats.messages(.init(chatId: chatID, limit: 500), userID: graph.alice.id).items.filter { $0.role == .assistant }
    }

    @Test(
        "background act answers at once with the ids, the question stored; the job (owner, key = run id) runs it; one answer, deltas to the handler's sink"
    )
    func actRunsAsAJob() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["Hel", "lo"])])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Hi there", model: "m1"), user: graph.alice)
        #expect(provider.requests.isEmpty, "nothing ran before the reply")
        let question = try #require(try await graph.dependencies.chats.messages(.init(chatId: started.chatId), userID: graph.alice.id).items.first)
        #expect(question.id == started.messageId && question.content == "Hi there")
        let running = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(running.status == .running && running.jobId == started.jobId && running.attempt == 1, "\(running)")
        let job = try #require(try await queue.job(id: started.jobId, ownerID: graph.alice.id))
        #expect(job.kind == "agent.run" && job.state == .queued && job.idempotencyKey == started.runId && job.maxAttempts == AgentRunJob.maxAttempts)
        let payload = try job.payload.decode(AgentRunJob.Payload.self)
        #expect(payload.runId == started.runId && payload.options.model == "m1")

        let ended = try await graph.work(queue, now: clock.now())
        #expect(ended.map(\.state) == [.succeeded], "\(ended)")
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        let stored = try await answers(graph, chatID: started.chatId)
        #expect(run.status == .completed && stored.map(\.content) == ["Hello"] && run.assistantMessageId == stored.first?.id, "\(run)")
        #expect(graph.deltas.all.map(\.seq) == [1, 2] && graph.deltas.text == "Hello")
        let outcome = try #require(ended.first?.result).decode(AgentRunJob.Outcome.self)
        #expect(outcome.status == .completed && outcome.messageId == run.assistantMessageId)
        #expect(provider.requests.first?.model == "m1", "the options travel in the payload")

        // Claimed again (a duplicate claim, or a crash after the end was stored): no second answer.
        let again = try await graph.handler.run(ClaimedJob(job: job, lease: JobLease(jobID: job.id, workerID: "w2", attempt: 2), recovered: true))
        #expect(try again.map { try $0.decode(AgentRunJob.Outcome.self).status } == .completed)
        #expect(try await answers(graph, chatID: started.chatId).count == 1 && provider.requests.count == 1)
    }

    @Test("background regenerate: messageId is the question; the new answer is stored once")
    func regenerate() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["One"]), ScriptedLLMProvider.answer(["Two"])])
        let graph = try await graph(provider)
        let first = try await graph.agent.act(.init(message: "Q"), user: graph.alice) { _ in }
        let started = try await graph.agent.regenerateInBackground(.init(messageId: first.message.id), user: graph.alice)
        #expect(started.messageId == first.message.parentId && started.chatId == first.chatId)
        _ = try await graph.work(queue, now: clock.now())
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(run.status == .completed)
        let branchAnswers = try await answers(graph, chatID: first.chatId)
        #expect(branchAnswers.map(\.content) == ["Two"], "the new answer is the active branch's")
    }

    @Test("a transient provider error before any delta is retried as a new attempt (the run stays running between); after a delta it is not")
    func transientRetried() async throws {
        let unavailable = LLMError(.upstreamUnavailable, "503", provider: "fake", status: 503)
        let provider = ScriptedLLMProvider(scripts: [
            [.fail(unavailable)], ScriptedLLMProvider.answer(["Fine"]),
            [.event(.text("Par")), .fail(unavailable)],
        ])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Flaky"), user: graph.alice)
        let first = try await graph.work(queue, now: clock.now())
        #expect(first.map(\.state) == [.queued] && first.first?.error?.kind == "upstreamUnavailable", "\(first)")
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).status == .running)
        #expect(try await answers(graph, chatID: started.chatId).isEmpty)
        let second = try await graph.work(queue, now: clock.now())
        #expect(second.map(\.state) == [.succeeded] && second.first?.attempt == 2, "\(second)")
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(run.status == .completed && run.attempt == 2 && provider.requests.count == 2)
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["Fine"])

        // The same error after text was streamed: the run fails, the job is not retried.
        let streamed = try await graph.agent.actInBackground(.init(chatId: started.chatId, message: "Flaky again"), user: graph.alice)
        let failed = try await graph.work(queue, now: clock.now())
        #expect(failed.map(\.state) == [.failed] && failed.first?.error?.kind == "upstreamUnavailable", "\(failed)")
        let run2 = try await graph.agent.run(id: streamed.runId, userID: graph.alice.id)
        #expect(run2.status == .failed && run2.error?.kind == "upstreamUnavailable" && run2.attempt == 1)
    }

    @Test("a non-transient error fails the run and the job at once")
    func permanentError() async throws {
        let provider = ScriptedLLMProvider(scripts: [[.fail(LLMError(.authentication, "bad key", provider: "fake", status: 401))]])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Key?"), user: graph.alice)
        let ended = try await graph.work(queue, now: clock.now())
        #expect(ended.map(\.state) == [.failed] && ended.first?.error?.kind == "authentication" && ended.first?.attempt == 1)
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).status == .failed)
    }

    @Test("agent.cancel of a queued background run ends the run and its job cancelled; of a running one too, with its partial answer")
    func agentCancel() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [AgentServiceTests.blockingScript(gate)])
        let graph = try await graph(provider)
        let queued = try await graph.agent.actInBackground(.init(message: "Never mind"), user: graph.alice)
        let cancelled = try await graph.agent.cancel(runID: queued.runId, userID: graph.alice.id)
        #expect(cancelled.status == .cancelled && cancelled.assistantMessageId == nil, "\(cancelled)")
        #expect(try await queue.job(id: queued.jobId, ownerID: graph.alice.id)?.state == .cancelled)
        #expect(try await graph.work(queue, now: clock.now()).isEmpty, "a cancelled job is never claimed")

        let running = try await graph.agent.actInBackground(.init(chatId: queued.chatId, message: "Stop midway"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let attempt = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()
        let stopped = try await graph.agent.cancel(runID: running.runId, userID: graph.alice.id)
        #expect(stopped.status == .cancelled && stopped.finishReason == .cancelled, "\(stopped)")
        let job = try await graph.finish(claimed, queue: queue, now: clock.now(), outcome: await attempt.value)
        #expect(job.state == .cancelled, "\(job)")
        #expect(try await answers(graph, chatID: running.chatId).map(\.content) == ["Hel"], "the partial answer, once")
        gate.open()
    }

    @Test("jobs.cancel of a running background run (its task cancelled, cancel requested) ends the run cancelled and the job cancelled")
    func jobsCancel() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [AgentServiceTests.blockingScript(gate)])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Stop it"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let attempt = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()
        // What jobs.cancel does: the queue marks the job, the workers cancel its task.
        _ = try await queue.cancel(id: started.jobId, ownerID: graph.alice.id, at: clock.now())
        attempt.cancel()
        let job = try await graph.finish(claimed, queue: queue, now: clock.now(), outcome: await attempt.value)
        #expect(job.state == .cancelled, "\(job)")
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(run.status == .cancelled && run.finishReason == .cancelled, "\(run)")
        gate.open()
    }

    @Test("a shutdown's cancellation leaves the run running and the job queued again; the next attempt answers once")
    func shutdownReleases() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [AgentServiceTests.blockingScript(gate), ScriptedLLMProvider.answer(["After restart"])])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Survive"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let attempt = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()
        attempt.cancel()
        let released = try await graph.finish(claimed, queue: queue, now: clock.now(), outcome: await attempt.value)
        #expect(released.state == .queued, "\(released)")
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).status == .running)
        #expect(try await graph.work(queue, now: clock.now()).map(\.state) == [.succeeded])
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["After restart"])
    }

    @Test("after a crash: failInterruptedRuns fails foreground runs only; a background run whose lease expired runs again from the start, one answer")
    func crashRecovery() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [
            AgentServiceTests.blockingScript(gate), AgentServiceTests.blockingScript(gate), ScriptedLLMProvider.answer(["Whole answer"]),
        ])
        let graph = try await graph(provider)
        // A foreground run and a background attempt, both mid-stream when the process "dies".
        let foregroundDeltas = DeltaRecorder()
        let foreground = Task { try await graph.agent.act(.init(message: "Foreground"), user: graph.alice, onDelta: foregroundDeltas.record) }
        await foregroundDeltas.firstDelta.wait()
        let started = try await graph.agent.actInBackground(.init(message: "Background"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let dead = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()

        // The restart's sweep, as at start.
        #expect(try await graph.agent.failInterruptedRuns() == 1)
        let foregroundRunID = try #require(foregroundDeltas.all.first?.runId)
        #expect(try await graph.agent.run(id: foregroundRunID, userID: graph.alice.id).error?.kind == "interrupted")
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).status == .running)

        // The lease expires; another worker claims the job (recovered) and runs it from the start.
        queue.expireLeases()
        let recovered = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w2", limit: 1, lease: .seconds(30), now: clock.now()).first)
        #expect(recovered.recovered && recovered.lease.attempt == 2)
        let job = try await graph.finish(recovered, queue: queue, now: clock.now(), outcome: await graph.outcome(of: recovered))
        #expect(job.state == .succeeded, "\(job)")
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(run.status == .completed && run.attempt == 2, "\(run)")
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["Whole answer"])

        // The "dead" attempt wakes up: it cannot store a second answer.
        gate.open()
        _ = await dead.value
        _ = try? await foreground.value
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["Whole answer"])
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).assistantMessageId == run.assistantMessageId)
    }

    @Test("an attempt stopped by a crash after it streamed: its stored text becomes the run's partial; the next attempt's answer is the only message")
    func partialKept() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [AgentServiceTests.blockingScript(gate), ScriptedLLMProvider.answer(["Whole answer"])])
        let graph = try await graph(provider)
        let started = try await graph.agent.actInBackground(.init(message: "Partial"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let dead = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()
        // The periodic store of the text so far ("Hel"): fired, and done once the next wait begins.
        await partialTimer.arrivals(atLeast: 1)
        partialTimer.fire()
        await partialTimer.arrivals(atLeast: 2)
        #expect(try await graph.agent.run(id: started.runId, userID: graph.alice.id).partial == nil, "no partial while the first attempt runs")

        queue.expireLeases()
        let recovered = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w2", limit: 1, lease: .seconds(30), now: clock.now()).first)
        #expect(try await graph.finish(recovered, queue: queue, now: clock.now(), outcome: await graph.outcome(of: recovered)).state == .succeeded)
        let run = try await graph.agent.run(id: started.runId, userID: graph.alice.id)
        #expect(run.status == .completed && run.attempt == 2 && run.partial == "Hel", "\(run)")
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["Whole answer"])
        gate.open()
        _ = await dead.value
        #expect(try await answers(graph, chatID: started.chatId).map(\.content) == ["Whole answer"])
    }

    @Test("at most maxBackgroundRunsPerUser background runs going per user (-32018), nothing stored past it; another user is not counted")
    func perUserLimit() async throws {
        let graph = try await graph(ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["x"])]))
        var runs: [AgentBackgroundRun] = []
        for index in 0..<AgentService.maxBackgroundRunsPerUser {
            runs.append(try await graph.agent.actInBackground(.init(message: "Run \(index)"), user: graph.alice))
        }
        let chats = try await graph.dependencies.chats.list(.init(), userID: graph.alice.id).items.count
        await #expect(throws: AgentError.tooManyBackgroundRuns(limit: AgentService.maxBackgroundRunsPerUser)) {
            try await graph.agent.actInBackground(.init(message: "One too many"), user: graph.alice)
        }
        #expect(AgentError.tooManyBackgroundRuns(limit: 32).rpcError.code.rawValue == -32018)
        #expect(try await graph.dependencies.chats.list(.init(), userID: graph.alice.id).items.count == chats, "nothing stored")
        let bob = try await graph.dependencies.auth.register(username: "bob", password: "password1")
        _ = try await graph.agent.actInBackground(.init(message: "Bob's"), user: bob)
        // One ends: room for one more.
        _ = try await graph.agent.cancel(runID: runs[0].runId, userID: graph.alice.id)
        _ = try await graph.agent.actInBackground(.init(message: "Now it fits"), user: graph.alice)
    }

    @Test(
        "at start, a background run without its job (a crash between the start and the enqueue) ends failed, interrupted; one whose job ended ends too"
    )
    func orphans() async throws {
        let provider = ScriptedLLMProvider(scripts: [ScriptedLLMProvider.answer(["x"])])
        let graph = try await graph(provider)
        let orphan = try await graph.agent.actInBackground(.init(message: "Lost job"), user: graph.alice)
        let ownJob = try await graph.agent.actInBackground(.init(chatId: orphan.chatId, message: "Job failed elsewhere"), user: graph.alice)
        let live = try await graph.agent.actInBackground(.init(chatId: orphan.chatId, message: "Still queued"), user: graph.alice)
        queue.remove(orphan.jobId)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 10, lease: .seconds(30), now: clock.now()).first {
                $0.job.id == ownJob.jobId
            })
        _ = try await queue.fail(claimed.lease, error: JobError.interrupted, retryAt: nil, at: clock.now())
        queue.requeue(live.jobId)

        #expect(try await graph.agent.failInterruptedRuns() == 2)
        let lost = try await graph.agent.run(id: orphan.runId, userID: graph.alice.id)
        #expect(lost.status == .failed && lost.error?.kind == "interrupted", "\(lost)")
        let failed = try await graph.agent.run(id: ownJob.runId, userID: graph.alice.id)
        #expect(failed.status == .failed && failed.error?.kind == "interrupted", "\(failed)")
        #expect(try await graph.agent.run(id: live.runId, userID: graph.alice.id).status == .running)
    }

    @Test("jobs.cancel of a queued job: its job.cancelled event ends the run cancelled; an event for a job whose attempt runs here changes nothing")
    func queuedJobCancelled() async throws {
        let gate = Gate()
        let provider = ScriptedLLMProvider(scripts: [AgentServiceTests.blockingScript(gate)])
        let graph = try await graph(provider)
        let queued = try await graph.agent.actInBackground(.init(message: "Cancel me in the queue"), user: graph.alice)
        _ = try await queue.cancel(id: queued.jobId, ownerID: graph.alice.id, at: clock.now())
        #expect(try await graph.agent.run(id: queued.runId, userID: graph.alice.id).status == .running)
        await graph.agent.jobEnded(jobID: queued.jobId, userID: graph.alice.id)
        #expect(try await graph.agent.run(id: queued.runId, userID: graph.alice.id).status == .cancelled)

        // A job still running (an attempt going on here) is not touched by a stray event.
        let running = try await graph.agent.actInBackground(.init(chatId: queued.chatId, message: "Keep going"), user: graph.alice)
        let claimed = try #require(
            try await queue.claim(kinds: [AgentRunJob.kind], workerID: "w1", limit: 1, lease: .seconds(30), now: clock.now()).first)
        let attempt = Task { await graph.outcome(of: claimed) }
        await graph.deltas.firstDelta.wait()
        await graph.agent.jobEnded(jobID: running.jobId, userID: graph.alice.id)
        #expect(try await graph.agent.run(id: running.runId, userID: graph.alice.id).status == .running)
        gate.open()
        #expect(try await graph.finish(claimed, queue: queue, now: clock.now(), outcome: await attempt.value).state == .succeeded)
        #expect(try await graph.agent.run(id: running.runId, userID: graph.alice.id).status == .completed)
    }
}
