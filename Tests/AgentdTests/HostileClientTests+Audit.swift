import AgentdTesting
import Foundation
import GRDB
import RPC
import Services
import Testing

@testable import Daemon

/// Issue 17, item 5: the audit log cannot be flooded by clients that never log in.
extension HostileClientTests {
    /// The test graph with rate limiting off (these tests count audit rows, not refusals).
    static func auditGraph(clock: TestClock = TestClock(), configure: (inout DaemonConfiguration) -> Void = { _ in }) async throws -> Dependencies {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.limits.rateLimiting = false
        configure(&configuration)
        return try await Dependencies.testing(
            configuration: configuration, collaborators: .init(clock: clock, ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts()))
    }

    static func auditRows(_ dependencies: Dependencies) async throws -> [(action: String, outcome: String, count: Int, dataBytes: Int)] {
        try await dependencies.database.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT action, outcome, count, length(data) FROM audit_entries WHERE event_seq IS NULL ORDER BY id").map {
                (action: $0[0], outcome: $0[1], count: $0[2], dataBytes: $0[3])
            }
        }
    }

    @Test("a login with a 1 MiB username is refused and stores nothing: not in the audit log, not as a failure")
    func hugeUsernameStoresNothing() async throws {
        let dependencies = try await Self.auditGraph()
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: RPCPeer(uid: 777, gid: 777, pid: 1))
        let huge = String(repeating: "a", count: 1 << 20)
        for _ in 0..<3 {
            let reply = try await connection.call("auth.login", #"{"username":"\#(huge)","password":"password1"}"#)
            #expect(AuthRoutesTests.errorCode(reply) == -32021, "\(String(describing: reply["error"]))")
        }
        let stored = try await dependencies.database.writer.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT coalesce(sum(length(data)), 0) FROM audit_entries") ?? 0,
                try Int.fetchOne(db, sql: "SELECT coalesce(sum(length(username)), 0) FROM login_failures") ?? 0
            )
        }
        #expect(stored.0 < 1024, "audit_entries hold \(stored.0) bytes of data")
        #expect(stored.1 < 1024, "login_failures hold \(stored.1) bytes of usernames")
    }

    @Test(
        "not signed in, a login of 1 MiB is answered -32010 naming max_unauthenticated_message_bytes and closed; signed in, a 1 MiB module content is stored"
    )
    func unauthenticatedMessageLimit() async throws {
        let dependencies = try await Self.auditGraph()
        let peer = RPCPeer(uid: 777, gid: 777, pid: 1)
        let refusedConnection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: peer, signedIn: false)
        let huge = String(repeating: "a", count: 1 << 20)
        let refused = try await refusedConnection.call("auth.login", #"{"username":"\#(huge)","password":"password1"}"#)
        let error = try #require(refused["error"] as? [String: Any])
        #expect(error["code"] as? Int == -32010, "\(error)")
        let data = error["data"] as? [String: Any]
        #expect(data?["setting"] as? String == "max_unauthenticated_message_bytes")
        #expect(data?["limit"] as? Int == 64 << 10)
        try await refusedConnection.channel.closeFuture.get()
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: peer, signedIn: false)
        _ = try await connection.call("auth.register", #"{"username":"writer","password":"password1"}"#)
        let login = try await connection.call("auth.login", #"{"username":"writer","password":"password1"}"#)
        #expect(AuthRoutesTests.result(login)?["token"] is String, "\(login)")
        let created = try await connection.call("modules.create", #"{"title":"big","content":"\#(String(repeating: "c", count: 1 << 20))"}"#)
        #expect(AuthRoutesTests.result(created)?["id"] is String, "\(String(describing: created["error"]))")
    }

    @Test("over the socket, the daemon's own (trusted) uid sends a 1 MiB module content as its first message: stored")
    func trustedUIDFullMessageLimit() throws {
        try withDaemon(testMethods: false) { daemon in
            let client = try daemon.connect()
            let reply = try AuthTests.call(
                client, id: 1, "modules.create", #"{"title":"big","content":"\#(String(repeating: "c", count: 1 << 20))"}"#)
            #expect(reply["result"]?["id"]?.stringValue != nil, "\(String(describing: reply["error"]))")
        }
    }

    @Test("100 failed logins for one username within a minute make one audit row per outcome, with a count")
    func failedLoginsCoalesce() async throws {
        let dependencies = try await Self.auditGraph()
        let mallory = try await dependencies.auth.register(username: "mallory", password: "password1")
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: RPCPeer(uid: 777, gid: 777, pid: 1))
        var codes: [Int: Int] = [:]
        for _ in 0..<100 {
            let reply = try await connection.call("auth.login", #"{"username":"mallory","password":"wrong one"}"#)
            codes[AuthRoutesTests.errorCode(reply) ?? 0, default: 0] += 1
        }
        #expect(codes == [-32021: 5, -32023: 95])
        let rows = try await Self.auditRows(dependencies)
        #expect(rows.map { "\($0.action) \($0.outcome) ×\($0.count)" } == ["auth.login error -32021 ×5", "auth.login error -32023 ×95"])
        // The owner reads them with their count.
        let records = try await dependencies.audit.listWithCounts(.init(limit: 200), userID: mallory.id).items.filter { $0.eventSeq == nil }
        #expect(records.map(\.count) == [95, 5])
    }

    @Test("audit entries older than the audit retention are pruned, newer ones kept")
    func auditRetention() async throws {
        let clock = TestClock()
        let dependencies = try await Self.auditGraph(clock: clock) { $0.audit.retentionAge = 10 * 24 * 3600 }
        _ = try await dependencies.auth.register(username: "oscar", password: "password1")
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: RPCPeer(uid: 777, gid: 777, pid: 1))
        _ = try await connection.call("auth.login", #"{"username":"oscar","password":"wrong one"}"#)
        clock.advance(by: 11 * 24 * 3600)
        _ = try await connection.call("auth.login", #"{"username":"oscar","password":"password1"}"#)
        #expect(try await Self.auditRows(dependencies).count == 2)
        let pruned = try await dependencies.audit.prune()
        #expect(pruned == 1)
        #expect(try await Self.auditRows(dependencies).map(\.outcome) == ["ok"])
    }
}
