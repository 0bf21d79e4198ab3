import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The auth methods over the socket, with the real binary (and its real PBKDF2 hasher).
@Suite("Auth over the socket", .blockingIO, .timeLimit(.minutes(2)))
struct AuthTests {
    static func call(_ client: RPCTestClient, id: Int, _ method: String, _ params: String = "{}") throws -> JSON {
        try client.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#)
        let reply = try client.readJSON(timeout: .seconds(60))
        #expect(reply["id"] == .integer(Int64(id)), "reply: \(reply)")
        return reply
    }

    @Test("register, login, then auth.authenticate on a second connection: whoami answers the account there")
    func registerLoginAuthenticate() throws {
        try withDaemon { daemon in
            let first = try daemon.connect()
            let registered = try Self.call(first, id: 1, "auth.register", #"{"username":"alice","password":"correct horse"}"#)
            #expect(registered["result"]?["username"]?.stringValue == "alice", "reply: \(registered)")
            let userID = try #require(registered["result"]?["id"]?.stringValue)

            let taken = try Self.call(first, id: 2, "auth.register", #"{"username":"ALICE","password":"correct horse"}"#)
            #expect(taken.errorCode == -32022, "reply: \(taken)")

            let short = try Self.call(first, id: 3, "auth.register", #"{"username":"bob","password":"short"}"#)
            #expect(short.errorCode == -32602, "reply: \(short)")
            #expect(short["error"]?["data"]?["field"]?.stringValue == "password", "reply: \(short)")

            let wrong = try Self.call(first, id: 4, "auth.login", #"{"username":"alice","password":"wrong horse"}"#)
            #expect(wrong.errorCode == -32021, "reply: \(wrong)")

            let login = try Self.call(first, id: 5, "auth.login", #"{"username":"alice","password":"correct horse"}"#)
            let token = try #require(login["result"]?["token"]?.stringValue, "reply: \(login)")
            #expect(login["result"]?["user"]?["id"]?.stringValue == userID)
            #expect(login["result"]?["expiresAt"]?.stringValue != nil)

            let second = try daemon.connect()
            let bad = try Self.call(second, id: 1, "auth.authenticate", #"{"token":"not-a-token"}"#)
            #expect(bad.errorCode == -32020, "reply: \(bad)")
            let authenticated = try Self.call(second, id: 2, "auth.authenticate", #"{"token":"\#(token)"}"#)
            #expect(authenticated["result"]?["id"]?.stringValue == userID, "reply: \(authenticated)")
            let whoami = try Self.call(second, id: 3, "auth.whoami")
            #expect(whoami["result"]?["username"]?.stringValue == "alice", "reply: \(whoami)")

            // Logging out ends the session everywhere it is used.
            let logout = try Self.call(first, id: 6, "auth.logout")
            #expect(logout["result"] == .bool(true), "reply: \(logout)")
            let revoked = try Self.call(second, id: 4, "auth.whoami")
            #expect(revoked.errorCode == -32020, "reply: \(revoked)")
        }
    }

    @Test("a connection from the daemon's own uid is its linked account (uid-<uid> or the login name) without a password")
    func peerCredentials() throws {
        try withDaemon { daemon in
            let client = try daemon.connect()
            let whoami = try Self.call(client, id: 1, "auth.whoami")
            let user = try #require(whoami["result"], "reply: \(whoami)")
            #expect(user["linkedUID"]?.intValue == Int(getuid()), "reply: \(whoami)")
            #expect(user["hasPassword"] == .bool(false))
            let username = try #require(user["username"]?.stringValue)
            let loginName = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
            #expect(username == "uid-\(getuid())" || username == loginName, "username \(username)")

            // Another connection of the same uid is the same account, not a new one.
            let other = try daemon.connect()
            let again = try Self.call(other, id: 1, "auth.whoami")
            #expect(again["result"]?["id"] == user["id"], "reply: \(again)")
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
                S + #"echo '{"jsonrpc":"2.0","id":1,"method":"auth.register","params":{"username":"alice","password":"correct horse"}}' | socat -t 5 - UNIX-CONNECT:$S"#, daemon: daemon)
            #expect(try JSON(parsing: registered)["result"]?["username"]?.stringValue == "alice", "stdout: \(registered)")
            let login = try DiscoveryTests.runReadmeExample(
                S + #"echo '{"jsonrpc":"2.0","id":2,"method":"auth.login","params":{"username":"alice","password":"correct horse"}}' | socat -t 5 - UNIX-CONNECT:$S"#, daemon: daemon)
            let token = try #require(try JSON(parsing: login)["result"]?["token"]?.stringValue, "stdout: \(login)")
            let lines = try DiscoveryTests.runReadmeExample(
                S + #"printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"auth.authenticate","params":{"token":"\#(token)"}}' '{"jsonrpc":"2.0","id":2,"method":"auth.whoami"}' | socat -t 5 - UNIX-CONNECT:$S"#, daemon: daemon)
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

