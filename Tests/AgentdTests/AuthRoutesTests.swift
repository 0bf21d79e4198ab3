import AgentdTesting
import Foundation
import RPC
import Services
import Testing

/// The auth routes through the daemon's dispatcher and connection handler, in process
/// (`InProcessDaemon`), on connections whose peer uid the test chooses: the untrusted-uid path
/// cannot be produced over a real socket by the test's own user.
@Suite("Auth routes (in process)", .timeLimit(.minutes(1)))
struct AuthRoutesTests {
    static let trustedUID: UInt32 = 4242

    /// Only `trustedUID` is trusted (not the test's own uid).
    static func withDaemon<T: Sendable>(_ body: (InProcessDaemon) async throws -> T) async throws -> T {
        try await withInProcessDaemon(configure: { $0.trustedUIDs = [Self.trustedUID] }, body)
    }

    @Test("an untrusted uid, or no peer at all, gets -32020 from every protected method until it authenticates")
    func untrustedPeer() async throws {
        try await Self.withDaemon { daemon in
            for peer in [RPCPeer(uid: 777, gid: 777, pid: 1), nil] {
                let connection = try await daemon.connect(peer: peer)
                let whoami = await #expect(throws: RPCError.self) { try await connection.send(Auth.WhoAmI.self) }
                #expect(whoami?.code.rawValue == -32020, "auth.whoami: \(String(describing: whoami))")
                let logout = await #expect(throws: RPCError.self) { try await connection.send(Auth.Logout.self) }
                #expect(logout?.code.rawValue == -32020, "auth.logout: \(String(describing: logout))")
                let change = await #expect(throws: RPCError.self) {
                    try await connection.send(Auth.ChangePassword.self, .init(oldPassword: "password1", newPassword: "password2"))
                }
                #expect(change?.code.rawValue == -32020, "\(String(describing: change))")
            }
            let connection = try await daemon.connect(peer: RPCPeer(uid: 777, gid: 777, pid: 1))
            let credentials = Auth.Credentials(username: "mallory", password: "password1")
            _ = try await connection.send(Auth.Register.self, credentials)
            let login = try await connection.send(Auth.Login.self, credentials)
            #expect(!login.token.isEmpty)
            let whoami = try await connection.send(Auth.WhoAmI.self)
            #expect(whoami.username == "mallory", "auth.login binds the connection")
        }
    }

    @Test("a trusted uid is its linked account at once, the same on every connection")
    func trustedPeer() async throws {
        try await Self.withDaemon { daemon in
            let peer = RPCPeer(uid: Self.trustedUID, gid: 100, pid: 1)
            let first = try await daemon.connect(peer: peer)
            let user = try await first.send(Auth.WhoAmI.self)
            #expect(user.username == "uid-\(Self.trustedUID)")
            #expect(user.linkedUID == Self.trustedUID)
            let second = try await daemon.connect(peer: peer)
            #expect(try await second.send(Auth.WhoAmI.self).id == user.id)
        }
    }

    @Test("too many failed logins: -32023 with data.retryAfterMs")
    func throttled() async throws {
        try await Self.withDaemon { daemon in
            let connection = try await daemon.connect(peer: nil)
            let credentials = Auth.Credentials(username: "trudy", password: "password1")
            for _ in 0..<5 {
                let error = await #expect(throws: RPCError.self) { try await connection.send(Auth.Login.self, credentials) }
                #expect(error?.code.rawValue == -32021, "\(String(describing: error))")
            }
            let error = await #expect(throws: RPCError.self) { try await connection.send(Auth.Login.self, credentials) }
            #expect(error?.code.rawValue == -32023, "\(String(describing: error))")
            #expect(error?.dataValue?["retryAfterMs"]?.intValue == 900_000, "\(String(describing: error))")
        }
    }

    @Test("auth.authenticate pipelined with whoami in one write: whoami already sees the token's user, not the uid's")
    func pipelinedAuthenticate() async throws {
        try await Self.withDaemon { daemon in
            let auth = daemon.dependencies.auth
            _ = try await auth.register(username: "peggy", password: "password1")
            let token = try await auth.login(username: "peggy", password: "password1").login.token
            for _ in 0..<20 {
                let connection = try await daemon.connect(peer: RPCPeer(uid: Self.trustedUID, gid: 100, pid: 1))
                // Raw: both requests must arrive in one read.
                try await connection.write(
                    #"{"jsonrpc":"2.0","id":1,"method":"auth.authenticate","params":{"token":"\#(token)"}}"# + "\n"
                        + #"{"jsonrpc":"2.0","id":2,"method":"auth.whoami"}"# + "\n")
                var usernames: [Int: String] = [:]
                for _ in 0..<2 {
                    let reply = try JSONFragment(unchecked: try await connection.nextMessage()).decode(JSONValue.self)
                    usernames[reply["id"]?.intValue ?? 0] = reply["result"]?["username"]?.stringValue
                }
                #expect(usernames == [1: "peggy", 2: "peggy"])
                await connection.close()
            }
        }
    }
}
