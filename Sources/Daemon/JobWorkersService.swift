import Logging
import ServiceLifecycle
import Services

/// The job workers (`JobWorkers`) and the recurring jobs (`RecurringJobs`) in the daemon's service
/// group. On graceful shutdown the recurring jobs stop, the workers stop claiming, and their
/// running attempts are cancelled and released (they run again at the next start), waiting for
/// them at most the drain timeout (`limits.drain_timeout_ms`, read when shutdown begins).
struct JobWorkersService: Service {
    let workers: JobWorkers
    let recurring: RecurringJobs
    let shutdownTimeout: @Sendable () -> Duration
    let logger: Logger

    func run() async throws {
        logger.info(
            "job workers started",
            metadata: [
                "worker_id": "\(workers.workerID)",
                "concurrency": "\(workers.concurrency.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))",
            ])
        await withDiscardingTaskGroup { group in
            group.addTask { await workers.run() }
            group.addTask { await cancelWhenGracefulShutdown { await recurring.run() } }
            // Also when the group is cancelled instead: then the wait below ends at once.
            try? await gracefulShutdown()
            await workers.shutdown(timeout: shutdownTimeout())
        }
    }
}
