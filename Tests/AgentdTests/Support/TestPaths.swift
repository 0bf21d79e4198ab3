import Foundation

/// Where the test files live; the repository root is three folders above this file's folder
/// (`Tests/AgentdTests/Support/`).
enum TestPaths {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // AgentdTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// The daemon under test: `$AGENTD_BINARY`, else `agentd` next to the test bundle, else
    /// `.build/debug/agentd` in the repository.
    static let agentdBinary: String = binary(named: "agentd", environment: "AGENTD_BINARY")

    /// The command-line client under test: `$AGENTCTL_BINARY`, else `agentctl` next to the test
    /// bundle, else `.build/debug/agentctl` in the repository.
    static let agentctlBinary: String = binary(named: "agentctl", environment: "AGENTCTL_BINARY")

    private static func binary(named name: String, environment variable: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment[variable], !path.isEmpty { return path }
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent(name))
        }
        for bundle in Bundle.allBundles {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        }
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent(name))
        }
        let fallback = repositoryRoot.appendingPathComponent(".build/debug/\(name)")
        candidates.append(fallback)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        return fallback.path
    }
}
