import Foundation
import RPC

/// What a kind of job declares about itself; the workers (`JobWorkers`) read nothing else.
public struct JobKindPolicy: Sendable {
    /// The kind's name, `domain.verb` (`agent.run`).
    public var kind: String
    /// Attempts of this kind running at once in this process (a setting may change it).
    public var concurrency: Int
    /// Attempts in all, the first included (1: never retried).
    public var maxAttempts: Int
    /// Whether an attempt may run again after its worker died during it (kill -9). When not, the
    /// job ends `failed` with `JobError.interrupted`.
    public var rerunAfterCrash: Bool
    /// The wait before retry n (from 1): up to `min(maxBackoff, baseBackoff × 2^(n-1))`, with jitter.
    public var baseBackoff: Duration
    public var maxBackoff: Duration
    /// How long a claim holds without a heartbeat; the worker renews it at a third of that.
    public var lease: Duration
    /// Whether an attempt that threw this is worth another one (for the agent: what the provider
    /// taxonomy calls transient).
    public var isRetriable: @Sendable (any Error) -> Bool

    public init(
        kind: String, concurrency: Int = 1, maxAttempts: Int = 1, rerunAfterCrash: Bool = true, baseBackoff: Duration = .seconds(1),
        maxBackoff: Duration = .seconds(300), lease: Duration = .seconds(30), isRetriable: @escaping @Sendable (any Error) -> Bool = { _ in false }
    ) {
        self.kind = kind
        self.concurrency = concurrency
        self.maxAttempts = maxAttempts
        self.rerunAfterCrash = rerunAfterCrash
        self.baseBackoff = baseBackoff
        self.maxBackoff = maxBackoff
        self.lease = lease
        self.isRetriable = isRetriable
    }
}

/// Runs the jobs of one kind. A new kind is one type conforming to this, registered with the
/// workers in the composition root.
public protocol JobHandler: Sendable {
    var policy: JobKindPolicy { get }

    /// Runs one attempt of `job` and returns its result (stored on the job; nil for none).
    ///
    /// Throws to fail the attempt: retried when `policy.isRetriable` says so and attempts are left,
    /// else the job ends `failed` with the error (`JobError` as it is; an `LLMError` as its kind and
    /// message; anything else `internal`). Cancellation (`jobs.cancel`, shutdown) cancels the
    /// calling task: stop cooperatively and throw `CancellationError`.
    func run(_ job: ClaimedJob) async throws -> JSONFragment?
}
