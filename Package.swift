// swift-tools-version:6.2
// Moat — a local-first security gateway for a personal AI agent.
// The module map and the rule that dependencies only point down it are in Docs/Architecture.md.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "moat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "moat", targets: ["moat"]),
        .executable(name: "moat-sandbox", targets: ["moat-sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"6.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Shared values; MoatMetrics records into an injected swift-metrics factory (never the global one).
        .target(
            name: "MoatCore",
            dependencies: ["CMoatProcess", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        // The database (the migrator runs each module's migrations in the order the composition root gives)
        // and row MACs (swift-crypto's HMAC; the keys come from the vault, through the modules above).
        .target(
            name: "MoatStore",
            dependencies: [
                "MoatCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MoatAudit",
            dependencies: [
                "MoatCore",
                "MoatStore",
                "MoatVault",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MoatPolicy",
            dependencies: [
                "MoatAudit",
                "MoatCore",
                "MoatNet",
                "MoatStore",
                "MoatVault",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Owner authentication: password hashes, sessions, API tokens, TOTP, short-lived JWTs (Docs/Authentication.md).
        .target(
            name: "MoatAuth",
            dependencies: [
                "MoatAudit",
                "MoatCore",
                "MoatStore",
                "MoatVault",
                "CQRencode",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // libqrencode draws the TOTP enrolment QR code; only MoatAuth imports it.
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        // The system libraries behind the vault; only MoatVault imports them.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        .target(
            name: "MoatVault",
            dependencies: [
                "MoatCore",
                "CSodium",
                "CArgon2",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The outbound HTTP client: the SSRF guard (URL parsing, address classes, redirects) and the
        // SwiftNIO transport pinned to the checked address. Providers, channels and tools fetch through it.
        .target(
            name: "MoatNet",
            dependencies: [
                "MoatCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Model wire formats (OpenAI-compatible chat completions first): one round of a conversation in,
        // text and tool calls out. Providers never run tools; keys come from the vault at egress.
        .target(
            name: "MoatProviders",
            dependencies: [
                "MoatCore",
                "MoatNet",
                "MoatVault",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Channel adapters: the signed webhook first (Telegram, Matrix and web chat later); each turns its
        // platform's deliveries into checked messages for the pipeline.
        .target(
            name: "MoatChannels",
            dependencies: [
                "MoatAudit", "MoatCore", "MoatNet", "MoatPolicy", "MoatStore", "MoatVault",
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The tool contract and the built-in tools (files under the workspace root, shell in the sandbox,
        // web through the SSRF guard, http with secret placeholders resolved at egress).
        .target(
            name: "MoatTools",
            dependencies: [
                "CMoatFiles",
                "MoatCore",
                "MoatNet",
                "MoatSandbox",
                "MoatStore",
                "MoatVault",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The agent pipeline: principal, limits, flagger and taint, model rounds, the per-call trust gate,
        // approvals resumed, budgets; conversations, messages and tool calls in moat.db (Docs/Agent.md).
        .target(
            name: "MoatAgent",
            dependencies: [
                "MoatAudit",
                "MoatChannels",
                "MoatCore",
                "MoatPolicy",
                "MoatProviders",
                "MoatStore",
                "MoatTools",
                "MoatVault",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Hummingbird core: request context, guards (Host, owner authentication, security headers),
        // the bind policy, TLS material, connection limits, Tailscale identity.
        .target(
            name: "MoatHTTP",
            dependencies: [
                "MoatAudit",
                "MoatAuth",
                "MoatCore",
                "MoatStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The owner's API and pages (routes under /api, the dashboard, live events) and the router.
        .target(
            name: "MoatConsole",
            dependencies: [
                "MoatAdmin",
                "MoatAgent",
                "MoatAudit",
                "MoatAuth",
                "MoatChannels",
                "MoatCore",
                "MoatHTTP",
                "MoatStore",
                "MoatVault",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Owner operations and the admin socket (`moat.sock`): the server and the client the CLI uses.
        // No Hummingbird here.
        .target(
            name: "MoatAdmin",
            dependencies: [
                "MoatAgent",
                "MoatAudit",
                "MoatAuth",
                "MoatChannels",
                "MoatCore",
                "MoatPolicy",
                "MoatVault",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // `config.yaml`: one strict loader aggregating each module's settings value.
        .target(
            name: "MoatConfig",
            dependencies: [
                "MoatAgent",
                "MoatAuth",
                "MoatChannels",
                "MoatCore",
                "MoatHTTP",
                "MoatNet",
                "MoatPolicy",
                "MoatProviders",
                "MoatStore",
                "MoatTools",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root: opens the installation once, runs the server's services, the doctor.
        .target(
            name: "MoatApp",
            dependencies: [
                "MoatAdmin",
                "MoatAgent",
                "MoatAudit",
                "MoatAuth",
                "MoatChannels",
                "MoatConfig",
                "MoatConsole",
                "MoatCore",
                "MoatHTTP",
                "MoatPolicy",
                "MoatProviders",
                "MoatStore",
                "MoatTools",
                "MoatVault",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The C launcher that runs tool commands in namespaces behind a seccomp allowlist (Docs/Sandbox.md).
        .executableTarget(
            name: "moat-sandbox",
            path: "sandbox",
            // The libFuzzer harness for the spec parser is built by sandbox/fuzz/run.sh with clang, never here.
            exclude: ["fuzz"],
            publicHeadersPath: "include",
            // swiftc would link the Swift runtime into this plain C program (via its startup file); linked
            // static without it, the launcher starts faster and needs nothing from the toolchain.
            linkerSettings: [.linkedLibrary("seccomp"), .unsafeFlags(["-nostartfiles", "-static-executable"])]
        ),
        // The escape probes, run as the sandboxed command by the escape suite; test-only, never installed.
        // Static like the launcher, so it runs inside a sandbox with no toolchain visible.
        .executableTarget(
            name: "moat-sandbox-probe",
            path: "Tests/SandboxProbe",
            linkerSettings: [.unsafeFlags(["-nostartfiles", "-static-executable"])]
        ),
        // The Swift API over the launcher; it finds `moat-sandbox` beside the running executable.
        .target(
            name: "MoatSandbox",
            dependencies: ["MoatCore"],
            swiftSettings: swiftSettings
        ),
        // prctl(2) for the moat process (non-dumpable), a C shim because the libc prototype is variadic;
        // and posix_spawn with every other descriptor closed in the child (ChildProcess, MoatCore).
        .target(name: "CMoatProcess"),
        // openat2(2) for the workspace's file tools (MoatTools); a C shim because `syscall` is variadic.
        .target(name: "CMoatFiles"),

        .executableTarget(
            name: "moat",
            dependencies: [
                "CMoatProcess",
                "MoatAgent",
                "MoatAudit",
                "MoatAuth",
                "MoatCore",
                "MoatPolicy",
                "MoatStore",
                "MoatVault",
                "MoatAdmin",
                "MoatApp",
                "MoatConfig",
                "MoatHTTP",
                "MoatNet",
                "MoatSandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets (temporary directories, the real binary, a raw HTTP client).
        .target(
            name: "MoatTestSupport",
            dependencies: [
                "MoatCore",
                "MoatVault",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatCoreTests",
            dependencies: ["MoatCore", "MoatTestSupport"],
            swiftSettings: swiftSettings
        ),
        // The schema check is tested against the audit log's real tables (MoatAudit's migration).
        .testTarget(
            name: "MoatStoreTests",
            dependencies: [
                "MoatAudit",
                "MoatCore",
                "MoatStore",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The documented benchmarks (`swift run -c release moat-bench audit|flagger|agent`); never installed.
        .executableTarget(
            name: "moat-bench",
            dependencies: [
                "MoatAgent",
                "MoatAudit",
                "MoatCore",
                "MoatPolicy",
                "MoatProviders",
                "MoatStore",
                "MoatTools",
                "MoatVault",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/MoatBench",
            swiftSettings: swiftSettings
        ),
        // Child processes for tests (crash safety: killed at random points; many held connections); never
        // installed.
        .executableTarget(
            name: "moat-test-helper",
            dependencies: [
                "MoatAudit",
                "MoatCore",
                "MoatStore",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/MoatTestHelper",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatAuditTests",
            dependencies: [
                "moat-test-helper",
                "MoatAudit",
                "MoatStore",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatServerTests",
            dependencies: [
                "MoatAdmin",
                "MoatAgent",
                "MoatApp",
                "MoatAudit",
                "MoatAuth",
                "MoatChannels",
                "MoatConfig",
                "MoatConsole",
                "MoatCore",
                "MoatHTTP",
                "MoatNet",
                "MoatPolicy",
                "MoatStore",
                "MoatVault",
                "MoatTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatChannelsTests",
            dependencies: ["MoatChannels", "MoatCore", "MoatNet", "MoatTestSupport", "MoatVault"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatNetTests",
            dependencies: [
                "MoatCore",
                "MoatNet",
                "MoatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The OpenAI-compatible provider against the scripted model server (and the real `openai` client).
        .testTarget(
            name: "MoatProvidersTests",
            dependencies: [
                "MoatConfig",
                "MoatCore",
                "MoatNet",
                "MoatProviders",
                "MoatTestSupport",
                "MoatVault",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatAuthTests",
            dependencies: [
                "MoatAudit",
                "MoatAuth",
                "MoatCore",
                "MoatStore",
                "MoatVault",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatVaultTests",
            dependencies: ["MoatCore", "MoatVault", "MoatTestSupport", "moat-vault-crash-helper"],
            swiftSettings: swiftSettings
        ),
        // Writes and re-keys a vault in a loop until killed: the crash-safety test SIGKILLs it at random points.
        .executableTarget(
            name: "moat-vault-crash-helper",
            dependencies: ["MoatCore", "MoatVault"],
            path: "Tests/VaultCrashHelper",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatPolicyTests",
            dependencies: [
                "MoatAudit",
                "MoatCore",
                "MoatPolicy",
                "MoatStore",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Corpus"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatSandboxTests",
            dependencies: ["moat", "moat-sandbox", "moat-sandbox-probe", "MoatCore", "MoatSandbox", "MoatTestSupport"],
            swiftSettings: swiftSettings
        ),
        // The built-in tools against the real file system, the real sandbox launcher and servers on loopback.
        .testTarget(
            name: "MoatToolsTests",
            dependencies: [
                "CMoatFiles",
                "moat-sandbox",
                "MoatCore",
                "MoatNet",
                "MoatSandbox",
                "MoatStore",
                "MoatTools",
                "MoatVault",
                "MoatTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatAgentTests",
            dependencies: [
                "MoatAgent",
                "MoatAudit",
                "MoatChannels",
                "MoatCore",
                "MoatPolicy",
                "MoatProviders",
                "MoatStore",
                "MoatTools",
                "MoatVault",
                "MoatTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MoatCLITests",
            dependencies: [
                "moat",
                "moat-test-helper",
                "MoatChannels",
                "MoatCore",
                "MoatTestSupport",
                "MoatVault",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
