import Synchronization

/// The runs going on in this process, by id, so that `agent.cancel` (from any connection of the
/// same user) can stop one and wait until its cancelled state is stored.
final class AgentRunRegistry: Sendable {
    // Invariant: only touched under the mutex; a handle is here from before its run's start is
    // stored until its end is.
    private let handles = Mutex([String: AgentRunHandle]())

    func add(_ runID: String, _ handle: AgentRunHandle) {
        handles.withLock { $0[runID] = handle }
    }

    func remove(_ runID: String) {
        _ = handles.withLock { $0.removeValue(forKey: runID) }
    }

    /// The run's handle when it is going on here and is `userID`'s.
    func handle(_ runID: String, userID: String) -> AgentRunHandle? {
        handles.withLock { $0[runID] }.flatMap { $0.userID == userID ? $0 : nil }
    }

    var count: Int { handles.withLock { $0.count } }
}
