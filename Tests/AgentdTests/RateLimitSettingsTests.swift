import Foundation
import Testing

@testable import Daemon

/// `limits.rate_bytes_per_token`: how many bytes of params cost one more token (RPCRateLimitCostTests
/// tests the weighting itself), from the file and the environment.
@Suite("Rate limit settings", .timeLimit(.minutes(1)))
struct RateLimitSettingsTests {
    @Test("limits.rate_bytes_per_token: 65,536 by default, from the file or AGENTD_RATE_BYTES_PER_TOKEN, 0 turns it off, negative refused")
    func bytesPerToken() throws {
        #expect(try LLMConfigurationTests.load().configuration.limits.rateBytesPerToken == 65536)
        #expect(try LLMConfigurationTests.load("[limits]\nrate_bytes_per_token = 0\n").configuration.limits.rateBytesPerToken == 0)
        let fromEnvironment = try LLMConfigurationTests.load(environment: ["AGENTD_RATE_BYTES_PER_TOKEN": "1024"])
        #expect(fromEnvironment.configuration.limits.rateBytesPerToken == 1024)
        #expect(throws: (any Error).self) { try LLMConfigurationTests.load("[limits]\nrate_bytes_per_token = -1\n") }
    }
}
