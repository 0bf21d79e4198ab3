import RPC
import Synchronization

/// Keeps `auth.login` and `auth.authenticate` in order with the calls after them on one connection.
///
/// Calls on a connection run concurrently, so a client that pipelines `auth.authenticate` and then
/// `auth.whoami` without waiting could see `whoami` resolve its principal before the binding is
/// made. This middleware runs in dispatch order, on the event loop, so it marks a binding call as
/// pending before any later call is dispatched; `AuthenticatedContext` waits until the
/// connection has no pending binding before it resolves the principal.
public struct AuthBindingOrderMiddleware: RPCMiddleware {
    static let bindingMethods: Set<String> = [Auth.Login.name, Auth.Authenticate.name]

    public init() {}

    public func handle(_ request: RPCRequest, context: RPCContext, next: RPCNext) -> RPCReply {
        // The first-byte test keeps the cost off every other call (pings are ~2 µs).
        guard context.method.utf8.first == UInt8(ascii: "a"), Self.bindingMethods.contains(context.method) else {
            return next(request, context)
        }
        let pending = context.connection.attributes.setIfAbsent(PendingBindingsKey.self, PendingBindings())
        pending.begin()
        let reply = next(request, context)
        reply.whenComplete { _ in pending.end() }
        return reply
    }
}

enum PendingBindingsKey: RPCConnectionAttributeKey {
    typealias Value = PendingBindings
}

/// How many binding calls are running on a connection, and who waits for none to be.
final class PendingBindings: Sendable {
    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    // Only touched under the mutex; continuations are resumed outside it.
    private let state = Mutex(State())

    func begin() {
        state.withLock { $0.running += 1 }
    }

    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.running -= 1
            guard state.running == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when no binding call is running (at once when none is).
    func waitUntilIdle() async {
        if state.withLock({ $0.running == 0 }) { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                if state.running == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}
