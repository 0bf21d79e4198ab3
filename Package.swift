// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "agentd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "agentd", targets: ["Daemon"]),
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
            ]
        ),
        // The executable: configuration, composition root, socket server, lifecycle.
        .executableTarget(
            name: "Daemon",
            dependencies: [
                "RPC", "Services", "CSystemd", "Storage",
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
        // bench/encoder.sh: ns per encode of a modules.list page, JSONEncoder against RPCJSONEncoder.
        .executableTarget(
            name: "EncoderBenchmark",
            dependencies: ["RPC", "Services", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/EncoderBenchmark"
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
        .testTarget(
            name: "RPCTests",
            dependencies: ["RPC", "Services", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "Services", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "AgentdTests",
            // GRDB only to tamper with a database file the way another agentd version would; NIOEmbedded
            // for the in-process auth route tests (a peer uid of the test's choosing).
            dependencies: [
                "Daemon", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
