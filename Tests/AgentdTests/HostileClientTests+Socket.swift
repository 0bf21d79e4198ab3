import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, item 8: the socket's folder and the server behind it, from both ends. The tests run
/// as root, so another local user is played by uid 65534 (`nobody`).
extension HostileClientTests {
    static let stranger: UInt32 = 65534

    /// Makes `path` a folder with `mode` owned by `owner` (chmod after mkdir: the umask would eat bits).
    static func makeFolder(_ path: String, mode: mode_t, owner: UInt32 = getuid()) throws {
        guard mkdir(path, 0o700) == 0, chown(path, owner, owner) == 0, chmod(path, mode) == 0 else {
            throw HarnessError("cannot make \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Starts agentd on `socket` (with `environment`) and expects it to exit 1 without ever
    /// listening, its message containing each of `words`.
    static func expectRefusal(_ arguments: [String], environment: [String: String] = [:], in directory: TemporaryDirectory, _ words: [String]) throws
    {
        let child = try ChildProcess(
            executable: TestPaths.agentdBinary, arguments: arguments + ["--database", directory.path + "/agentd.sqlite"],
            stdout: nil, stderr: directory.path + "/stderr", environment: environment.merging(["AGENTD_RATE_LIMITING": "off"]) { $1 })
        defer { child.signal(SIGKILL) }
        let termination = try child.waitForExit(timeout: .seconds(20))
        let stderr = (try? String(contentsOfFile: directory.path + "/stderr", encoding: .utf8)) ?? ""
        #expect(termination == .exited(1), "\(stderr)")
        for word in words { #expect(stderr.contains(word), "no \(word) in: \(stderr)") }
    }

    @Test("a socket folder squatted by another user (its owner, mode 0777) is refused, naming folder, owner and mode")
    func squattedSocketFolder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let squat = directory.path + "/squat"
        try Self.makeFolder(squat, mode: 0o777, owner: Self.stranger)
        try Self.expectRefusal(["--socket", squat + "/agentd.sock"], in: directory, [squat, "uid \(Self.stranger)", "0777"])
        // The default folder ($XDG_RUNTIME_DIR/agentd, or /tmp/agentd-$UID) gets the same check.
        try Self.makeFolder(directory.path + "/run", mode: 0o700)
        try Self.makeFolder(directory.path + "/run/agentd", mode: 0o755, owner: Self.stranger)
        try Self.expectRefusal(
            [], environment: ["XDG_RUNTIME_DIR": directory.path + "/run", "AGENTD_SOCKET": ""], in: directory,
            [
                directory.path + "/run/agentd", "uid \(Self.stranger)", "0755",
            ])
    }

    @Test("our own folder writable by others is refused; a sticky system folder is accepted only when named explicitly")
    func writableAndStickyFolders() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let open = directory.path + "/open"
        try Self.makeFolder(open, mode: 0o777)
        try Self.expectRefusal(["--socket", open + "/agentd.sock"], in: directory, [open, "0777", "writable by others"])
        // A sticky, root-owned folder like /tmp: others cannot rename or remove what we put there.
        let sticky = directory.path + "/sticky"
        try Self.makeFolder(sticky, mode: 0o1777, owner: 0)
        try Self.makeFolder(directory.path + "/run", mode: 0o700)
        try Self.makeFolder(directory.path + "/run/agentd", mode: 0o1777, owner: 0)
        try Self.expectRefusal([], environment: ["XDG_RUNTIME_DIR": directory.path + "/run", "AGENTD_SOCKET": ""], in: directory, ["1777"])
        let daemon = try DaemonProcess(socketPath: sticky + "/agentd.sock", arguments: [])
        defer { daemon.kill() }
        try expectReply(daemon.connect().ping(id: 1), equals: #"{"jsonrpc":"2.0","id":1,"result":"pong"}"#)
        var status = stat()
        #expect(lstat(sticky + "/agentd.sock", &status) == 0 && status.st_mode & 0o7777 == 0o600 && status.st_uid == getuid())
    }

    @Test("agentctl refuses a server run by another uid before sending it anything (no token, no password)")
    func agentctlChecksTheServer() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o711)  // the stranger may pass through to its folder
        let folder = directory.path + "/stranger"
        try Self.makeFolder(folder, mode: 0o755, owner: Self.stranger)
        let socket = folder + "/agentd.sock"
        let record = folder + "/received"
        // The stranger's server: accepts and records every byte it gets.
        let server = try ChildProcess(
            executable: "/usr/bin/setpriv",
            arguments: [
                "--reuid=\(Self.stranger)", "--regid=\(Self.stranger)", "--clear-groups", "/usr/bin/socat", "-u",
                "UNIX-LISTEN:\(socket),fork", "OPEN:\(record),creat,append",
            ],
            stdout: nil, stderr: directory.path + "/socat.stderr")
        defer { server.signal(SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard ContinuousClock.now < deadline, server.isRunning else {
                throw HarnessError("socat did not listen: \((try? String(contentsOfFile: directory.path + "/socat.stderr", encoding: .utf8)) ?? "")")
            }
            _ = poll(nil, 0, 10)
        }
        let ctl = Agentctl(socketPath: socket, configHome: directory.path + "/config")
        try FileManager.default.createDirectory(atPath: ctl.configHome + "/agentctl", withIntermediateDirectories: true)
        try "saved-secret-token\n".write(toFile: ctl.configHome + "/agentctl/token", atomically: true, encoding: .utf8)
        let call = try ctl.run(["call", "system.ping"], timeout: .seconds(5))
        #expect(call.status != 0)
        #expect(call.stderr.contains("uid \(Self.stranger)"), "\(call)")
        let login = try ctl.run(["login", "alice", "--password-stdin"], stdin: "typed-password\n", timeout: .seconds(5))
        #expect(login.status != 0)
        #expect(login.stderr.contains("uid \(Self.stranger)"), "\(login)")
        let received = (try? String(contentsOfFile: record, encoding: .utf8)) ?? ""
        #expect(!received.contains("saved-secret-token") && !received.contains("typed-password"), "the stranger got: \(received)")
        #expect(received.isEmpty, "the stranger got: \(received)")
        // Told to trust that uid (--trust-uid), agentctl talks to it: the recording was empty above
        // because of the check, not because the recorder records nothing.
        let trusting = try ctl.start(["call", "system.ping", "--trust-uid", "\(Self.stranger)"], in: directory.path)
        defer { trusting.kill() }
        let sent = ContinuousClock.now + .seconds(10)
        while !((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").contains("session.hello") {
            guard ContinuousClock.now < sent else { throw HarnessError("a trusted server got nothing") }
            _ = poll(nil, 0, 10)
        }
    }
}
