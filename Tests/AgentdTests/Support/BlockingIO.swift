import Foundation
import Testing

/// Threads of their own for tests that block: the live tests wait on sockets, pipes and child
/// processes with blocking calls (poll, recv, waitpid, a semaphore). On Swift's cooperative pool,
/// which has one thread per core, two such waits hold a 2-core machine's whole pool, and every
/// async test (and every async part of a live test) stalls behind them. This executor runs each
/// job on a thread it owns and starts another thread whenever all of its threads are busy, so a
/// blocked test holds only its own thread. Idle threads wait for the next job (they are few: at
/// most as many as tests blocked at once).
final class BlockingIOExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BlockingIOExecutor()

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var idleThreads = 0
    private var threads: [pthread_t] = []

    /// Whether the caller runs on one of this executor's threads.
    var ownsCurrentThread: Bool {
        let current = pthread_self()
        condition.lock()
        defer { condition.unlock() }
        return threads.contains { pthread_equal($0, current) != 0 }
    }

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        // Each idle thread takes one job; a job that no idle thread will take gets a new thread
        // (waiting for a busy one could wait forever: it may be blocked on this very job).
        let startThread = jobs.count > idleThreads
        if !startThread { condition.signal() }
        condition.unlock()
        if startThread {
            let thread = Thread { [self] in
                condition.lock()
                threads.append(pthread_self())
                condition.unlock()
                work()
            }
            thread.stackSize = 8 << 20  // glibc's default for a thread: deep test recursion fits
            thread.start()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty {
                idleThreads += 1
                condition.wait()
                idleThreads -= 1
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs each test of the suite (or the test) it is given to on `BlockingIOExecutor`'s threads
/// instead of the cooperative pool: the test's body, its `async` parts, and the child tasks they
/// start (not `Task {}`, which does not inherit the preference). Every suite whose tests block
/// (the live tests: `DaemonProcess`, `RPCTestClient`, `runCommand`, agentctl…) carries it; the
/// harness refuses to start a process or open a connection without it.
///
/// `alone`: the test asserts timing that a loaded machine breaks (a watchdog's period, a 1 s idle
/// timeout), so it runs while no other `.blockingIO` test does (the others wait, then resume).
/// Unit tests still run beside it: they are short and start no process.
struct BlockingIOTrait: SuiteTrait, TestTrait, TestScoping {
    let alone: Bool

    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Once per test case (a suite's own scope would hold the gate for all of its tests).
        guard testCase != nil else { return nil }
        // A test marked `alone` in a suite that carries the trait has both: only `alone` applies
        // (the shared hold would make it wait for itself).
        if !alone, test.traits.contains(where: { ($0 as? BlockingIOTrait)?.alone == true }) { return nil }
        return self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        await LiveTestGate.shared.enter(alone: alone)
        do {
            try await withTaskExecutorPreference(BlockingIOExecutor.shared) {
                try await function()
            }
        } catch {
            await LiveTestGate.shared.leave(alone: alone)
            throw error
        }
        await LiveTestGate.shared.leave(alone: alone)
    }
}

extension Trait where Self == BlockingIOTrait {
    /// The test (every test of the suite) blocks: run it on threads of its own, off the cooperative pool.
    static var blockingIO: Self { Self(alone: false) }

    /// The test blocks and asserts timing: run it off the pool, and while no other live test runs.
    static var blockingIOAlone: Self { Self(alone: true) }
}

/// Who may run: any number of shared (`.blockingIO`) tests, or one `alone` test. A waiting `alone`
/// test goes first (shared tests that arrive meanwhile wait behind it), so it cannot starve.
actor LiveTestGate {
    static let shared = LiveTestGate()

    private var sharedRunning = 0
    private var aloneRunning = false
    private var aloneWaiting: [CheckedContinuation<Void, Never>] = []
    private var sharedWaiting: [CheckedContinuation<Void, Never>] = []

    typealias State = (sharedRunning: Int, aloneRunning: Bool, aloneWaiting: Int, sharedWaiting: Int)

    /// Who runs and who waits (for HarnessTests).
    var state: State {
        (sharedRunning, aloneRunning, aloneWaiting.count, sharedWaiting.count)
    }

    func enter(alone: Bool) async {
        if alone {
            if sharedRunning == 0, !aloneRunning {
                aloneRunning = true
                return
            }
            await withCheckedContinuation { aloneWaiting.append($0) }  // `leave` sets aloneRunning for it
        } else {
            if !aloneRunning, aloneWaiting.isEmpty {
                sharedRunning += 1
                return
            }
            await withCheckedContinuation { sharedWaiting.append($0) }  // `leave` counts it
        }
    }

    func leave(alone: Bool) {
        if alone { aloneRunning = false } else { sharedRunning -= 1 }
        guard sharedRunning == 0, !aloneRunning else { return }
        if !aloneWaiting.isEmpty {
            aloneRunning = true
            aloneWaiting.removeFirst().resume()
        } else {
            sharedRunning += sharedWaiting.count
            for waiting in sharedWaiting { waiting.resume() }
            sharedWaiting.removeAll()
        }
    }
}

/// Throws unless the caller runs on a `BlockingIOExecutor` thread: the harness calls it before it
/// starts a process or opens a connection, so that a live test without the `.blockingIO` trait
/// fails at once, saying why, instead of starving the rest of the run.
func requireBlockingIOThread(_ what: String) throws {
    guard BlockingIOExecutor.shared.ownsCurrentThread else {
        throw HarnessError("\(what) blocks: give the test's suite the .blockingIO trait, so that it runs off Swift's cooperative pool")
    }
}
