import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, smaller items: a configuration file that holds a secret and others can read.
extension HostileClientTests {
    @Test("a configuration file holding an API key and readable by others draws a warning at start; mode 0600 does not")
    func readableSecretConfig() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/agentd.toml"
        try "[llm]\napi_key = \"sk-config-file-secret\"\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        try withDaemon(["--config", file]) { daemon in
            try daemon.waitForLog(containing: "readable by others")
            #expect(daemon.stderr.contains(file) && daemon.stderr.contains("0644") && daemon.stderr.contains("llm.api_key"), "\(daemon.stderr)")
            #expect(!daemon.stderr.contains("sk-config-file-secret"))
        }
        chmod(file, 0o600)
        try withDaemon(["--config", file]) { daemon in
            try daemon.waitUntilConnectable()  // the check runs before the socket listens
            #expect(!daemon.stderr.contains("readable by others"), "\(daemon.stderr)")
        }
    }
}

extension HostileClientTests {
    @Test("started with a soft descriptor limit below max_connections, agentd raises it to the hard limit")
    func descriptorLimit() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.path + "/agentd.sock"
        let child = try ChildProcess(
            executable: "/usr/bin/prlimit",
            arguments: ["--nofile=256:8192", TestPaths.agentdBinary, "--socket", socket, "--database", directory.path + "/agentd.sqlite"],
            stdout: nil, stderr: directory.path + "/stderr")
        defer { child.signal(SIGKILL) }
        _ = try RPCTestClient.connect(path: socket, whileAlive: { child.isRunning })  // prlimit execs agentd: same pid
        let limits = try String(contentsOfFile: "/proc/\(child.pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let figures = line.split(separator: " ").compactMap { Int($0) }
        #expect(figures == [8192, 8192], "\(line)")
    }
}
