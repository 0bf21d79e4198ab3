import AgentdTesting
import Foundation
import RPC
import Services
import Testing

@testable import Daemon

/// Issue 17, item 9 (and item 2's batch rule): rate limits that accounts cannot multiply, a login
/// lockout that parallel guesses cannot outrun, and no limit on the daemon's own user.
extension HostileClientTests {
    /// The test graph with rate limiting on and small budgets; in-process peers choose their uid
    /// (the daemon's own is the test's, exempt by default). The token buckets' clock stands still:
    /// no budget refills while a test counts.
    static func rateGraph(configure: (inout DaemonConfiguration) -> Void = { _ in }) async throws -> Dependencies {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.limits.rateLimiting = true
        configuration.limits.rateClasses["read"] = RPCRateClass("read", perSecond: 1, burst: 3)
        configure(&configuration)
        return try await Dependencies.testing(
            configuration: configuration,
            collaborators: .init(clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts(), rateLimitClock: { 0 }))
    }

    static let strangerPeer = RPCPeer(uid: 777, gid: 777, pid: 1)

    @Test("accounts do not multiply a uid's budget: two accounts signed in from one uid share its reads")
    func accountsShareTheUIDsBudget() async throws {
        let dependencies = try await Self.rateGraph()
        for name in ["sybil1", "sybil2"] { _ = try await dependencies.auth.register(username: name, password: "password1") }
        var served = 0
        for name in ["sybil1", "sybil2"] {
            let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: Self.strangerPeer)
            let login = try await connection.call("auth.login", #"{"username":"\#(name)","password":"password1"}"#)
            #expect(AuthRoutesTests.result(login)?["token"] is String, "\(login)")
            for _ in 0..<3 where AuthRoutesTests.result(try await connection.call("modules.list")) != nil { served += 1 }
        }
        #expect(served == 3, "the uid's read burst is 3; two accounts got \(served) reads")
    }

    @Test("auth.register is throttled per uid: past the register burst, -32017 with class register")
    func registerThrottledPerUID() async throws {
        let dependencies = try await Self.rateGraph()
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: Self.strangerPeer)
        var codes: [Int] = []
        for index in 0..<8 {
            let reply = try await connection.call("auth.register", #"{"username":"sock\#(index)","password":"password1"}"#)
            codes.append(AuthRoutesTests.errorCode(reply) ?? 0)
            if let data = (reply["error"] as? [String: Any])?["data"] as? [String: Any] { #expect(data["class"] as? String == "register") }
        }
        #expect(codes == [0, 0, 0, 0, 0, -32017, -32017, -32017])
    }

    @Test("auth.allow_registration off: auth.register answers -32024 and creates nothing")
    func registrationClosed() async throws {
        let dependencies = try await Self.rateGraph { $0.auth.allowRegistration = false }
        let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: Self.strangerPeer)
        let reply = try await connection.call("auth.register", #"{"username":"walter","password":"password1"}"#)
        #expect(AuthRoutesTests.errorCode(reply) == -32024, "\(reply)")
        #expect(try await dependencies.auth.userID(username: "walter") == nil)
    }

    @Test("the daemon's own uid is not rate limited by default; with limits.rate_exempt_own_uid off it is")
    func ownUIDExempt() async throws {
        let own = RPCPeer(uid: getuid(), gid: getgid(), pid: 1)
        for exempt in [true, false] {
            let dependencies = try await Self.rateGraph { $0.limits.rateExemptUIDs = exempt ? [getuid()] : [] }
            let connection = try await AuthRoutesTests.Connection(dependencies: dependencies, peer: own)
            var refused = 0
            for _ in 0..<10 where AuthRoutesTests.errorCode(try await connection.call("modules.list")) == -32017 { refused += 1 }
            #expect(refused == (exempt ? 0 : 7), "exempt: \(exempt)")
        }
    }

    @Test("the owner's script is not throttled by default: 600 appends, none refused")
    func ownerScriptNotThrottled() async throws {
        // Rate limiting on, everything else as the daemon's defaults (its own uid exempt).
        try await withInProcessDaemon(configure: { $0.limits.rateLimiting = true }) { daemon in
            let client = try await daemon.connect()
            let chat = try await client.send(Chats.Create.self, .init(title: "log")).id
            // Pipelined in batches of 100, as a script would.
            var refused = 0
            for batch in 0..<6 {
                let calls = (0..<100).map { index in
                    #"{"jsonrpc":"2.0","id":\#(batch * 100 + index + 2),"method":"chats.messages.append","params":{"chatId":"\#(chat)","role":"user","content":"m"}}"#
                }
                try await client.write("[" + calls.joined(separator: ",") + "]\n")
                let replies = try #require(try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self).arrayValue)
                refused += replies.filter { $0["error"] != nil }.count
            }
            #expect(refused == 0)
        }
    }

    /// On the fixture's clock, which stands still: no budget refills during the batch.
    @Test("a batch member counts against its own method's class: 4 writes and 4 reads with bursts of 3 serve 3 of each")
    func batchMembersCountPerClass() async throws {
        let configure = { (configuration: inout DaemonConfiguration) in
            configuration.limits.rateLimiting = true
            configuration.limits.rateExemptUIDs = []
            configuration.limits.rateClasses["read"] = RPCRateClass("read", perSecond: 1, burst: 3)
            configuration.limits.rateClasses["write"] = RPCRateClass("write", perSecond: 1, burst: 3)
        }
        try await withInProcessDaemon(configure: configure) { daemon in
            let client = try await daemon.connect()
            let writes = (1...4).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.create","params":{"title":"t\#($0)"}}"# }
            let reads = (5...8).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"modules.list"}"# }
            try await client.write("[" + (writes + reads).joined(separator: ",") + "]\n")
            let replies = try #require(try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self).arrayValue)
            func served(_ ids: ClosedRange<Int>) -> Int { replies.filter { ids.contains($0["id"]?.intValue ?? 0) && $0["result"] != nil }.count }
            #expect(served(1...4) == 3)
            #expect(served(5...8) == 3)
            #expect(replies.filter { $0["error"]?["code"]?.intValue == -32017 }.count == 2)
        }
    }

    @Test("20 parallel wrong logins for one username: at most the lockout threshold reach the hasher")
    func parallelLoginsCountedBeforeHashing() async throws {
        let hasher = FakeHasher()
        let dependencies = try await Dependencies.testing(
            configuration: DaemonConfiguration(socketPath: "", databasePath: ""),
            collaborators: .init(clock: TestClock(), ids: SequentialIDs(), hasher: hasher, accounts: FakeAccounts()))
        let auth = dependencies.auth
        _ = try await auth.register(username: "victim", password: "password1")
        let before = hasher.kdfRuns
        let outcomes = await withTaskGroup(of: String.self) { group in
            for index in 0..<20 {
                group.addTask {
                    do {
                        _ = try await auth.login(username: "victim", password: "guess\(index)xx")
                        return "ok"
                    } catch let error as AuthError {
                        return "\(error.rpcError.code.rawValue)"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(hasher.kdfRuns - before <= auth.settings.maxFailedLogins, "\(hasher.kdfRuns - before) guesses were hashed")
        #expect(outcomes.filter { $0 == "-32021" }.count <= auth.settings.maxFailedLogins)
        #expect(outcomes.allSatisfy { $0 == "-32021" || $0 == "-32023" }, "\(outcomes)")
    }

    @Test("20 connections send a wrong login at once: at most 5 answer -32021, the rest -32023")
    func parallelLoginsOverConnections() async throws {
        try await withInProcessDaemon { daemon in
            let setup = try await daemon.connect()
            _ = try await setup.send(Auth.Register.self, .init(username: "victim", password: "correct horse"))
            var clients: [InProcessClient] = []
            for _ in 0..<20 { clients.append(try await daemon.connect()) }
            for (index, client) in clients.enumerated() {
                try await client.write(
                    #"{"jsonrpc":"2.0","id":1,"method":"auth.login","params":{"username":"victim","password":"guess\#(index)xxx"}}"# + "\n")
            }
            var codes: [Int: Int] = [:]
            for client in clients {
                let reply = try JSONFragment(unchecked: await client.nextMessage()).decode(JSONValue.self)
                codes[reply["error"]?["code"]?.intValue ?? 0, default: 0] += 1
            }
            #expect((codes[-32021] ?? 0) <= 5, "\(codes)")
            #expect((codes[-32021] ?? 0) + (codes[-32023] ?? 0) == 20, "\(codes)")
        }
    }
}
