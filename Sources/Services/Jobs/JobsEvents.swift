/// Events of the jobs domain, one per change of a job's state, filed under the job's owner. The
/// daemon's own jobs (no owner: retention) have none.
public enum JobsEvents {
    /// `job.queued`: `attempt` is the attempts made before (0 for a new job; `jobs.retry` keeps counting).
    public typealias Queued = StateChanged<QueuedTopic>
    /// `job.started`: `attempt` is this attempt's number, from 1.
    public typealias Started = StateChanged<StartedTopic>
    public typealias Succeeded = StateChanged<SucceededTopic>
    public typealias Cancelled = StateChanged<CancelledTopic>

    /// The topic of a `StateChanged` event: the four states whose event carries nothing else.
    public protocol Topic: Sendable {
        static var name: String { get }
    }
    public enum QueuedTopic: Topic { public static let name = "job.queued" }
    public enum StartedTopic: Topic { public static let name = "job.started" }
    public enum SucceededTopic: Topic { public static let name = "job.succeeded" }
    public enum CancelledTopic: Topic { public static let name = "job.cancelled" }

    /// A job went to the state its topic names.
    public struct StateChanged<T: Topic>: DomainEvent, Equatable {
        public static var topic: String { T.name }
        public var userID: String
        public var jobId: String
        public var kind: String
        public var attempt: Int

        public init(userID: String, jobId: String, kind: String, attempt: Int) {
            self.userID = userID
            self.jobId = jobId
            self.kind = kind
            self.attempt = attempt
        }

        enum CodingKeys: String, CodingKey { case jobId, kind, attempt }
    }

    public struct Failed: DomainEvent, Equatable {
        public static let topic = "job.failed"
        public var userID: String
        public var jobId: String
        public var kind: String
        public var attempt: Int
        /// `JobError.kind`.
        public var errorKind: String

        public init(userID: String, jobId: String, kind: String, attempt: Int, errorKind: String) {
            self.userID = userID
            self.jobId = jobId
            self.kind = kind
            self.attempt = attempt
            self.errorKind = errorKind
        }

        enum CodingKeys: String, CodingKey { case jobId, kind, attempt, errorKind }
    }

    public static let all: [any DomainEvent.Type] = [Queued.self, Started.self, Succeeded.self, Failed.self, Cancelled.self]
}
