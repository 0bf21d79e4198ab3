import Foundation
import Logging
import NIOCore
import NIOEmbedded
import RPC
import Services
import Testing

@testable import Daemon

/// The auth routes through the real dispatcher and connection handler of the test graph
/// (`Dependencies.testing`), on an in-process channel whose peer uid the test chooses: the
/// untrusted-uid path cannot be produced over a real socket by the test's own user.
@Suite("Auth routes (in process)")
struct AuthRoutesTests {
    static let trustedUID: UInt32 = 4242

    final class Connection: @unchecked Sendable {
        // @unchecked: used by one test task at a time.
        let channel = NIOAsyncTestingChannel()
        private var received = ""
        private var nextID = 0

        /// `signedIn`: whether the handler starts with the full message limit, as the daemon's does
        /// for a trusted uid (false: `max_unauthenticated_message_bytes` until it signs in).
        init(dependencies: Dependencies, peer: RPCPeer?, signedIn: Bool = true) async throws {
            let channel = self.channel
            let dispatcher = dependencies.dispatcher
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.addHandler(
                    RPCConnectionHandler(dispatcher: dispatcher, connectionID: 1, peer: peer, logger: Dependencies.quietLogger, signedIn: signedIn))
            }.get()
            try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/tmp/in-process")).get()
        }

        /// Sends a call and returns its reply, parsed. After a `-32017` it waits the refusal's
        /// `retryAfterMs` on the channel's clock, as a client should: the connection is not served
        /// before (the rate-limit pause), and this clock moves only when a test moves it.
        func call(_ method: String, _ params: String = "{}") async throws -> [String: Any] {
            nextID += 1
            try await send(#"{"jsonrpc":"2.0","id":\#(nextID),"method":"\#(method)","params":\#(params)}"# + "\n")
            let reply = try await next()
            if let error = reply["error"] as? [String: Any], error["code"] as? Int == -32017,
                let wait = (error["data"] as? [String: Any])?["retryAfterMs"] as? Int
            {
                await channel.testingEventLoop.advanceTime(by: .milliseconds(Int64(wait)))
            }
            return reply
        }

        func send(_ text: String) async throws {
            try await channel.writeInbound(ByteBuffer(string: text))
        }

        /// The next reply, parsed.
        func next() async throws -> [String: Any] {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                if let newline = received.firstIndex(of: "\n") {
                    let line = String(received[..<newline])
                    received.removeSubrange(...newline)
                    return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                }
                if let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                    received += String(buffer: buffer)
                    continue
                }
                guard ContinuousClock.now < deadline else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(1))  // polling for the server's write, bounded by the deadline
            }
        }
    }

    let dependencies: Dependencies

    init() async throws {
        var configuration = DaemonConfiguration(socketPath: "", databasePath: "")
        configuration.trustedUIDs = [Self.trustedUID]
        dependencies = try await Dependencies.testing(
            configuration: configuration,
            collaborators: .init(clock: TestClock(), ids: SequentialIDs(), hasher: FakeHasher(), accounts: FakeAccounts()))
    }

    static func errorCode(_ reply: [String: Any]) -> Int? { (reply["error"] as? [String: Any])?["code"] as? Int }
    static func result(_ reply: [String: Any]) -> [String: Any]? { reply["result"] as? [String: Any] }

    @Test("an untrusted uid, or no peer at all, gets -32020 from every protected method until it authenticates")
    func untrustedPeer() async throws {
        for peer in [RPCPeer(uid: 777, gid: 777, pid: 1), nil] {
            let connection = try await Connection(dependencies: dependencies, peer: peer)
            for method in ["auth.whoami", "auth.logout"] {
                let reply = try await connection.call(method)
                #expect(Self.errorCode(reply) == -32020, "\(method): \(reply)")
            }
            let change = try await connection.call("auth.changePassword", #"{"oldPassword":"password1","newPassword":"password2"}"#)
            #expect(Self.errorCode(change) == -32020, "\(change)")
        }
        let connection = try await Connection(dependencies: dependencies, peer: RPCPeer(uid: 777, gid: 777, pid: 1))
        _ = try await connection.call("auth.register", #"{"username":"mallory","password":"password1"}"#)
        let login = try await connection.call("auth.login", #"{"username":"mallory","password":"password1"}"#)
        #expect(Self.result(login)?["token"] is String, "\(login)")
        let whoami = try await connection.call("auth.whoami")
        #expect(Self.result(whoami)?["username"] as? String == "mallory", "auth.login binds the connection: \(whoami)")
    }

    @Test("a trusted uid is its linked account at once, the same on every connection")
    func trustedPeer() async throws {
        let peer = RPCPeer(uid: Self.trustedUID, gid: 100, pid: 1)
        let first = try await Connection(dependencies: dependencies, peer: peer)
        let whoami = try await first.call("auth.whoami")
        let user = try #require(Self.result(whoami), "\(whoami)")
        #expect(user["username"] as? String == "uid-\(Self.trustedUID)")
        #expect(user["linkedUID"] as? Int == Int(Self.trustedUID))
        let second = try await Connection(dependencies: dependencies, peer: peer)
        #expect(Self.result(try await second.call("auth.whoami"))?["id"] as? String == user["id"] as? String)
    }

    @Test("too many failed logins: -32023 with data.retryAfterMs")
    func throttled() async throws {
        let connection = try await Connection(dependencies: dependencies, peer: nil)
        for _ in 0..<5 {
            let reply = try await connection.call("auth.login", #"{"username":"trudy","password":"password1"}"#)
            #expect(Self.errorCode(reply) == -32021, "\(reply)")
        }
        let reply = try await connection.call("auth.login", #"{"username":"trudy","password":"password1"}"#)
        #expect(Self.errorCode(reply) == -32023, "\(reply)")
        let data = (reply["error"] as? [String: Any])?["data"] as? [String: Any]
        #expect(data?["retryAfterMs"] as? Int == 900_000, "\(reply)")
    }

    @Test("auth.authenticate pipelined with whoami in one write: whoami already sees the token's user, not the uid's")
    func pipelinedAuthenticate() async throws {
        let auth = dependencies.auth
        _ = try await auth.register(username: "peggy", password: "password1")
        let token = try await auth.login(username: "peggy", password: "password1").login.token
        for _ in 0..<20 {
            let connection = try await Connection(dependencies: dependencies, peer: RPCPeer(uid: Self.trustedUID, gid: 100, pid: 1))
            try await connection.send(
                #"{"jsonrpc":"2.0","id":1,"method":"auth.authenticate","params":{"token":"\#(token)"}}"# + "\n"
                    + #"{"jsonrpc":"2.0","id":2,"method":"auth.whoami"}"# + "\n")
            var usernames: [Int: String] = [:]
            for _ in 0..<2 {
                let reply = try await connection.next()
                usernames[reply["id"] as? Int ?? 0] = Self.result(reply)?["username"] as? String
            }
            #expect(usernames == [1: "peggy", 2: "peggy"])
        }
    }
}
