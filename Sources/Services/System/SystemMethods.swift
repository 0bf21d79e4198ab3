import RPC

/// The `system.*` methods: liveness, echo, version and metrics. They answer at once, so they run
/// inline.
public enum System {
    public enum Ping: RPCMethod {
        public static let name = "system.ping"
        public static let summary = "Answers \"pong\": proves the daemon is alive and serving."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = String
    }

    public enum Echo: RPCMethod {
        public static let name = "system.echo"
        public static let summary = "Returns its params exactly as given (null when absent)."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = JSONFragment
        public typealias Result = JSONFragment
    }

    public enum Version: RPCMethod {
        public static let name = "system.version"
        public static let summary = "The server's name, version and the API versions it supports."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = VersionInfo
    }

    /// Added after version 1 was published, and in it too: an added method breaks no client.
    public enum Metrics: RPCMethod {
        public static let name = "system.metrics"
        public static let summary =
            "The daemon's metrics (calls, errors and latency per method, connections, subscriptions, queue depths) as Prometheus text. Needs a signed-in caller."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = RPCNoParams
        public typealias Result = MetricsText
        public static var errors: [RPCErrorDescription] { [AuthError.unauthorizedDescription] }
    }

    /// Registered only when the daemon runs with `--enable-test-methods`: a call that takes time,
    /// for tests of concurrency, cancellation, timeouts and draining.
    public enum Sleep: RPCMethod {
        public static let name = "test.sleep"
        public static let summary = "Test only: waits `ms` milliseconds (cancellable), then returns how long it slept."
        public static let rateClass: RPCRateClassName = .exempt
        public struct Params: Codable, Sendable {
            public var ms: Int
        }
        public struct Result: Codable, Sendable {
            public var sleptMs: Int
        }
    }

    /// Registered only with `--enable-test-methods`: takes what `files.upload.chunk` takes and only
    /// decodes its base64, so that a profile of the RPC layer's handling of a 4 MiB chunk
    /// (`bench/filesload chunk`, BENCHMARKS.md "Files") has no disk I/O in it.
    public enum DecodeChunk: RPCMethod {
        public static let name = "test.chunk"
        public static let summary = "Test only: decodes the base64 data of files.upload.chunk's params and answers how many bytes it holds."
        public static let rateClass: RPCRateClassName = .exempt
        public typealias Params = Files.UploadChunk.Params
        public struct Result: Codable, Sendable {
            public var size: Int
        }
    }

    public struct VersionInfo: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var apiVersions: [String]
    }

    public struct MetricsText: Codable, Sendable, Equatable {
        /// `text/plain; version=0.0.4`: the Prometheus text exposition format.
        public var contentType: String
        /// `# TYPE` lines and `name{labels} value` samples, one per line.
        public var text: String

        /// The media type of the text, as `/metrics` also sends it (there with `; charset=utf-8`).
        public static let prometheusContentType = "text/plain; version=0.0.4"
    }
}
