import BlobStoreTesting
import Daemon
import Foundation
import Logging
import RPC
import Services
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's object graph in the test process: `Dependencies.testing` (the composition root's
/// own graph, on a migrated in-memory database) with fakes for the clock, ids, password hashing,
/// the passwd database, the model and web search, and its event consumers running as the daemon
/// runs them. Connections are `InProcessClient`s on in-memory channels: no socket, no process.
///
/// Use it through `withInProcessDaemon`, which shuts it down whatever the test does.
public final class InProcessDaemon: Sendable {
    public let dependencies: Dependencies
    public let configuration: DaemonConfiguration
    public let clock: TestClock
    public let hasher: FakeHasher
    /// The uid a process test's connections have: the daemon's own, trusted (its linked account)
    /// and exempt from rate limits by default.
    public static let ownUID = getuid()

    private let consumers: Task<Void, Never>?
    private let jobs: Task<Void, Never>?
    // Only touched under the mutex.
    private let state = Mutex((nextConnectionID: UInt64(0), clients: [InProcessClient](), shutDown: false))

    /// - Parameters:
    ///   - configure: changes to the defaults (those of `agentd` with no configuration file),
    ///     applied after these test defaults: test methods (`system.sleep`, …) on and rate limiting
    ///     off, as `withDaemon` starts the binary.
    ///   - collaborators: nil for the fakes (`TestClock`, `SequentialIDs`, `FakeHasher`,
    ///     `FakeAccounts`, no model, no web search, an `InMemoryBlobStore`; the rate limits' token buckets on `clock` too,
    ///     so a budget refills only after `clock.advance(by:)`); pass your own to script the agent.
    ///   - runEventConsumers: run the in-process event consumers (the audit log), as the daemon does.
    ///   - runJobs: run the job workers and the recurring jobs (retention), as the daemon does.
    public init(
        configure: (inout DaemonConfiguration) -> Void = { _ in }, collaborators: Dependencies.Collaborators? = nil,
        runEventConsumers: Bool = true, runJobs: Bool = true
    ) async throws {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: ":memory:")
        configuration.enableTestMethods = true
        configuration.limits.rateLimiting = false
        configure(&configuration)
        self.configuration = configuration
        let clock = TestClock()
        let hasher = FakeHasher()
        self.clock = clock
        self.hasher = hasher
        let collaborators =
            collaborators
            ?? Dependencies.Collaborators(
                clock: clock, ids: SequentialIDs(), hasher: hasher, accounts: FakeAccounts(), rateLimitClock: { clock.now().timeIntervalSince1970 },
                blobStore: InMemoryBlobStore())
        let dependencies = try await Dependencies.testing(configuration: configuration, collaborators: collaborators)
        self.dependencies = dependencies
        if runEventConsumers {
            let runners = dependencies.eventConsumers
            consumers = Task {
                await withDiscardingTaskGroup { group in
                    for runner in runners { group.addTask { await runner.run() } }
                }
            }
        } else {
            consumers = nil
        }
        if runJobs {
            let workers = dependencies.jobWorkers
            let recurring = dependencies.recurringJobs
            jobs = Task {
                await withDiscardingTaskGroup { group in
                    group.addTask { await workers.run() }
                    group.addTask { await recurring.run() }
                }
            }
        } else {
            jobs = nil
        }
    }

    /// A new connection from `peer`: by default the daemon's own uid, as a process test's
    /// connection is (it acts as that uid's linked account at once); nil for a connection without
    /// peer credentials (it must log in).
    public func connect(peer: RPCPeer? = RPCPeer(uid: InProcessDaemon.ownUID, gid: getgid(), pid: getpid())) async throws -> InProcessClient {
        let connectionID = state.withLock { state -> UInt64 in
            state.nextConnectionID += 1
            return state.nextConnectionID
        }
        // As SocketServer does: a trusted uid's connection starts with the full message limit.
        let signedIn = peer.map { configuration.trustedUIDs.contains($0.uid) } ?? false
        let client = try await InProcessClient(
            dispatcher: dependencies.dispatcher, connectionID: connectionID, peer: peer, signedIn: signedIn, logger: Dependencies.quietLogger)
        state.withLock { $0.clients.append(client) }
        return client
    }

    /// A new connection of the uid `uid`.
    public func connect(uid: UInt32) async throws -> InProcessClient {
        try await connect(peer: RPCPeer(uid: uid, gid: uid, pid: getpid()))
    }

    /// A new connection (from an untrusted uid) that registered `username` and logged in: every
    /// call on it acts as that account.
    public func registerAndLogin(username: String, password: String = "correct horse", uid: UInt32 = 60_001) async throws -> InProcessClient {
        let client = try await connect(uid: uid)
        let credentials = Auth.Credentials(username: username, password: password)
        _ = try await client.send(Auth.Register.self, credentials)
        _ = try await client.send(Auth.Login.self, credentials)
        return client
    }

    /// Closes every connection, stops the event consumers and closes the database. Idempotent.
    public func shutdown() async {
        let clients = state.withLock { state -> [InProcessClient] in
            if state.shutDown { return [] }
            state.shutDown = true
            defer { state.clients = [] }
            return state.clients
        }
        for client in clients { await client.close() }
        if let jobs {
            // As the daemon stops them: running attempts cancelled and released.
            await dependencies.jobWorkers.shutdown(timeout: .seconds(5))
            jobs.cancel()
            await jobs.value
        }
        consumers?.cancel()
        await consumers?.value
        try? dependencies.database.close()
    }
}

/// Runs `body` with a fresh `InProcessDaemon` and shuts it down afterwards, whether the body
/// returned or threw.
public func withInProcessDaemon<T: Sendable>(
    configure: (inout DaemonConfiguration) -> Void = { _ in }, collaborators: Dependencies.Collaborators? = nil,
    runEventConsumers: Bool = true, runJobs: Bool = true, _ body: (InProcessDaemon) async throws -> T
) async throws -> T {
    let daemon = try await InProcessDaemon(configure: configure, collaborators: collaborators, runEventConsumers: runEventConsumers, runJobs: runJobs)
    do {
        let result = try await body(daemon)
        await daemon.shutdown()
        return result
    } catch {
        await daemon.shutdown()
        throw error
    }
}
