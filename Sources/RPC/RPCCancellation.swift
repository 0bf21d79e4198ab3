import Synchronization

/// Why a call was cancelled; decides what the client is told.
public enum RPCCancellationReason: Sendable, Equatable {
    /// `$/cancelRequest` from the client: answered with `-32800`.
    case requestedByClient
    /// The method's timeout passed: answered with `-32001`.
    case timedOut(limit: Duration)
    /// The connection closed: nobody is left to answer.
    case connectionClosed
    /// The server stopped before the call finished draining: answered with `-32002`.
    case serverShutdown
}

/// The cancellation handle of one call. Whoever cancels (the client, a timeout, the connection, the
/// server) calls `cancel(_:)`; the first reason wins and every registered handler runs once.
public final class RPCCancellation: Sendable {
    private struct State {
        var reason: RPCCancellationReason?
        var handlers: [@Sendable () -> Void] = []
    }
    // Invariant: `handlers` is emptied when `reason` is set, so each handler runs at most once.
    private let state = Mutex(State())
    /// Inline calls finish before anything could cancel them: they share one handle that ignores
    /// `cancel`, which saves an allocation per call on the hot path.
    private let isInert: Bool

    public init() { self.isInert = false }

    private init(inert: Bool) { self.isInert = inert }

    static let inert = RPCCancellation(inert: true)

    public var reason: RPCCancellationReason? { state.withLock { $0.reason } }
    public var isCancelled: Bool { reason != nil }

    public func cancel(_ reason: RPCCancellationReason) {
        if isInert { return }
        let handlers: [@Sendable () -> Void]? = state.withLock { state in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.handlers = [] }
            return state.handlers
        }
        for handler in handlers ?? [] { handler() }
    }

    /// Runs `handler` when the call is cancelled, at once if it already is.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            if state.reason != nil { return true }
            state.handlers.append(handler)
            return false
        }
        if runNow { handler() }
    }
}
