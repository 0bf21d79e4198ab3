import Foundation
import Testing

/// docs/API.md is generated from schema/openrpc-vN.json by scripts/api-docs.py (`make schema`); like
/// those documents, it must not drift from what it is derived from.
@Suite("API reference", .timeLimit(.minutes(1)))
struct APIDocsTests {
    @Test("docs/API.md is what scripts/api-docs.py makes of schema/openrpc-v*.json")
    func apiReferenceIsCurrent() throws {
        let root = TestPaths.repositoryRoot
        let committed = try #require(
            FileManager.default.contents(atPath: root.appendingPathComponent("docs/API.md").path), "docs/API.md is missing: run `make schema`")
        let generated = try runCommand("/usr/bin/env", ["python3", root.appendingPathComponent("scripts/api-docs.py").path])
        #expect(generated.termination == .exited(0), "scripts/api-docs.py failed (python3 is in the Makefile's APT_PACKAGES): \(generated.stderr)")
        let text = String(decoding: committed, as: UTF8.self)
        let firstDifferent = zip(text.split(separator: "\n", omittingEmptySubsequences: false), generated.stdout.split(separator: "\n", omittingEmptySubsequences: false))
            .enumerated().first { $0.element.0 != $0.element.1 }
        // Compared as a Bool: the expectation would otherwise print both pages whole.
        let current = text == generated.stdout
        #expect(
            current,
            "docs/API.md is stale (first difference at line \((firstDifferent?.offset ?? 0) + 1)): run `make schema` and commit the result")
    }
}
