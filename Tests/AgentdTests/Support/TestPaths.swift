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
    static let agentdBinary: String = {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["AGENTD_BINARY"], !path.isEmpty { return path }
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("agentd"))
        }
        for bundle in Bundle.allBundles {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("agentd"))
        }
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("agentd"))
        }
        let fallback = repositoryRoot.appendingPathComponent(".build/debug/agentd")
        candidates.append(fallback)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        return fallback.path
    }()
}
