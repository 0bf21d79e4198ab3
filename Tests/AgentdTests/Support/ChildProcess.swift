import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How a process ended.
enum Termination: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let status): "exit status \(status)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// A child process whose end can be awaited with a deadline.
final class ChildProcess {
    let process = Process()
    private let exited = DispatchSemaphore(value: 0)

    /// `environment` entries are set on top of this process's environment.
    init(executable: String, arguments: [String], stdout: String?, stderr: String?, environment: [String: String] = [:]) throws {
        try requireBlockingIOThread("a child process (\(executable))")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.handle(stdout)
        process.standardError = try Self.handle(stderr)
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
    }

    private static func handle(_ path: String?) throws -> FileHandle {
        guard let path else { return FileHandle.nullDevice }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw HarnessError("cannot create \(path)")
        }
        return handle
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits for the process to end (throws after `timeout`).
    func waitForExit(timeout: Duration) throws -> Termination {
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        guard exited.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else {
            throw HarnessError("process \(pid) still running after \(timeout)")
        }
        exited.signal()  // later waits return at once
        switch process.terminationReason {
        case .exit: return .exited(process.terminationStatus)
        case .uncaughtSignal: return .signaled(process.terminationStatus)
        @unknown default: return .exited(process.terminationStatus)
        }
    }
}

/// Runs a command to completion with stdout and stderr captured (killed after `timeout`).
func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)
) throws -> (termination: Termination, stdout: String, stderr: String) {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let stdoutPath = "\(directory.path)/stdout"
    let stderrPath = "\(directory.path)/stderr"
    let child = try ChildProcess(executable: executable, arguments: arguments, stdout: stdoutPath, stderr: stderrPath, environment: environment)
    let termination: Termination
    do {
        termination = try child.waitForExit(timeout: timeout)
    } catch {
        child.signal(SIGKILL)
        _ = try? child.waitForExit(timeout: .seconds(5))
        throw error
    }
    let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    return (termination, out, err)
}
