import Foundation
import Testing

/// The unit files in systemd/, checked with systemd's own tools (the `systemd` package, which
/// `make test` installs).
@Suite("systemd unit files", .timeLimit(.minutes(1)))
struct SystemdUnitTests {
    static let units = TestPaths.repositoryRoot.appendingPathComponent("systemd")

    /// Copies the units into `directory`, pointing ExecStart at the binary under test (verify checks
    /// that the executable exists).
    static func stage(_ names: [String], from folder: URL, replacing path: String, in directory: TemporaryDirectory) throws -> [String] {
        try names.map { name in
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            let staged = "\(directory.path)/\(name)"
            try text.replacingOccurrences(of: path, with: TestPaths.agentdBinary).write(toFile: staged, atomically: true, encoding: .utf8)
            return staged
        }
    }

    @Test("systemd-analyze verify passes on the system units")
    func verifySystem() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.stage(["agentd.socket", "agentd.service"], from: Self.units, replacing: "/usr/local/bin/agentd", in: directory)
        let run = try runCommand("/usr/bin/systemd-analyze", ["verify", "--man=no"] + staged)
        #expect(run.termination == .exited(0), "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.isEmpty, "verify warned: \(run.stderr)")
    }

    @Test("systemd-analyze verify passes on the user units")
    func verifyUser() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.stage(
            ["agentd.socket", "agentd.service"], from: Self.units.appendingPathComponent("user"), replacing: "%h/.local/bin/agentd", in: directory)
        try FileManager.default.createDirectory(atPath: "\(directory.path)/run", withIntermediateDirectories: true)
        let run = try runCommand(
            "/usr/bin/systemd-analyze", ["verify", "--user", "--man=no"] + staged, environment: ["XDG_RUNTIME_DIR": "\(directory.path)/run"])
        #expect(run.termination == .exited(0), "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.isEmpty, "verify warned: \(run.stderr)")
    }

    @Test("systemd-analyze security rates the system unit at an overall exposure of at most 2.0")
    func security() throws {
        let run = try runCommand(
            "/usr/bin/systemd-analyze", ["security", "--offline=true", Self.units.appendingPathComponent("agentd.service").path])
        let line = run.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let figure = line.flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        let exposure = try #require(figure, "no exposure level in: \(run.stdout)\(run.stderr)")
        #expect(exposure <= 2.0, "exposure crept up to \(exposure)")
    }

    @Test("the socket units let only their owners in: 0660 with a group for the system, 0600 for a user")
    func socketModes() throws {
        let system = try String(contentsOf: Self.units.appendingPathComponent("agentd.socket"), encoding: .utf8)
        #expect(system.contains("SocketMode=0660") && system.contains("SocketGroup=agentd"))
        let user = try String(contentsOf: Self.units.appendingPathComponent("user/agentd.socket"), encoding: .utf8)
        #expect(user.contains("SocketMode=0600") && user.contains("ListenStream=%t/agentd/agentd.sock"))
    }
}
