import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `agentd` binary running on a socket in its own temporary folder, with its stderr
/// captured to a file.
final class DaemonProcess {
    let socketPath: String
    let stderrPath: String
    let arguments: [String]
    private let child: ChildProcess

    /// Spawns `agentd --socket socketPath <arguments>` (returns at once: use `connect()` or
    /// `waitUntilConnectable()` to wait until it listens). Unless `arguments` names a `--database`,
    /// one is added beside the log, so that no test ever opens the user's own database.
    init(socketPath: String, arguments: [String], logName: String = "agentd", environment: [String: String] = [:]) throws {
        self.socketPath = socketPath
        // The log goes in the socket's folder, or its nearest existing ancestor (the daemon
        // creates missing folders itself).
        var folder = URL(fileURLWithPath: socketPath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.path), folder.path != "/" { folder.deleteLastPathComponent() }
        let name = "\(folder.path)/\(logName).\(UUID().uuidString.prefix(8))"
        stderrPath = name + ".stderr"
        var arguments = arguments
        if !arguments.contains(where: { $0 == "--database" || $0.hasPrefix("--database=") }) {
            arguments += ["--database", name + ".sqlite"]
        }
        self.arguments = ["--socket", socketPath] + arguments
        // Rate limiting is off unless a test turns it on (RateLimitTests): several tests drive
        // thousands of calls a second from one user on purpose (crash, overflow, load).
        var environment = environment
        if environment["AGENTD_RATE_LIMITING"] == nil { environment["AGENTD_RATE_LIMITING"] = "off" }
        child = try ChildProcess(
            executable: TestPaths.agentdBinary, arguments: self.arguments, stdout: nil, stderr: stderrPath, environment: environment)
    }

    var pid: Int32 { child.pid }
    var isRunning: Bool { child.isRunning }

    /// What the daemon wrote on stderr so far.
    var stderr: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// A new connection, retrying until the daemon listens (or exits, or `timeout` passes).
    func connect(timeout: Duration = .seconds(30)) throws -> RPCTestClient {
        let child = self.child
        do {
            return try RPCTestClient.connect(path: socketPath, timeout: timeout, whileAlive: { child.isRunning })
        } catch {
            throw HarnessError("\(error)\n--- agentd stderr ---\n\(stderr)")
        }
    }

    /// Waits until the socket accepts a connection (the probe connection is closed at once).
    func waitUntilConnectable(timeout: Duration = .seconds(30)) throws {
        _ = try connect(timeout: timeout)
    }

    /// Waits until the daemon's stderr contains `text` (it logs "listening" once the socket is
    /// bound and set up).
    func waitForLog(containing text: String, timeout: Duration = .seconds(30)) throws {
        let deadline = Deadline(timeout)
        while !stderr.contains(text) {
            guard isRunning else { throw HarnessError("agentd exited before logging \(text.debugDescription):\n\(stderr)") }
            guard !deadline.hasPassed else { throw HarnessError("agentd did not log \(text.debugDescription) in \(timeout):\n\(stderr)") }
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// SIGTERM: the graceful shutdown.
    func terminate() { child.signal(SIGTERM) }

    func signal(_ number: Int32) { child.signal(number) }

    func waitForExit(timeout: Duration = .seconds(30)) throws -> Termination {
        try child.waitForExit(timeout: timeout)
    }

    /// Makes sure the process is gone: SIGKILL when still running, then reaps it.
    func kill() {
        child.signal(SIGKILL)
        _ = try? child.waitForExit(timeout: .seconds(10))
    }

    deinit { kill() }
}

/// Runs `body` with a daemon on a fresh socket (`<tmp>/agentd.sock`) and `environment` set on top
/// of this process's, then kills the daemon and removes its folder, whether the body passed, failed
/// or threw. The daemon's stderr is attached to the error when the body throws.
func withDaemon<T>(
    _ arguments: [String] = [], testMethods: Bool = true, environment: [String: String] = [:],
    _ body: (DaemonProcess) throws -> T
) throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    var all = arguments  // DaemonProcess adds a --database in `directory`
    if testMethods { all.append("--enable-test-methods") }
    let daemon = try DaemonProcess(socketPath: "\(directory.path)/agentd.sock", arguments: all, environment: environment)
    defer { daemon.kill() }
    do {
        return try body(daemon)
    } catch {
        throw HarnessError("\(error)\n--- agentd stderr ---\n\(daemon.stderr)")
    }
}

/// Raises this process's open-file soft limit to at least `count` (within the hard limit).
func raiseOpenFileLimit(to count: Int) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let wanted = rlim_t(count)
    guard limit.rlim_cur < wanted else { return }
    limit.rlim_cur = min(wanted, limit.rlim_max)
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
