import Foundation
import RPC
import Synchronization

/// Test only (`test.jobs`, registered with the daemon's test methods): no-op jobs through the
/// daemon's own queue and workers, timed inside the daemon, for bench/jobs.sh.
///
/// Why a method of the daemon rather than a benchmark program on the Storage and Services types:
/// it measures the path real jobs take in the daemon as it is wired (its database file, its
/// writer shared with the event outbox, its workers woken as the composition root wakes them),
/// and the times are taken where the work happens, without the socket's round trips, which are
/// not part of enqueue-to-start. The jobs belong to the caller, so they write their `job.*`
/// events as a user's jobs (`agent.run`, `chat.title`) do.
public enum TestJobs {
    public enum Run: RPCMethod {
        public static let name = "test.jobs"
        public static let summary =
            "Test only: enqueues `count` no-op jobs of the caller (`bench.noop`, 4 at once) and answers how long they took to start and to finish."
        public static let rateClass: RPCRateClassName = .exempt
        public static let timeout: Duration? = .seconds(3600)

        public enum Mode: String, RPCStringEnum {
            /// One job at a time on an idle daemon: each enqueued once the previous one finished;
            /// the time from calling `enqueue` to its handler starting.
            case latency
            /// `count` jobs enqueued by `enqueuers` tasks at once; the time until every one finished.
            case throughput
        }

        public struct Params: Codable, Sendable {
            public var count: Int
            public var mode: Mode
            /// `throughput`: tasks enqueueing at once (default 16).
            public var enqueuers: Int?

            public init(count: Int, mode: Mode, enqueuers: Int? = nil) {
                self.count = count
                self.mode = mode
                self.enqueuers = enqueuers
            }
        }

        public struct Result: Codable, Sendable, Equatable {
            public var count: Int
            /// `latency`: enqueue-to-start, in microseconds.
            public var p50Us: Double?
            public var p99Us: Double?
            public var maxUs: Double?
            /// `throughput`: from the first enqueue to the last job's end.
            public var seconds: Double?
            public var jobsPerSecond: Double?
            /// `throughput`: how long enqueueing them all took.
            public var enqueueSeconds: Double?
        }
    }
}

/// Start times of `bench.noop` jobs, and who waits for them.
public final class NoopJobRecorder: Sendable {
    private struct State {
        var started: [String: ContinuousClock.Instant] = [:]
        var waiters: [String: CheckedContinuation<ContinuousClock.Instant, Never>] = [:]
        var count = 0
    }

    private let state = Mutex(State())

    public init() {}

    func recordStart(of jobID: String, at instant: ContinuousClock.Instant) {
        let waiter = state.withLock { state -> CheckedContinuation<ContinuousClock.Instant, Never>? in
            state.count += 1
            if let waiter = state.waiters.removeValue(forKey: jobID) { return waiter }
            state.started[jobID] = instant
            return nil
        }
        waiter?.resume(returning: instant)
    }

    /// When the job started: at once if it has, else when it does.
    func start(of jobID: String) async -> ContinuousClock.Instant {
        await withCheckedContinuation { continuation in
            let started = state.withLock { state -> ContinuousClock.Instant? in
                if let instant = state.started.removeValue(forKey: jobID) { return instant }
                state.waiters[jobID] = continuation
                return nil
            }
            if let started { continuation.resume(returning: started) }
        }
    }

    func forget(_ jobIDs: some Sequence<String>) {
        state.withLock { state in
            for id in jobIDs { state.started.removeValue(forKey: id) }
        }
    }

    var startedCount: Int { state.withLock { $0.count } }
}

/// Does nothing but say when it started.
public struct NoopJob: JobHandler {
    public static let kind = "bench.noop"
    public let policy = JobKindPolicy(kind: NoopJob.kind, concurrency: 4)
    private let recorder: NoopJobRecorder

    public init(recorder: NoopJobRecorder) {
        self.recorder = recorder
    }

    public func run(_ job: ClaimedJob) async throws -> JSONFragment? {
        recorder.recordStart(of: job.job.id, at: .now)
        return nil
    }
}

/// What `test.jobs` runs.
public struct JobsBenchmark: Sendable {
    public static let maxCount = 1_000_000
    private let scheduler: JobScheduler
    private var queue: any JobQueue { scheduler.queue }
    private let recorder: NoopJobRecorder
    private let clock: any WallClock
    private let ids: any IDGenerator

    /// - Parameter scheduler: enqueues as every service does (the queue, then a wake of the workers).
    public init(scheduler: JobScheduler, recorder: NoopJobRecorder, clock: any WallClock, ids: any IDGenerator) {
        self.scheduler = scheduler
        self.recorder = recorder
        self.clock = clock
        self.ids = ids
    }

    /// - Throws: `RPCError.invalidParams` (`count`, `enqueuers`).
    public func run(_ params: TestJobs.Run.Params, userID: String) async throws -> TestJobs.Run.Result {
        guard (1...Self.maxCount).contains(params.count) else {
            throw RPCError.invalidParams(field: "count", reason: "between 1 and \(Self.maxCount)")
        }
        switch params.mode {
        case .latency: return try await latency(count: params.count, userID: userID)
        case .throughput:
            let enqueuers = params.enqueuers ?? 16
            guard (1...256).contains(enqueuers) else { throw RPCError.invalidParams(field: "enqueuers", reason: "between 1 and 256") }
            return try await throughput(count: params.count, enqueuers: enqueuers, userID: userID)
        }
    }

    private func newJob(userID: String) -> NewJob {
        NewJob(id: ids.makeID(prefix: "job_"), kind: NoopJob.kind, ownerID: userID, runAfter: clock.now())
    }

    private func latency(count: Int, userID: String) async throws -> TestJobs.Run.Result {
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let job = newJob(userID: userID)
            let before = ContinuousClock.now
            _ = try await scheduler.enqueue(job)
            let started = await recorder.start(of: job.id)
            samples.append(Self.microseconds(started - before))
            // Idle again before the next one: this job's end is stored.
            try await waitUntilFinished([job.id], userID: userID)
        }
        samples.sort()
        return TestJobs.Run.Result(
            count: count, p50Us: Self.percentile(samples, 0.50), p99Us: Self.percentile(samples, 0.99), maxUs: samples.last)
    }

    private func throughput(count: Int, enqueuers: Int, userID: String) async throws -> TestJobs.Run.Result {
        let startedBefore = recorder.startedCount
        let start = ContinuousClock.now
        let service = self
        let jobIDs = try await withThrowingTaskGroup(of: [String].self) { group in
            for enqueuer in 0..<enqueuers {
                let share = count / enqueuers + (enqueuer < count % enqueuers ? 1 : 0)
                group.addTask {
                    var ids: [String] = []
                    ids.reserveCapacity(share)
                    for _ in 0..<share {
                        let job = service.newJob(userID: userID)
                        _ = try await service.scheduler.enqueue(job)
                        ids.append(job.id)
                    }
                    return ids
                }
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
        let enqueued = ContinuousClock.now
        while recorder.startedCount - startedBefore < count {
            try await Task.sleep(for: .milliseconds(1))
        }
        // All started: the end comes when none is running any more.
        while try await !queue.list(JobQuery(ownerID: userID, state: .running, kind: NoopJob.kind, limit: 1)).isEmpty {
            try await Task.sleep(for: .microseconds(200))
        }
        let end = ContinuousClock.now
        recorder.forget(jobIDs)
        let seconds = Self.seconds(end - start)
        return TestJobs.Run.Result(
            count: count, seconds: seconds, jobsPerSecond: Double(count) / seconds, enqueueSeconds: Self.seconds(enqueued - start))
    }

    /// Polls until none of `jobIDs` is queued or running (the workers store a job's end after its
    /// handler returned; nothing tells this caller when).
    private func waitUntilFinished(_ jobIDs: some Collection<String>, userID: String) async throws {
        for id in jobIDs {
            while let job = try await queue.job(id: id, ownerID: userID), !job.state.isFinished {
                try await Task.sleep(for: .microseconds(200))
            }
        }
    }

    private static func microseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
    }

    private static func seconds(_ duration: Duration) -> Double { microseconds(duration) / 1e6 }

    private static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }
}

/// Registers `test.jobs` (only with the daemon's test methods).
public struct JobsTestRoutes: Sendable {
    let benchmark: JobsBenchmark
    let auth: AuthService

    public init(benchmark: JobsBenchmark, auth: AuthService) {
        self.benchmark = benchmark
        self.auth = auth
    }

    public func register(on router: inout RPCRouter) {
        let benchmark = self.benchmark
        router.onAuthenticated(TestJobs.Run.self, using: auth) { params, context in try await benchmark.run(params, userID: context.user.id) }
    }
}
