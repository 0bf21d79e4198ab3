import Foundation
import RPC

/// What the `system.*` methods answer. Holds the build's identity and the metrics exposition, given
/// by the composition root.
public struct SystemService: Sendable {
    private let server: RPCServerDescription
    private let clock: any Clock<Duration>
    private let metrics: any MetricsExposition

    public init(server: RPCServerDescription, clock: any Clock<Duration>, metrics: any MetricsExposition) {
        self.server = server
        self.clock = clock
        self.metrics = metrics
    }

    public func ping() -> String { "pong" }

    public func echo(_ params: JSONFragment) -> JSONFragment { params }

    public func version() -> System.VersionInfo {
        System.VersionInfo(name: server.name, version: server.version, apiVersions: server.apiVersions)
    }

    public func metricsText() -> System.MetricsText {
        System.MetricsText(contentType: System.MetricsText.prometheusContentType, text: metrics.render())
    }

    public func sleep(milliseconds: Int) async throws -> System.Sleep.Result {
        guard (0...3_600_000).contains(milliseconds) else {
            throw RPCError.invalidParams(field: "ms", reason: "must be between 0 and 3600000")
        }
        try await clock.sleep(for: .milliseconds(milliseconds))
        return .init(sleptMs: milliseconds)
    }

    public func decodeChunk(_ params: Files.UploadChunk.Params) throws -> System.DecodeChunk.Result {
        guard let data = Data(base64Encoded: params.data) else { throw RPCError.invalidParams(field: "data", reason: "not base64") }
        return .init(size: data.count)
    }
}
