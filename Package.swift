// swift-tools-version: 6.0
// KafkaWire: the Kafka binary protocol in pure Swift over POSIX sockets.
//
// Layers, bottom to top (each a module, so the dependency direction is enforced by the compiler):
//   CKafkaSupport / CLZ4 / CZlib / CSnappy / CZstd   C helpers and system codecs
//   KafkaProtocol    wire primitives, error codes, messages generated from Kafka's JSON specs
//   KafkaRecords     record batches v2, legacy message sets, CRC-32C, compression codecs
//   KafkaWire        network (connections, pipelining) and client (cluster, producer, consumer, admin)
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "KafkaWire",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KafkaWire", targets: ["KafkaWire"]),
        .library(name: "HRMSEvents", targets: ["HRMSEvents"]),
        .library(name: "HRMSServiceKit", targets: ["HRMSServiceKit"]),
        .executable(name: "employee-service", targets: ["employee-service"]),
        .executable(name: "user-management-service", targets: ["user-management-service"]),
        .executable(name: "compliance-service", targets: ["compliance-service"]),
        .library(name: "HRMSMail", targets: ["HRMSMail"]),
        .executable(name: "leave-service", targets: ["leave-service"]),
        .executable(name: "attendance-service", targets: ["attendance-service"]),
        .executable(name: "notification-service", targets: ["notification-service"]),
        .executable(name: "audit-service", targets: ["audit-service"]),
        .library(name: "HRMSEventPipeline", targets: ["HRMSEventPipeline"]),
        .library(name: "HRMSEventHTTP", targets: ["HRMSEventHTTP"]),
        .executable(name: "kafkawire-generator", targets: ["KafkaWireGenerator"]),
        .executable(name: "kafkawire-demo", targets: ["KafkaWireDemo"]),
        .executable(name: "kafkawire-interop", targets: ["KafkaWireInterop"]),
        .executable(name: "kafkawire-bench", targets: ["KafkaWireBenchmarks"]),
        .executable(name: "kwire", targets: ["kwire"]),
        .executable(name: "hrms-event-samples", targets: ["HRMSEventSamples"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // KafkaWire production features: metrics, graceful shutdown, SASL/SCRAM (Crypto), TLS (NIOSSL
        // driven over our own sockets; BoringSSL is vendored by the package, no system OpenSSL).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // HRMS services: HTTP server and client, storage, tokens, Prometheus exposition.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CKafkaSupport"),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSnappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        .target(name: "KafkaProtocol", swiftSettings: strict),
        .target(
            name: "KafkaRecords",
            dependencies: ["KafkaProtocol", "CKafkaSupport", "CLZ4", "CZlib", "CSnappy", "CZstd"],
            swiftSettings: strict),
        .target(
            name: "KafkaWire",
            dependencies: ["KafkaProtocol", "KafkaRecords", "CKafkaSupport", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           // SCRAM's HMAC and hashes; TLS through BoringSSL driven over our own sockets.
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOTLS", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: strict),

        // HRMS: the event contract shared by the services' outboxes and the two consumers.
        .target(name: "HRMSEvents", swiftSettings: strict),
        // HRMS: the kit every service is assembled from (config, HTTP, errors, auth, storage, outbox).
        .target(
            name: "HRMSServiceKit",
            dependencies: [
                "HRMSEvents", "HRMSEventPipeline", "HRMSEventHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            exclude: ["README.md"],
            swiftSettings: strict),
        // HRMS services: each a library (routes, storage) and a thin executable.
        .target(name: "EmployeeService", dependencies: ["HRMSServiceKit"], swiftSettings: strict),
        .executableTarget(name: "employee-service", dependencies: ["EmployeeService"], swiftSettings: strict),
        .target(
            name: "UserManagementService",
            dependencies: [
                "HRMSServiceKit", .product(name: "JWTKit", package: "jwt-kit"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "user-management-service", dependencies: ["UserManagementService"], swiftSettings: strict),
        .target(name: "ComplianceService", dependencies: ["HRMSServiceKit"], swiftSettings: strict),
        .executableTarget(name: "compliance-service", dependencies: ["ComplianceService"], swiftSettings: strict),
        // HRMS: email over SMTP (RFC 5321/5322, MIME) and the notification templates.
        .target(
            name: "HRMSMail",
            dependencies: ["HRMSEvents", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            exclude: ["README.md"],
            swiftSettings: strict),

        // HRMS services of this branch: Leave, Attendance, Notification, Audit (library + thin executable each).
        // What these four services share: the synchronous employee check, records that write their nulls.
        .target(name: "HRMSServiceSupport", dependencies: ["HRMSServiceKit", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")], swiftSettings: strict),
        .target(name: "LeaveService", dependencies: ["HRMSServiceKit", "HRMSServiceSupport"], swiftSettings: strict),
        .executableTarget(name: "leave-service", dependencies: ["LeaveService"], swiftSettings: strict),
        .target(name: "AttendanceService", dependencies: ["HRMSServiceKit", "HRMSServiceSupport"], swiftSettings: strict),
        .executableTarget(name: "attendance-service", dependencies: ["AttendanceService"], swiftSettings: strict),
        .target(name: "NotificationService", dependencies: ["HRMSServiceKit", "HRMSServiceSupport", "HRMSMail", "HRMSEventPipeline"], swiftSettings: strict),
        .executableTarget(name: "notification-service", dependencies: ["NotificationService"], swiftSettings: strict),
        .target(name: "AuditService", dependencies: ["HRMSServiceKit", "HRMSServiceSupport", "HRMSEventPipeline"], swiftSettings: strict),
        .executableTarget(name: "audit-service", dependencies: ["AuditService"], swiftSettings: strict),
        // HRMS: the Kafka side of the events (outbox relay, the notification and audit consumers,
        // dead letters, replay). Storage, rendering and delivery are protocols the services implement.
        .target(
            name: "HRMSEventPipeline",
            dependencies: ["KafkaWire", "HRMSEvents", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict),
        // The outbox's HTTP fallback (the old synchronous endpoints) on async-http-client; its own
        // target so that the pipeline and its tests do not build the HTTP stack.
        .target(
            name: "HRMSEventHTTP",
            dependencies: ["HRMSEventPipeline", "HRMSEvents", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        // Prints one event of every type as the services' outboxes make them (tests_events/ checks
        // them against schemas/events/).
        .executableTarget(name: "HRMSEventSamples", dependencies: ["HRMSEvents"], swiftSettings: strict),

        // A scriptable broker for tests of what no real broker can be made to do.
        .target(name: "KafkaFakeBroker", dependencies: ["KafkaProtocol"], swiftSettings: strict),

        .target(name: "KafkaWireGeneratorCore", swiftSettings: strict),
        .executableTarget(name: "KafkaWireGenerator", dependencies: ["KafkaWireGeneratorCore"], swiftSettings: strict),
        .executableTarget(name: "KafkaWireDemo", dependencies: ["KafkaWire"], swiftSettings: strict),
        .executableTarget(name: "KafkaWireInterop", dependencies: ["KafkaWire"], swiftSettings: strict),
        .executableTarget(name: "KafkaWireBenchmarks", dependencies: ["KafkaWire"], swiftSettings: strict),
        // The kwire command-line client (kcat's spirit on KafkaWire).
        .executableTarget(
            name: "kwire",
            dependencies: ["KafkaWire", "HRMSEventPipeline", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        // Entry point for libFuzzer; built only by scripts/fuzz.sh with -sanitize=fuzzer.
        .target(name: "KafkaWireFuzz", dependencies: ["KafkaProtocol", "KafkaRecords"], swiftSettings: strict),

        .testTarget(
            name: "KafkaProtocolTests", dependencies: ["KafkaProtocol", "KafkaWireGeneratorCore"], swiftSettings: strict),
        .testTarget(name: "KafkaRecordsTests", dependencies: ["KafkaRecords"], swiftSettings: strict),
        .testTarget(
            name: "KafkaWireTests",
            dependencies: ["KafkaWire", "KafkaFakeBroker", .product(name: "MetricsTestKit", package: "swift-metrics"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           // The TLS engine's tests run it against NIOSSL's server handler.
                           .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: strict),
        .testTarget(
            name: "HRMSServiceKitTests",
            dependencies: [
                "HRMSServiceKit", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict),
        // Talks to a real SMTP server (aiosmtpd, started from .venv by the tests).
        .testTarget(name: "HRMSMailTests",
                    dependencies: ["HRMSMail", .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio")], exclude: ["smtp_test_server.py"],
                    swiftSettings: strict),
        .testTarget(name: "FixtureTests", dependencies: ["KafkaProtocol", "KafkaRecords"], swiftSettings: strict),
        // Against the real broker (KWIRE_BOOTSTRAP) with SQLite-backed stores.
        .testTarget(
            name: "HRMSEventPipelineTests",
            dependencies: ["HRMSEventPipeline", "HRMSEvents", "KafkaWire", .product(name: "SQLiteNIO", package: "sqlite-nio"),
                           .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict),
    ]
)
