// swift-tools-version:6.0
import PackageDescription

// Layers, bottom up:
//   Crdkafka          librdkafka's C API (Debian's librdkafka-dev, pkg-config `rdkafka`)
//   TokenmeterKafka   the only code that touches librdkafka pointers: consumer, producer, mock cluster
//   TokenmeterTOML    a TOML 1.0 parser that keeps the position and exact text of every value, and TOML text out
//   TokenmeterCore    pure Swift, no Kafka: config, decode, normalise, price, windows, rollup files, checkpoint
//   TokenmeterDaemon  binds Kafka to the core: the consume loop, dead letters, commits, signals
//   TokenmeterReports, TokenmeterPriceTools
//                     offline tools over the core, which the daemon does not link: reading rollup files
//                     back and reports (text, CSV, JSON, HTML, FOCUS); the LiteLLM price import, `prices check`
//   Ccurl             libcurl's C API (Debian's libcurl4-openssl-dev, pkg-config `libcurl`): the notifier's HTTP
//   TokenmeterNotify  `tokenmeter notify`: alerts from Kafka to Alertmanager, Slack and webhooks
//   tokenmeter        the command line, one file per subcommand
let package = Package(
    name: "tokenmeter",
    products: [
        .executable(name: "tokenmeter", targets: ["tokenmeter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "Crdkafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "Ccurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // syncfs(2), which Swift's Glibc module does not export (see DurableBatch).
        .target(name: "CSystem"),
        .target(name: "TokenmeterTOML"),
        .target(name: "TokenmeterCore", dependencies: ["CSystem", "TokenmeterTOML"]),
        .target(name: "TrafficGenerator", dependencies: ["TokenmeterCore"]),
        .target(name: "TokenmeterReports", dependencies: ["TokenmeterCore"]),
        .target(name: "TokenmeterPriceTools", dependencies: ["TokenmeterCore", "TokenmeterTOML"]),
        .target(
            name: "TokenmeterKafka",
            dependencies: ["Crdkafka"]
        ),
        .target(
            name: "TokenmeterDaemon",
            dependencies: [
                "TokenmeterCore",
                "TokenmeterKafka",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TokenmeterNotify",
            dependencies: ["TokenmeterCore", "TokenmeterTOML", "TokenmeterKafka", "TokenmeterDaemon", "Ccurl"]
        ),
        .executableTarget(
            name: "tokenmeter",
            dependencies: [
                "TokenmeterCore",
                "TokenmeterTOML",
                "TokenmeterKafka",
                "TokenmeterDaemon",
                "TokenmeterReports",
                "TokenmeterPriceTools",
                "TokenmeterNotify",
                "TrafficGenerator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libFuzzer harness for the decoder, the event path and the config parser: a stub unless built by
        // scripts/fuzz.sh (-DFUZZING -sanitize=fuzzer,address, in its own .build-fuzz).
        .executableTarget(name: "tokenmeter-fuzz", dependencies: ["TokenmeterCore", "TrafficGenerator"], path: "Sources/TokenmeterFuzz"),
        .testTarget(name: "TokenmeterCoreTests", dependencies: ["TokenmeterCore", "TokenmeterTOML", "TrafficGenerator"]),
        .testTarget(name: "TokenmeterTOMLTests", dependencies: ["TokenmeterTOML"]),
        .testTarget(name: "TokenmeterReportsTests", dependencies: ["TokenmeterReports", "TokenmeterCore"], exclude: ["Golden"]),
        .testTarget(name: "TokenmeterPriceToolsTests", dependencies: ["TokenmeterPriceTools", "TokenmeterCore"]),
        .testTarget(name: "TokenmeterKafkaTests", dependencies: ["TokenmeterKafka"]),
        .testTarget(name: "TrafficGeneratorTests", dependencies: ["TrafficGenerator"]),
        // Fast tests of the daemon's parts that need no broker: the HTTP server, the start checks.
        .testTarget(name: "TokenmeterDaemonTests", dependencies: ["TokenmeterDaemon", "TokenmeterCore", "TokenmeterKafka"]),
        // Routing, retries, de-duplication, commits and payloads of the notifier, with fake sinks and a manual clock.
        .testTarget(name: "TokenmeterNotifyTests", dependencies: ["TokenmeterNotify", "TokenmeterCore", "TokenmeterTOML", "TokenmeterKafka", "TokenmeterDaemon"]),
        // Allocation-count benchmarks of the decoder and the aggregator (issue 8), a regression check:
        // CMallocCounter interposes malloc in the test executable and counts per thread.
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "AllocationTests", dependencies: ["TokenmeterCore", "TrafficGenerator", "CMallocCounter"]),
        // Slow scenarios with real processes (broker, produce, run): one clearly named target.
        .testTarget(name: "EndToEndTests", dependencies: ["TokenmeterCore", "TokenmeterKafka", "TokenmeterDaemon", "TokenmeterReports", "TrafficGenerator"]),
    ],
    swiftLanguageModes: [.v6]
)
