import Foundation
import RPC

/// The `agent.run` job kind: one background run (`agent.act`/`agent.regenerate` with
/// `background: true`), run by `AgentService`'s ordinary run loop. The job's owner is the run's
/// user; its idempotency key is the run id, so a run has at most one job.
///
/// - Crash: the kind runs again (`rerunAfterCrash`): the attempt starts from the beginning, the
///   previous attempt's streamed text kept on the run as `partial`; the run's end is stored once
///   (the store ends only a `running` run), so a run has one answer however many attempts ran.
/// - Retries (up to `maxAttempts` in all): an `LLMError` the provider taxonomy calls transient
///   (`LLMRetryPolicy.shouldRetry`), and only when the attempt had streamed no delta — the run
///   loop then leaves the run running instead of ending it failed. Any other failure ends the run
///   `failed` and the job with its kind (`JobError`, never retried).
/// - Cancel: `agent.cancel` (also cancels the job) or `jobs.cancel` (cancels the task) end the
///   run `cancelled` with its partial answer, and the job `cancelled`. A shutdown's cancellation
///   leaves the run running: the job runs it again after the restart.
public struct AgentRunJob: JobHandler {
    public static let kind = "agent.run"
    /// Attempts in all (the first, then up to two retries of transient provider errors or crashes).
    public static let maxAttempts = 3

    /// What an attempt needs to run the stored run again.
    public struct Payload: Codable, Sendable, Equatable {
        public var runId: String
        /// As the call gave them (validated).
        public var options: Agent.Options
        /// The system prompt as rendered when the call came (prompt, variables, module, date), so
        /// that every attempt asks the same.
        public var system: String?

        public init(runId: String, options: Agent.Options, system: String?) {
            self.runId = runId
            self.options = options
            self.system = system
        }
    }

    /// What a succeeded job holds: the run as it ended.
    public struct Outcome: Codable, Sendable, Equatable {
        public var runId: String
        public var status: AgentRunStatus
        /// The answer (or the partial answer of a cancelled run).
        public var messageId: String?
    }

    public let policy: JobKindPolicy
    private let service: AgentService
    private let onDelta: @Sendable (AgentDelta) -> Void

    /// - Parameter lease: how long a claim holds without a heartbeat: also how long a run stopped
    ///   by a crash waits after the restart before it runs again (15 s: a heartbeat every 5 s).
    /// - Parameter onDelta: where an attempt's deltas go (the run's watchers); nowhere by default.
    public init(
        service: AgentService, concurrency: Int = 4, lease: Duration = .seconds(15),
        onDelta: @escaping @Sendable (AgentDelta) -> Void = { _ in }
    ) {
        self.service = service
        self.onDelta = onDelta
        self.policy = JobKindPolicy(
            kind: Self.kind, concurrency: concurrency, maxAttempts: Self.maxAttempts, rerunAfterCrash: true, baseBackoff: .seconds(1),
            maxBackoff: .seconds(30), lease: lease, isRetriable: Self.isRetriable)
    }

    /// The run loop throws an `LLMError` only for an attempt it left running to be retried; a run
    /// it ended comes back as a `JobError`, which is final.
    @Sendable static func isRetriable(_ error: any Error) -> Bool {
        guard let error = error as? LLMError else { return false }
        return LLMRetryPolicy().shouldRetry(error)
    }

    public func run(_ claimed: ClaimedJob) async throws -> JSONFragment? {
        let job = claimed.job
        guard let userID = job.ownerID else { throw JobError(kind: "invalid", message: "an agent.run job needs an owner") }
        let payload: Payload
        do {
            payload = try job.payload.decode(Payload.self)
        } catch {
            throw JobError(kind: "invalid", message: "the job's payload is not an agent.run payload")
        }
        let run = try await service.runAttempt(
            runID: payload.runId, userID: userID, jobID: job.id, attempt: claimed.lease.attempt,
            lastAttempt: claimed.lease.attempt >= job.maxAttempts, options: payload.options, system: payload.system, onDelta: onDelta)
        return try JSONFragment(encoding: Outcome(runId: run.id, status: run.status, messageId: run.assistantMessageId))
    }
}
