import NIOCore
import NIOPosix
import Services
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The password hasher's own threads (`PBKDF2PasswordHasher`).
///
/// PBKDF2 at 600,000 iterations is 100+ ms of CPU per `auth.login`. On `NIOThreadPool.singleton`
/// (one thread per core, normal priority, shared with other blocking work) a burst of wrong logins
/// took every core from the event loops that serve everyone else. Here:
/// - at most `threadCount` hashes run at once: one core fewer than the machine has, at least 1
///   (`auth.hash_threads`);
/// - those threads run `niceIncrement` (10) nicer than the daemon, so that when the cores are
///   contended the event loops get most of the CPU, and on an idle machine a hash is as fast as before;
/// - at most `maxWaiting` more hashes wait for a thread (`auth.max_waiting_hashes`); past that a
///   hash is refused at once (`PasswordHashingBusyError`, `-32025`). The rate limits do not bound
///   this queue: each uid has its own `auth` budget, the daemon's own uid has none, the lockout is
///   per username, and `auth.register` and `auth.changePassword` hash too.
///
/// NIOThreadPool has no hook that runs when one of its threads starts, so the first job on each
/// thread lowers that thread's priority (a thread-specific flag says it is done): relative to the
/// nice the thread was started with, once, and never raised again (which would need privileges).
final class PasswordHashingPool: BlockingWorkRunner {
    struct Settings: Sendable, Equatable {
        /// Hashing threads; 0: one fewer than the cores (`System.coreCount`, which follows cgroup
        /// CPU limits), at least 1.
        var threads = 0
        /// Hashes that may wait for a thread before more are refused.
        var maxWaiting = 64

        var threadCount: Int { threads > 0 ? threads : max(1, System.coreCount - 1) }
    }

    /// How much nicer than the daemon the hashing threads run (nice is capped at 19).
    static let defaultNiceIncrement: Int32 = 10

    let threadCount: Int
    let maxWaiting: Int
    let niceIncrement: Int32
    private let pool: NIOThreadPool
    /// Hashes admitted and not finished: running, or waiting for a thread. `runIfActive` returns only
    /// once its job has been taken off the queue (run, or skipped when its task was cancelled), so a
    /// job leaves this count when it leaves the pool.
    private let admitted = Atomic<Int>(0)
    /// Set on each pool thread once its priority is lowered.
    private let lowered = ThreadSpecificVariable<Lowered>()
    private final class Lowered: Sendable {}

    /// Starts the threads.
    init(threads: Int, maxWaiting: Int, niceIncrement: Int32 = PasswordHashingPool.defaultNiceIncrement) {
        precondition(threads > 0 && maxWaiting >= 0 && niceIncrement >= 0)
        threadCount = threads
        self.maxWaiting = maxWaiting
        self.niceIncrement = niceIncrement
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    convenience init(settings: Settings) {
        self.init(threads: settings.threadCount, maxWaiting: settings.maxWaiting)
    }

    /// Hashes running or waiting now (for tests).
    var admittedCount: Int { admitted.load(ordering: .relaxed) }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard admitted.add(1, ordering: .relaxed).newValue <= threadCount + maxWaiting else {
            admitted.subtract(1, ordering: .relaxed)
            throw PasswordHashingBusyError(limit: maxWaiting)
        }
        defer { admitted.subtract(1, ordering: .relaxed) }
        let (lowered, niceIncrement) = (self.lowered, self.niceIncrement)
        return try await pool.runIfActive {
            if lowered.currentValue == nil {
                Self.lowerCurrentThreadPriority(by: niceIncrement)
                lowered.currentValue = Lowered()
            }
            return try work()
        }
    }

    /// Stops the threads once the jobs already admitted are done (tests; the daemon keeps its pool
    /// until the process exits).
    func shutdown() async throws {
        try await pool.shutdownGracefully()
    }

    /// Linux keeps a nice value per thread, and `PRIO_PROCESS` with `who` 0 means the calling
    /// thread (the kernel looks up `current`, not the thread group: `setpriority(2)`, "Bugs"), which
    /// is `setpriority(PRIO_PROCESS, gettid(), …)` without `gettid` (Glibc does not export it to
    /// Swift). A failure leaves the thread at the daemon's priority: hashing still works.
    private static func lowerCurrentThreadPriority(by increment: Int32) {
        #if os(Linux)
        let thisThread = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let current = getpriority(thisThread, 0)  // -1 is a valid nice: errno tells an error
        guard errno == 0 else { return }
        _ = setpriority(thisThread, 0, min(19, current + increment))
        #endif
    }
}
