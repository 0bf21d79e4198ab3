import Logging
import ServiceLifecycle
import Services

/// The event bus's background work, for the daemon's service group: each in-process consumer in
/// its own task. (Retention is a recurring job now: `events.prune`, `audit.prune`.)
struct EventsBackgroundService: Service {
    let consumers: [EventConsumerRunner]

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for consumer in consumers {
                group.addTask { await consumer.run() }
            }
            // Until shutdown: then the consumers stop (what they had not handled, they handle at
            // the next start).
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
