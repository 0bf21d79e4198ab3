import Foundation
import Testing

/// docs/API.md is generated from schema/openrpc-vN.json by scripts/api-docs.py (`make schema`); like
/// those documents, it must not drift from what it is derived from. docs/CONFIGURATION.md is written
/// by hand, but must name every setting the daemon has.
@Suite("Reference documentation", .blockingIO, .timeLimit(.minutes(1)))
struct APIDocsTests {
    @Test("docs/API.md is what scripts/api-docs.py makes of schema/openrpc-v*.json")
    func apiReferenceIsCurrent() throws {
        let root = TestPaths.repositoryRoot
        let committed = try #require(
            FileManager.default.contents(atPath: root.appendingPathComponent("docs/API.md").path), "docs/API.md is missing: run `make schema`")
        let generated = try runCommand("/usr/bin/env", ["python3", root.appendingPathComponent("scripts/api-docs.py").path])
        #expect(generated.termination == .exited(0), "scripts/api-docs.py failed (python3 is in the Makefile's APT_PACKAGES): \(generated.stderr)")
        let text = String(decoding: committed, as: UTF8.self)
        let firstDifferent = zip(
            text.split(separator: "\n", omittingEmptySubsequences: false), generated.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        )
        .enumerated().first { $0.element.0 != $0.element.1 }
        // Compared as a Bool: the expectation would otherwise print both pages whole.
        let current = text == generated.stdout
        #expect(
            current,
            "docs/API.md is stale (first difference at line \((firstDifferent?.offset ?? 0) + 1)): run `make schema` and commit the result")
    }

    @Test("docs/CONFIGURATION.md names every setting `agentd --print-config` shows")
    func configurationPageIsComplete() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let page = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("docs/CONFIGURATION.md"), encoding: .utf8)
        let printed = try ConfigurationTests.printConfig([], in: directory)
        #expect(printed.termination == .exited(0), "stderr: \(printed.stderr)")
        let keys = printed.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(keys.count > 40, "--print-config printed: \(printed.stdout)")
        let missing = keys.filter { !page.contains("`\($0)`") }
        #expect(missing.isEmpty, "docs/CONFIGURATION.md does not document \(missing): add a row for each (key, flag, environment, default)")
    }
}
