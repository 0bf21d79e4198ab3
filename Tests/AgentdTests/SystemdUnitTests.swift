import Foundation
import RPC
import Testing

/// The unit files in systemd/, checked with systemd's own tools (the `systemd` package, which
/// `make test` installs).
@Suite("systemd unit files", .blockingIO, .timeLimit(.minutes(1)))
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

    /// The `[Service]` settings of a unit file, in order (a key may repeat).
    static func settings(_ relativePath: String) throws -> [(key: String, value: String)] {
        let text = try String(contentsOf: units.appendingPathComponent(relativePath), encoding: .utf8)
        var section = ""
        var out: [(key: String, value: String)] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                section = line
                continue
            }
            guard section == "[Service]", let equals = line.firstIndex(of: "=") else { continue }
            out.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
        }
        return out
    }

    static func isOff(_ value: String) -> Bool { ["no", "false", "off", "0", ""].contains(value.lowercased()) }

    /// Settings that need a mount, UTS, IPC or network namespace: a per-user manager cannot set one
    /// up without a user namespace, so since systemd 253 it turns `PrivateUsers=` on for them
    /// (systemd PR #25233), and every uid but the user's own then reads as 65534.
    static let userNamespaceImpliers: Set<String> = [
        "PrivateTmp", "PrivateDevices", "PrivateNetwork", "PrivateIPC", "PrivateMounts", "NetworkNamespacePath", "IPCNamespacePath",
        "ProtectSystem", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
        "ProtectHostname", "ProtectClock", "ProtectProc", "ProcSubset", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths",
        "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "MountAPIVFS", "RootDirectory", "RootImage",
        "MountImages", "ExtensionImages", "ExtensionDirectories", "LogNamespace",
    ]

    @Test("no unit remaps the uids of clients (SO_PEERCRED must see each user's own uid)")
    func noUIDRemapping() throws {
        // PrivateUsers= puts the daemon in a user namespace where every uid but its own (and root)
        // is the overflow uid 65534: per-uid limits, audit rows and --trusted-uid all break.
        // DynamicUser= only picks the daemon's own uid; it leaves the clients' alone.
        for unit in ["agentd.service", "user/agentd.service"] {
            for (key, value) in try Self.settings(unit) where key == "PrivateUsers" {
                #expect(Self.isOff(value), "\(unit) sets PrivateUsers=\(value)")
            }
        }
        for (key, value) in try Self.settings("user/agentd.service") where Self.userNamespaceImpliers.contains(key) {
            #expect(Self.isOff(value), "user/agentd.service sets \(key)=\(value), which makes a user manager turn PrivateUsers= on")
        }
    }

    @Test("both units bound descriptors above max_connections, and tasks and memory")
    func resourceLimits() throws {
        let defaults = RPCLimits()
        #expect(defaults.maxConnections == 4096 && defaults.maxConnectionsPerUID == 1024, "systemd's varlink defaults")
        for unit in ["agentd.service", "user/agentd.service"] {
            let settings = try Self.settings(unit)
            let files = settings.last { $0.key == "LimitNOFILE" }.flatMap { Int($0.value.split(separator: ":").first ?? "") }
            #expect((files ?? 0) > defaults.maxConnections + 64, "\(unit): LimitNOFILE=\(files.map(String.init) ?? "unset")")
            #expect(settings.contains { $0.key == "TasksMax" }, "\(unit): no TasksMax=")
            #expect(settings.contains { $0.key == "MemoryMax" }, "\(unit): no MemoryMax=")
        }
    }

    @Test("the user unit keeps the hardening a user manager can apply (seccomp, no namespaces)")
    func userHardening() throws {
        let keys = Set(try Self.settings("user/agentd.service").map(\.key))
        for key in [
            "NoNewPrivileges", "RestrictAddressFamilies", "RestrictNamespaces", "SystemCallFilter", "SystemCallArchitectures",
            "MemoryDenyWriteExecute", "LockPersonality", "RestrictRealtime", "RestrictSUIDSGID", "UMask",
        ] {
            #expect(keys.contains(key), "user/agentd.service lacks \(key)=")
        }
    }
}
