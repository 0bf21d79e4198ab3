import AgentdTesting
import Foundation
import NIOCore
import NIOPosix
import Services
import Testing

@testable import Daemon

#if canImport(Glibc)
import Glibc
#endif

/// The password hasher's own pool: fewer threads than cores, nice +10, and a bounded queue. No
/// timing: what the threads' priority is, that hashes are the same, and what is refused.
@Suite("Password hashing pool")
struct PasswordHashingPoolTests {
    /// The calling thread's nice, as the kernel reports it in /proc/thread-self/stat (field 19,
    /// counted after the command name, which may hold spaces and ends at the last ')').
    static func procNice() throws -> Int {
        let stat = try String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8)
        let afterName = try #require(stat.range(of: ")", options: .backwards)).upperBound
        let fields = stat[afterName...].split(separator: " ")
        // fields[0] is field 3 (state): field 19 (nice) is fields[16].
        return try #require(Int(fields[16]))
    }

    /// The calling thread's nice through `getpriority(PRIO_PROCESS, 0)` (on Linux: this thread).
    static func threadNice() -> Int32 {
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }

    /// The calling thread's id, from /proc/thread-self (a link to `PID/task/TID`).
    static func threadID() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "?"
    }

    struct ThreadPriority: Sendable, Equatable {
        var tid: String
        var nice: Int32
        var procNice: Int
    }

    @Test("jobs run at nice +10 (by getpriority and /proc), on every thread of the pool; the caller's own thread is unchanged")
    func threadsRunNicer() async throws {
        // Both sides read on a thread the pool did not make: what the pool's threads were started with.
        let base = try await NIOThreadPool.singleton.runIfActive { Self.threadNice() }
        let expected = min(19, base + 10)
        let pool = PasswordHashingPool(threads: 2, maxWaiting: 8)
        // Both threads at once: each job waits until both have started, so they hold one thread each.
        let (arrived, go) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        async let running = withThrowingTaskGroup(of: ThreadPriority.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await pool.run {
                        arrived.signal()
                        go.wait()
                        return ThreadPriority(tid: Self.threadID(), nice: Self.threadNice(), procNice: (try? Self.procNice()) ?? -100)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await NIOThreadPool.singleton.runIfActive {
            arrived.wait()
            arrived.wait()
            go.signal()
            go.signal()
        }
        let priorities = try await running
        #expect(Set(priorities.map(\.tid)).count == 2, "one job on each thread: \(priorities)")
        for priority in priorities {
            #expect(priority.nice == expected, "getpriority on a hashing thread: \(priority)")
            #expect(priority.procNice == Int(expected), "/proc/thread-self/stat on a hashing thread: \(priority)")
        }
        // Once per thread: later jobs find the same nice (never +20).
        let later = try await pool.run { Self.threadNice() }
        #expect(later == expected)
        #expect(try await NIOThreadPool.singleton.runIfActive { Self.threadNice() } == base, "other pools keep their priority")
        try await pool.shutdown()
    }

    @Test("the real hasher on the pool: the same hashes as on NIOThreadPool (RFC 7914 vector), hash then verify")
    func hasherOnThePool() async throws {
        let pool = PasswordHashingPool(threads: 1, maxWaiting: 4)
        let hasher = PBKDF2PasswordHasher(iterations: 1, threadPool: pool)
        let salt = Data("salt".utf8).base64EncodedString()
        let expected = Data([
            0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05,
            0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc,
        ]).base64EncodedString()
        #expect(try await hasher.verify("passwd", against: "pbkdf2-sha256$1$\(salt)$\(expected)"))
        #expect(try await !hasher.verify("passwD", against: "pbkdf2-sha256$1$\(salt)$\(expected)"))
        let slower = PBKDF2PasswordHasher(iterations: 1000, threadPool: pool)
        let hash = try await slower.hash("correct horse")
        #expect(try await slower.verify("correct horse", against: hash))
        #expect(try await PBKDF2PasswordHasher(threadPool: NIOThreadPool.singleton).verify("correct horse", against: hash), "either pool checks it")
        #expect(pool.admittedCount == 0)
        try await pool.shutdown()
    }

    /// Holds the pool's one thread until released.
    final class Gate: Sendable {
        private let held = DispatchSemaphore(value: 0)
        private let released = DispatchSemaphore(value: 0)
        /// On the pool: says it holds the thread, then waits for `release`.
        func hold() {
            held.signal()
            released.wait()
        }
        /// Returns once a job holds the thread (waits on another pool's thread, not the caller's).
        func waitUntilHeld() async throws {
            try await NIOThreadPool.singleton.runIfActive { self.held.wait() }
        }
        func release() { released.signal() }
    }

    /// Yields until `pool` has admitted `count` hashes: admission is the first thing `run` does,
    /// but the tasks calling it may not have started yet.
    static func waitUntilAdmitted(_ count: Int, by pool: PasswordHashingPool) async {
        for _ in 0..<100_000 where pool.admittedCount < count { await Task.yield() }
    }

    @Test("threads busy, maxWaiting hashes waiting: the next is refused at once with -32025 {setting, limit}; all run once a thread is free")
    func boundedQueue() async throws {
        let pool = PasswordHashingPool(threads: 1, maxWaiting: 2)
        let gate = Gate()
        let holder = Task { try await pool.run { gate.hold() } }
        try await gate.waitUntilHeld()
        let waiting = (0..<2).map { index in Task { try await pool.run { index } } }
        await Self.waitUntilAdmitted(3, by: pool)
        #expect(pool.admittedCount == 3, "1 running, 2 waiting")
        await #expect(throws: PasswordHashingBusyError(limit: 2)) { try await pool.run { 99 } }
        #expect(pool.admittedCount == 3, "a refused hash takes no place")

        let error = PasswordHashingBusyError(limit: 2).rpcError
        #expect(error.code.rawValue == -32025)
        #expect(error.message == "Too many password checks waiting")
        let data = try JSONSerialization.jsonObject(with: Data(try #require(error.data?.text).utf8)) as? [String: Any]
        #expect(data?["setting"] as? String == "auth.max_waiting_hashes")
        #expect(data?["limit"] as? Int == 2)
        #expect(data?.count == 2)

        gate.release()
        try await holder.value
        #expect(try await waiting[0].value == 0)
        #expect(try await waiting[1].value == 1)
        #expect(pool.admittedCount == 0)
        #expect(try await pool.run { 7 } == 7, "accepted again once the queue drained")
        try await pool.shutdown()
    }

    @Test("auth.login while the hashing thread is busy and no hash may wait: -32025 {setting, limit}; the same login works once it is free")
    func loginRefusedWhenBusy() async throws {
        let pool = PasswordHashingPool(threads: 1, maxWaiting: 0)
        let dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""),
            collaborators: .init(
                clock: TestClock(), ids: SequentialIDs(), hasher: PBKDF2PasswordHasher(iterations: 1, threadPool: pool), accounts: FakeAccounts()))
        _ = try await dependencies.auth.register(username: "walter", password: "password1")
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: HostileClientTests.strangerPeer)
        let gate = Gate()
        let holder = Task { try await pool.run { gate.hold() } }
        try await gate.waitUntilHeld()
        let refused = try await connection.call("auth.login", #"{"username":"walter","password":"password1"}"#)
        #expect(AuthRoutesTests.errorCode(refused) == -32025, "\(refused)")
        let data = (refused["error"] as? [String: Any])?["data"] as? [String: Any]
        #expect(data?["setting"] as? String == "auth.max_waiting_hashes")
        #expect(data?["limit"] as? Int == 0)
        gate.release()
        try await holder.value
        let login = try await connection.call("auth.login", #"{"username":"walter","password":"password1"}"#)
        #expect(AuthRoutesTests.result(login)?["token"] is String, "\(login)")
        try await pool.shutdown()
    }

    @Test("a hash that throws, or whose task is cancelled while it waits, gives its place back")
    func placesComeBack() async throws {
        struct Boom: Error {}
        let pool = PasswordHashingPool(threads: 1, maxWaiting: 0)
        await #expect(throws: Boom.self) { try await pool.run { () throws -> Int in throw Boom() } }
        #expect(pool.admittedCount == 0)

        let gate = Gate()
        let holder = Task { try await pool.run { gate.hold() } }
        try await gate.waitUntilHeld()
        await #expect(throws: PasswordHashingBusyError(limit: 0)) { try await pool.run { 1 } }
        gate.release()
        try await holder.value
        #expect(pool.admittedCount == 0)
        try await pool.shutdown()

        // Cancelled while waiting: it leaves the pool (and the count) when the thread comes to it.
        let queue = PasswordHashingPool(threads: 1, maxWaiting: 1)
        let gate2 = Gate()
        let holder2 = Task { try await queue.run { gate2.hold() } }
        try await gate2.waitUntilHeld()
        let waiter = Task { try await queue.run { 3 } }
        await Self.waitUntilAdmitted(2, by: queue)
        #expect(queue.admittedCount == 2)
        waiter.cancel()
        gate2.release()
        try await holder2.value
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(queue.admittedCount == 0)
        #expect(try await queue.run { 2 } == 2, "the place it held is free")
        try await queue.shutdown()
    }

    @Test("settings: auth.hash_threads 0 is one fewer than the cores (at least 1); both keys load from the file")
    func settings() throws {
        #expect(PasswordHashingPool.Settings().threadCount == max(1, System.coreCount - 1))
        #expect(PasswordHashingPool.Settings(threads: 3).threadCount == 3)
        #expect(PasswordHashingPool.Settings().maxWaiting == 64)
        let loaded = try LLMConfigurationTests.load(
            """
            [auth]
            hash_threads = 2
            max_waiting_hashes = 16
            """)
        #expect(loaded.configuration.passwordHashing == PasswordHashingPool.Settings(threads: 2, maxWaiting: 16))
        let fromEnvironment = try LLMConfigurationTests.load(environment: ["AGENTD_AUTH_MAX_WAITING_HASHES": "0"])
        #expect(fromEnvironment.configuration.passwordHashing.maxWaiting == 0)
    }
}
