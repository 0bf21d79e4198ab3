import Foundation
import RPC

/// The `jobs.*` methods (in every API version): the caller's background jobs (agent runs with
/// `background: true`, chat titles, …), listed, read, cancelled and retried. A user sees only their
/// own jobs; the daemon's own (retention) are no one's.
public enum Jobs {
    public enum List: RPCMethod {
        public static let name = "jobs.list"
        public static let summary =
            "The caller's background jobs, newest first, optionally of one state or kind, a page at a time (limit 1-200, default 50): state, attempts, due time, result or error. A finished job (succeeded, failed, cancelled) is deleted jobs.retention_days (default 7) after it finished."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var state: JobState?
            public var kind: String?
            public var cursor: String?
            public var limit: Int?
            public init(state: JobState? = nil, kind: String? = nil, cursor: String? = nil, limit: Int? = nil) {
                self.state = state
                self.kind = kind
                self.cursor = cursor
                self.limit = limit
            }
        }
        public typealias Result = KeysetPage<Job>
    }

    public enum Get: RPCMethod {
        public static let name = "jobs.get"
        public static let summary = "One of the caller's background jobs: kind, state, payload, attempts, lease, result or error, timestamps."
        public static let rateClass: RPCRateClassName = .read
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = Job
        public static var errors: [RPCErrorDescription] { [JobsError.notFoundDescription] }
    }

    public enum Cancel: RPCMethod {
        public static let name = "jobs.cancel"
        public static let summary =
            "Cancels one of the caller's jobs: a queued one ends cancelled at once; a running one is marked cancelRequested and its worker stops it (it then ends cancelled). A finished job is returned as it is."
        public static let rateClass: RPCRateClassName = .exempt
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = Job
        public static var errors: [RPCErrorDescription] { [JobsError.notFoundDescription] }
    }

    public enum Retry: RPCMethod {
        public static let name = "jobs.retry"
        public static let summary =
            "Queues one of the caller's failed or cancelled jobs again, due now, with one more attempt allowed; any other state answers -32602. A finished job can be retried until it is pruned (jobs.retention_days after it finished, default 7); then it is not found."
        public static let rateClass: RPCRateClassName = .write
        public struct Params: Codable, Sendable {
            public var id: String
            public init(id: String) { self.id = id }
        }
        public typealias Result = Job
        public static var errors: [RPCErrorDescription] { [JobsError.notFoundDescription] }
    }
}
