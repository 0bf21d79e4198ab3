import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs the `agentctl` binary against a daemon, with its own config folder (the token file) so
/// that no test touches the user's own.
struct Agentctl {
    let socketPath: String
    let configHome: String

    init(socketPath: String, configHome: String) {
        self.socketPath = socketPath
        self.configHome = configHome
    }

    var environment: [String: String] {
        ["AGENTD_SOCKET": socketPath, "XDG_CONFIG_HOME": configHome, "NO_COLOR": ""]
    }

    struct Outcome: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "status \(status)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)" }
    }

    /// Runs `agentctl arguments` to completion, `stdin` written to its input (then closed);
    /// stdout and stderr are files, so the output is piped, not a terminal.
    func run(_ arguments: [String], stdin: String = "", extraEnvironment: [String: String] = [:], timeout: Duration = .seconds(30)) throws -> Outcome
    {
        try requireBlockingIOThread("agentctl")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.agentctlBinary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment.merging(extraEnvironment) { $1 }) { $1 }
        let input = Pipe()
        process.standardInput = input
        _ = FileManager.default.createFile(atPath: directory.path + "/out", contents: nil)
        _ = FileManager.default.createFile(atPath: directory.path + "/err", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: directory.path + "/out")
        process.standardError = FileHandle(forWritingAtPath: directory.path + "/err")
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        try? input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
        try? input.fileHandleForWriting.close()
        let (seconds, attoseconds) = timeout.components
        guard exited.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .success else {
            kill(process.processIdentifier, SIGKILL)
            throw HarnessError("agentctl \(arguments) still running after \(timeout)")
        }
        return Outcome(
            status: process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus,
            stdout: (try? String(contentsOfFile: directory.path + "/out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: directory.path + "/err", encoding: .utf8)) ?? "")
    }

    /// Starts `agentctl arguments` in the background with stdout and stderr going to files in
    /// `folder` (for `watch`).
    func start(_ arguments: [String], in folder: String) throws -> BackgroundAgentctl {
        try BackgroundAgentctl(arguments: arguments, environment: environment, folder: folder, terminal: false)
    }

    /// Starts `agentctl arguments` on a pseudo-terminal (util-linux `script`, which gives the
    /// child a pty as its controlling terminal: a Ctrl-C byte written to its input is SIGINT, as
    /// from a keyboard). What the terminal shows goes to a file.
    func startOnTerminal(_ arguments: [String], in folder: String) throws -> BackgroundAgentctl {
        try BackgroundAgentctl(arguments: arguments, environment: environment, folder: folder, terminal: true)
    }
}

/// A running agentctl: its output files, its input, signals, waiting on output with a deadline.
final class BackgroundAgentctl {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String
    private let input = Pipe()
    private let exited = DispatchSemaphore(value: 0)

    init(arguments: [String], environment: [String: String], folder: String, terminal: Bool) throws {
        try requireBlockingIOThread("agentctl")
        let name = "\(folder)/agentctl.\(UUID().uuidString.prefix(8))"
        stdoutPath = name + ".out"
        stderrPath = name + ".err"
        if terminal {
            // -q quiet, -f flush at once, -e the child's exit status, -c the command. script runs
            // the command with $SHELL -c; `exec` makes agentctl replace that shell, so the shell
            // never sees the Ctrl-C meant for agentctl (dash, CI's /bin/sh, would otherwise note
            // the SIGINT while waiting and exit 130 after agentctl exited 0).
            let command = "exec " + ([TestPaths.agentctlBinary] + arguments).map(Self.shellQuoted).joined(separator: " ")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            process.arguments = ["-qfec", command, "/dev/null"]
        } else {
            process.executableURL = URL(fileURLWithPath: TestPaths.agentctlBinary)
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = input
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
    }

    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Writes to its input (on a terminal: as if typed).
    func type(_ text: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    func closeInput() { try? input.fileHandleForWriting.close() }

    func signal(_ number: Int32) { if process.isRunning { Glibc.kill(process.processIdentifier, number) } }

    /// Waits until stdout satisfies `condition` (checked on every change), or throws after `timeout`.
    @discardableResult
    func waitForOutput(timeout: Duration = .seconds(30), _ what: String, until condition: (String) -> Bool) throws -> String {
        let deadline = Deadline(timeout)
        while true {
            let text = stdout
            if condition(text) { return text }
            guard !deadline.hasPassed else {
                throw HarnessError("agentctl did not print \(what) in \(timeout)\n--- stdout ---\n\(text)\n--- stderr ---\n\(stderr)")
            }
            guard process.isRunning || !stdout.isEmpty && stdout != text else {
                throw HarnessError("agentctl exited before printing \(what)\n--- stdout ---\n\(text)\n--- stderr ---\n\(stderr)")
            }
            var pause = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&pause, nil)
        }
    }

    /// Waits until stdout contains `text` after position `from` (a character count).
    @discardableResult
    func waitForOutput(containing text: String, after from: Int = 0, timeout: Duration = .seconds(30)) throws -> String {
        try waitForOutput(timeout: timeout, text.debugDescription) { String($0.dropFirst(from)).contains(text) }
    }

    func waitForExit(timeout: Duration = .seconds(30)) throws -> Termination {
        let (seconds, attoseconds) = timeout.components
        guard exited.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) == .success else {
            throw HarnessError("agentctl still running after \(timeout)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)")
        }
        exited.signal()
        return process.terminationReason == .exit ? .exited(process.terminationStatus) : .signaled(process.terminationStatus)
    }

    func kill() {
        signal(SIGCONT)
        signal(SIGKILL)
        _ = try? waitForExit(timeout: .seconds(10))
    }

    deinit { kill() }
}
