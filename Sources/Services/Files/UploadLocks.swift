import Synchronization

/// One lock per upload id, held across a chunk's check, write and advance (or a commit): two
/// chunks of one upload never interleave their writes to its staging area, and the offset check
/// sees the end of the chunk before. Waiters are resumed in arrival order; a lock nobody holds or
/// waits for takes no memory.
final class UploadLocks: Sendable {
    private let state = Mutex([String: [CheckedContinuation<Void, Never>]]())

    /// Runs `body` holding the lock of `id`.
    func withLock<T: Sendable>(_ id: String, _ body: () async throws -> T) async throws -> T {
        await acquire(id)
        do {
            let result = try await body()
            release(id)
            return result
        } catch {
            release(id)
            throw error
        }
    }

    private func acquire(_ id: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = state.withLock { waiters -> Bool in
                if waiters[id] == nil {
                    // Held, nobody waiting.
                    waiters[id] = []
                    return true
                }
                waiters[id]!.append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    private func release(_ id: String) {
        let next = state.withLock { waiters -> CheckedContinuation<Void, Never>? in
            guard var queue = waiters[id], !queue.isEmpty else {
                waiters[id] = nil
                return nil
            }
            // The lock passes to the first waiter without being free in between.
            let first = queue.removeFirst()
            waiters[id] = queue
            return first
        }
        next?.resume()
    }
}
