import AgentdTesting
import Foundation
import RPC
import Services
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The auth methods over the socket, with the real binary: only what a process shows (the README's
/// `socat` examples, the `--trusted-uid` flag). The methods themselves are tested in process
/// (`AuthFlowTests` below, `AuthRoutesTests`). `call` is the live suites' helper for one request
/// and its reply.
@Suite("Auth over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct AuthTests {
    static func call(_ client: RPCTestClient, id: Int, _ method: String, _ params: String = "{}") throws -> JSON {
        try client.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        let reply = try client.readJSON(timeout: .seconds(60))
        #expect(reply["id"] == .integer(Int64(id)), "reply: \(reply)")
        return reply
    }
}

/// Registering, logging in, authenticating and logging out through the daemon's dispatcher, in
/// process (fake hasher: no 600,000-iteration PBKDF2 per call).
@Suite("Auth flow (in process)", .timeLimit(.minutes(1)))
struct AuthFlowTests {
    static func code(_ error: RPCError?) -> Int? { error.map { Int($0.code.rawValue) } }

    @Test("register, login, then auth.authenticate on a second connection: whoami answers the account there")
    func registerLoginAuthenticate() async throws {
        try await withInProcessDaemon { daemon in
            let first = try await daemon.connect()
            let alice = Auth.Credentials(username: "alice", password: "correct horse")
            let registered = try await first.send(Auth.Register.self, alice)
            #expect(registered.username == "alice")
            let userID = registered.id

            let taken = await #expect(throws: RPCError.self) {
                try await first.send(Auth.Register.self, .init(username: "ALICE", password: "correct horse"))
            }
            #expect(Self.code(taken) == -32022, "\(String(describing: taken))")

            let short = await #expect(throws: RPCError.self) { try await first.send(Auth.Register.self, .init(username: "bob", password: "short")) }
            #expect(Self.code(short) == -32602, "\(String(describing: short))")
            #expect(short?.dataValue?["field"]?.stringValue == "password", "\(String(describing: short))")

            let wrong = await #expect(throws: RPCError.self) {
                try await first.send(Auth.Login.self, .init(username: "alice", password: "wrong horse"))
            }
            #expect(Self.code(wrong) == -32021, "\(String(describing: wrong))")

            // Raw, to see that expiresAt is on the wire as a string.
            let login = try await first.call("auth.login", #"{"username":"alice","password":"correct horse"}"#).decode(JSONValue.self)
            let token = try #require(login["token"]?.stringValue, "\(login)")
            #expect(login["user"]?["id"]?.stringValue == userID)
            #expect(login["expiresAt"]?.stringValue != nil)

            let second = try await daemon.connect()
            let bad = await #expect(throws: RPCError.self) { try await second.send(Auth.Authenticate.self, .init(token: "not-a-token")) }
            #expect(Self.code(bad) == -32020, "\(String(describing: bad))")
            let authenticated = try await second.send(Auth.Authenticate.self, .init(token: token))
            #expect(authenticated.id == userID)
            #expect(try await second.send(Auth.WhoAmI.self).username == "alice")

            // Logging out ends the session everywhere it is used.
            #expect(try await first.send(Auth.Logout.self) == true)
            let revoked = await #expect(throws: RPCError.self) { try await second.send(Auth.WhoAmI.self) }
            #expect(Self.code(revoked) == -32020, "\(String(describing: revoked))")
        }
    }

    /// The fixture's passwd database knows no names, so the account is `uid-<uid>` (the daemon,
    /// reading /etc/passwd, may name it after the login name instead).
    @Test("a connection from the daemon's own uid is its linked account (uid-<uid>) without a password")
    func peerCredentials() async throws {
        try await withInProcessDaemon { daemon in
            let client = try await daemon.connect()
            let user = try await client.send(Auth.WhoAmI.self)
            #expect(user.linkedUID == getuid())
            #expect(user.hasPassword == false)
            #expect(user.username == "uid-\(getuid())", "username \(user.username)")

            // Another connection of the same uid is the same account, not a new one.
            let other = try await daemon.connect()
            #expect(try await other.send(Auth.WhoAmI.self).id == user.id)
        }
    }
}

extension AuthTests {
    @Test("the README's Accounts examples: register, login, then authenticate + whoami on another connection")
    func readmeExamples() throws {
        try DiscoveryTests.requireSocat()
        try withDaemon { daemon in
            let S = "S=/tmp/agentd.sock; "
            let registered = try DiscoveryTests.runReadmeExample(
                S
                    + #"echo '{"jsonrpc":"2.0","id":1,"method":"auth.register","params":{"username":"alice","password":"correct horse"}}' | socat -t 5 - UNIX-CONNECT:$S"#,
                daemon: daemon)
            #expect(try JSON(parsing: registered)["result"]?["username"]?.stringValue == "alice", "stdout: \(registered)")
            let login = try DiscoveryTests.runReadmeExample(
                S
                    + #"echo '{"jsonrpc":"2.0","id":2,"method":"auth.login","params":{"username":"alice","password":"correct horse"}}' | socat -t 5 - UNIX-CONNECT:$S"#,
                daemon: daemon)
            let token = try #require(try JSON(parsing: login)["result"]?["token"]?.stringValue, "stdout: \(login)")
            let lines = try DiscoveryTests.runReadmeExample(
                S
                    + #"printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"auth.authenticate","params":{"token":"\#(token)"}}' '{"jsonrpc":"2.0","id":2,"method":"auth.whoami"}' | socat -t 5 - UNIX-CONNECT:$S"#,
                daemon: daemon
            )
            .split(separator: "\n")
            #expect(lines.count == 2, "stdout: \(lines)")
            for line in lines {
                #expect(try JSON(parsing: String(line))["result"]?["username"]?.stringValue == "alice", "line: \(line)")
            }
        }
    }
}

extension AuthTests {
    @Test("--trusted-uid is accepted (repeatable) and the daemon's own uid stays trusted; a bad value is refused")
    func trustedUIDFlag() throws {
        try withDaemon(["--trusted-uid", "12345", "--trusted-uid", "54321"]) { daemon in
            let client = try daemon.connect()
            let whoami = try Self.call(client, id: 1, "auth.whoami")
            #expect(whoami["result"]?["linkedUID"]?.intValue == Int(getuid()), "reply: \(whoami)")
        }
        let refused = try runCommand(TestPaths.agentdBinary, ["--trusted-uid", "nobody", "--socket", "/nonexistent/a.sock"])
        #expect(refused.termination != .exited(0))
        #expect(refused.stderr.contains("trusted-uid"), "stderr: \(refused.stderr)")
    }
}
