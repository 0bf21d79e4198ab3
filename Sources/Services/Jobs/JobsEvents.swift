/// Events of the jobs domain, one per change of a job's state, filed under the job's owner. The
/// daemon's own jobs (no owner: retention) have none.
public enum JobsEvents {
    public struct Queued: DomainEvent, Equatable {
        public static let topic = "job.queued"
        public var userID: String
        public var jobId: String
        public var kind: String
        /// Attempts made before (0 for a new job; `jobs.retry` keeps counting).
        public var attempt: Int

        public init(userID: String, jobId: String, kind: String, attempt: Int) {
            self.userID = userID
            self.jobId = jobId
            self.kind = kind
            self.attempt = attempt
        }

        enum CodingKeys: String, CodingKey { case jobId, kind, attempt }
    }

    public struct Started: DomainEvent, Equatable {
        public static let topic = "job.started"
        public var userID: String
        public var jobId: String
        public var kind: String
        /// This attempt's number, from 1.
        public var attempt: Int

        public init(userID: String, jobId: String, kind: String, attempt: Int) {
            self.userID = userID
            self.jobId = jobId
            self.kind = kind
            self.attempt = attempt
        }

        enum CodingKeys: String, CodingKey { case jobId, kind, attempt }
    }

    public struct Succeeded: DomainEvent, Equatable {
        public static let topic = "job.succeeded"
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

    public struct Cancelled: DomainEvent, Equatable {
        public static let topic = "job.cancelled"
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

    public static let all: [any DomainEvent.Type] = [Queued.self, Started.self, Succeeded.self, Failed.self, Cancelled.self]
}
