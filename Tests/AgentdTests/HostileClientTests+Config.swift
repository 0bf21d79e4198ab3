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
