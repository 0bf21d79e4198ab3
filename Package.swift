// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "agentd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "agentd", targets: ["agentd"]),
        .executable(name: "agentctl", targets: ["agentctl"]),
        .library(name: "RPC", targets: ["RPC"]),
        .library(name: "Services", targets: ["Services"]),
        .library(name: "Storage", targets: ["Storage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // libsystemd (libsystemd-dev): readiness, status, watchdog, socket activation.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // libcurl (libcurl4-openssl-dev): the HTTP transport under CurlHTTP.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // The protocol engine: JSON-RPC 2.0 framing, parsing, routing, middleware. No domain knowledge.
        .target(
            name: "RPC",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The client side of the protocol: finding the daemon's socket and one blocking connection
        // to it (the wire format is RPC's). Used by agentctl; the daemon takes its socket rule from here.
        .target(
            name: "RPCClient",
            dependencies: ["RPC", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The domains: method types, services, stores. Knows no process, socket or signal.
        .target(
            name: "Services",
            dependencies: [
                "RPC",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // SQLite implementations of the domains' store protocols, the database and its migrations
        // (GRDB on the system libsqlite3). Services never import GRDB.
        .target(
            name: "Storage",
            dependencies: [
                "Services",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The sqlite3 C API itself, for the one hot path that bypasses GRDB's statements
                // (SQLiteChatStore's append, see RawStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                // SHA-256 of the migrations' SQL (their checksums).
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // `HTTPClient` (Services) on libcurl's multi interface: one driver thread, streaming bodies.
        .target(
            name: "CurlHTTP",
            dependencies: ["CCurl", "Services", .product(name: "Logging", package: "swift-log")],
            path: "Sources/HTTPClient"
        ),
        // The fake OpenAI / Azure OpenAI / OpenAI-compatible / Tavily server the tests and the
        // benchmark talk to (loopback only).
        .target(
            name: "FakeLLMServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/FakeLLMServer"
        ),
        // journald's fields of a log line and their sending (a library so that a fuzz target can
        // reach them: an executable target cannot be imported).
        .target(
            name: "Journal",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        // The daemon: command line, configuration, composition root, socket server, lifecycle. A
        // library, so that the in-process test fixture (AgentdTesting) can build its graph; the
        // `agentd` executable below only calls `AgentdMain.main()`.
        .target(
            name: "Daemon",
            dependencies: [
                "RPC", "RPCClient", "Services", "CSystemd", "Journal", "Storage", "CurlHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The `/metrics` listener (--metrics-listen): a few lines of HTTP/1.1.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                // The swift-metrics backend: Prometheus text exposition (system.metrics, /metrics).
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The `agentd` binary: Sources/agentd/main.swift, one call into Daemon.
        .executableTarget(name: "agentd", dependencies: ["Daemon"]),
        // Test support for the route-level tests: an in-process daemon (`InProcessDaemon`: the
        // test graph of `Dependencies.testing` with fakes) and a typed client on an in-memory channel
        // through the daemon's own connection handler, router and middleware. No socket, no process.
        .target(
            name: "AgentdTesting",
            dependencies: [
                "Daemon", "RPC", "Services", "BlobStoreTesting",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/AgentdTesting"
        ),
        // `InMemoryJobQueue`: the JobQueue contract's in-memory implementation, for the contract
        // tests (StorageTests) and the workers' and agent's tests (AgentdTests).
        .target(name: "JobQueueTesting", dependencies: ["RPC", "Services"], path: "Tests/JobQueueTesting"),
        // `InMemoryBlobStore`: the BlobStore contract's in-memory implementation, for the contract
        // tests (StorageTests), the in-process daemon (AgentdTesting) and the files tests.
        .target(
            name: "BlobStoreTesting", dependencies: ["Services", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/BlobStoreTesting"),
        // The command-line client (issue 8): `agentctl call|methods|login|modules|chat|watch …`.
        .executableTarget(
            name: "agentctl",
            dependencies: [
                "RPC", "RPCClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `files upload` sends the file's SHA-256 with files.upload.begin.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // bench/encoder.sh: ns per encode of a modules.list page, JSONEncoder against RPCJSONEncoder.
        .executableTarget(
            name: "EncoderBenchmark",
            dependencies: ["RPC", "Services", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/EncoderBenchmark"
        ),
        // `fake-llm-server --port N`: the fake server on its own, for benchmarks and manual tests.
        .executableTarget(
            name: "fake-llm-server",
            dependencies: ["FakeLLMServer", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/FakeLLMServerMain"
        ),
        .testTarget(
            name: "HTTPClientTests",
            dependencies: ["CurlHTTP", "FakeLLMServer", "Services"]
        ),
        // fuzz/run.sh: libFuzzer targets (built with -DFUZZING and the fuzzer and address sanitizers);
        // a normal build makes them corpus replayers (`FuzzJSON fuzz/corpus/json`).
        .target(name: "FuzzSupport", path: "fuzz/Sources/FuzzSupport"),
        .executableTarget(
            name: "FuzzFraming", dependencies: ["RPC", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
            path: "fuzz/Sources/FuzzFraming"),
        .executableTarget(
            name: "FuzzJSON", dependencies: ["RPC", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
            path: "fuzz/Sources/FuzzJSON"),
        .executableTarget(
            name: "FuzzRequest",
            dependencies: [
                "RPC", "Services", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "fuzz/Sources/FuzzRequest"),
        .executableTarget(
            name: "FuzzJournal", dependencies: ["Journal", "FuzzSupport", .product(name: "Logging", package: "swift-log")],
            path: "fuzz/Sources/FuzzJournal"),
        .executableTarget(
            name: "FuzzSSE", dependencies: ["Services", "FuzzSupport"],
            path: "fuzz/Sources/FuzzSSE"),
        .testTarget(
            name: "RPCTests",
            dependencies: [
                "RPC", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "Services", "JobQueueTesting", "BlobStoreTesting", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The providers, their SSE decoding, retries, fallbacks and Tavily, against a scripted
        // in-memory HTTPClient (no socket, no daemon).
        .testTarget(
            name: "LLMTests",
            dependencies: ["Services"]
        ),
        .testTarget(
            name: "AgentdTests",
            // GRDB only to tamper with a database file the way another agentd version would; NIOEmbedded
            // for the tests that drive a connection handler on a testing channel themselves.
            // FakeLLMServer: the provider and Tavily the end-to-end agent tests point the daemon at; CurlHTTP:
            // the real libcurl client the in-process end-to-end tests give the provider stack.
            // Only what the files import: the agentd and agentctl binaries the tests start are found
            // in the build folder (TestPaths), built by `swift build --build-tests` like every target.
            dependencies: [
                "Daemon", "AgentdTesting", "BlobStoreTesting", "CurlHTTP", "Journal", "JobQueueTesting", "RPC", "Services", "Storage",
                "FakeLLMServer",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
