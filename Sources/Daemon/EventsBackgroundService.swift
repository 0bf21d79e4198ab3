import Logging
import ServiceLifecycle
import Services

/// The event bus's background work, for the daemon's service group: each in-process consumer in
/// its own task, and retention every `pruneInterval` (and at start), of the events and of the
/// audit log.
struct EventsBackgroundService: Service {
    static let pruneInterval: Duration = .seconds(600)

    let consumers: [EventConsumerRunner]
    let events: EventsService
    let audit: AuditService
    let logger: Logger

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for consumer in consumers {
                group.addTask { await consumer.run() }
            }
            group.addTask { await prune() }
            // Until shutdown: then the consumers stop (what they had not handled, they handle at
            // the next start).
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    private func prune() async {
        while !Task.isCancelled {
            do {
                let result = try await events.prune()
                if result.deleted > 0 {
                    logger.info("pruned events", metadata: ["deleted": "\(result.deleted)", "pruned_through": "\(result.prunedThrough)"])
                }
            } catch {
                logger.error("could not prune events", metadata: ["error": "\(error)"])
            }
            do {
                let deleted = try await audit.prune()
                if deleted > 0 { logger.info("pruned audit entries", metadata: ["deleted": "\(deleted)"]) }
            } catch {
                logger.error("could not prune audit entries", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: Self.pruneInterval)
        }
    }
}
