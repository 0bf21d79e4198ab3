import NIOPosix

/// Where slow, blocking work runs (a KDF, a passwd lookup): threads of its own, never the Swift
/// cooperative pool, whose few threads one such call would hold for its whole length.
///
/// The daemon's password hasher runs on a pool of its own (`PasswordHashingPool`, in the Daemon
/// module); tests and other blocking work use a `NIOThreadPool`.
public protocol BlockingWorkRunner: Sendable {
    /// Runs `work` on one of this runner's threads and returns what it returned, or throws what it
    /// threw (or the runner's own refusal, `PasswordHashingBusyError` for the hashing pool).
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T
}

extension NIOThreadPool: BlockingWorkRunner {
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await runIfActive(work)
    }
}
