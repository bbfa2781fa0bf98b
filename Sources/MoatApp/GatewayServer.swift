import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import MoatAdmin
import MoatAgent
public import MoatAudit
import MoatAuth
import MoatChannels
public import MoatConfig
import MoatConsole
public import MoatCore
public import MoatHTTP
public import MoatStore
public import MoatVault
public import NIOCore
import ServiceLifecycle
import UnixSignals

/// `moat serve`: checks everything that can be checked before listening, then runs until SIGINT or
/// SIGTERM and shuts down gracefully (in-flight requests finish, then the database closes).
public struct GatewayServer: Sendable {
    /// What the command line asked for; flags win over the config file.
    public typealias Options = Installation.Options

    /// Where the installation is and how it is configured (nothing opened yet).
    public let installation: Installation
    public var layout: StateLayout { installation.layout }
    public var configuration: GatewayConfiguration { installation.configuration }
    /// Where the configuration came from (a path, or "defaults").
    public var configurationSource: String { installation.configurationSource }
    public let bind: BindPolicy.Decision
    /// The command line `moat serve` was started with: a reload (SIGHUP) reads the config through it, and
    /// the console's overview runs `moat doctor`'s checks with it.
    public var options: Options?
    /// A connection is closed after this long without a complete request part or an answer (which also
    /// bounds how long a request head may take to arrive).
    public static let idleTimeout: TimeAmount = .seconds(30)

    /// Everything `moat serve` checks before it opens a socket: the configuration and the bind policy.
    ///
    /// Nothing is created on disk yet: a refused start changes nothing.
    public static func prepare(
        _ options: Options,
        resolver: HostResolver = .system
    ) throws(GatewayError) -> GatewayServer {
        let installation = try Installation.locate(options)
        let bind = try BindPolicy.evaluate(installation.configuration.http, resolver: resolver)
        return GatewayServer(installation: installation, bind: bind, options: options)
    }

    /// Creates the state directories, refuses unsafe file modes, and opens the database.
    public func openState() throws(GatewayError) -> InstallationState {
        try installation.open(.create)
    }

    /// Runs the server until a shutdown signal; closes the database afterwards.
    ///
    /// - Parameters:
    ///   - vault: the unlocked vault, kept current with the file while the server runs.
    ///   - metrics: where requests and the pipeline are counted (``ServerMetrics/processWide`` in
    ///     `moat serve`; a registry of its own by default, so servers in one process never mix counts).
    ///   - onListening: called with the real bound port once the socket is listening.
    ///   - notifier: the service manager to tell `READY=1` once listening, `WATCHDOG=1` while the event
    ///     loops answer and `STOPPING=1` at shutdown (``SystemdNotifier``), when systemd started Moat.
    ///   - openFiles: the process's limit on open files, which sets the connection cap
    ///     (``ConnectionLimiter/cap(openFiles:)``).
    public func run(
        state: InstallationState,
        vault: UnlockedVault? = nil,
        audit: AuditLog? = nil,
        logger: Logger,
        openFiles: Int = 1024,
        metrics: ServerMetrics = ServerMetrics(),
        notifier: SystemdNotifier? = nil,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let hostGuard = HostGuard(
            boundAddress: bind.address,
            port: bind.port,
            tls: bind.tls != nil,
            allowedHosts: configuration.allowedHosts
        )
        let scheme = bind.tls == nil ? "http" : "https"
        let hostText: String
        if case .v6 = bind.address { hostText = "[\(bind.address)]" } else { hostText = bind.address.description }
        let linkHost = bind.address.isUnspecified ? "127.0.0.1" : hostText
        let baseURL = BaseURLBox()
        var auth: GatewayAuth?
        var adminSocket: AdminSocketServer?
        var agent: Agent?
        var webhooks: WebhookRoutes?
        var operations: AdminOperations?
        var background: BackgroundWork?
        var channels: ChannelService?
        var telegram: TelegramWebhookRoutes?
        var scrape: GatewayMetrics?
        var reloader: ConfigReloader?
        if let vault, let audit {
            await audit.attach(metrics.metrics)
            let owner = try makeOwnerAccess(
                state: state, vault: vault, audit: audit, logger: logger, metrics: metrics)
            let engine = owner.engine
            scrape = GatewayMetrics(metrics: metrics.metrics) { await metrics.scrape(policy: engine) }
            channels = ChannelService(router: owner.channels)
            telegram = telegramWebhook(router: owner.channels, vault: vault)
            auth = owner.auth
            agent = owner.agent
            operations = owner.operations { baseURL.get() }
            adminSocket = owner.adminSocket(baseURL: baseURL)
            // Always routed, so a webhook a reload adds answers; with none configured it answers 404.
            let table = WebhookTable(configuration.channels.webhooks)
            let callbacks = try state.webhookCallbacks(vault: vault, audit: audit)
            background = callbacks.map { _ in BackgroundWork() }
            let receiver = AgentWebhookReceiver(
                agent: owner.agent, callbacks: callbacks, work: background, logger: logger)
            webhooks = WebhookRoutes(table: table, vault: vault, receiver: receiver)
            let parts = LiveParts(
                agent: owner.agent, authority: owner.auth.authority, pairing: owner.pairing, webhooks: table,
                channels: owner.channels)
            reloader = options.map {
                ConfigReloader(
                    options: $0, configuration: configuration, parts: parts, vault: vault, audit: audit,
                    metrics: metrics.metrics, logger: logger)
            }
        }
        let postureOptions = options
        let console = ConsoleSources(
            posture: postureOptions.map { options in
                { @Sendable in
                    PostureCheck.run(options).map {
                        ConsoleSources.Finding(
                            check: $0.check, status: $0.status.rawValue, message: $0.message, fix: $0.fix)
                    }
                }
            }, audit: audit)
        let router = GatewayApplication.makeRouter(
            hostGuard: hostGuard, auth: auth, agent: agent, operations: operations, webhooks: webhooks,
            telegram: telegram, console: console, metrics: scrape)
        let ownerAuth = auth
        let limiter = ConnectionLimiter(limit: ConnectionLimiter.cap(openFiles: openFiles), logger: logger)
        let chatSocket = auth.flatMap { auth in
            agent.map { ChatSocket(hostGuard: hostGuard, auth: auth, agent: $0, logger: logger) }
        }
        let http1 = Self.httpServer(chatSocket: chatSocket, limiter: limiter)
        let server: HTTPServerBuilder
        if let tls = bind.tls {
            do {
                server = try .tls(http1, tlsConfiguration: tls.configuration)
            } catch {
                throw GatewayError(.tls, "cannot set up TLS with the configured certificate and key")
            }
        } else {
            server = http1
        }
        let eventLoops = EventLoopGroupProvider.singleton.eventLoopGroup
        let watchdog = notifier.map { SystemdWatchdog(notifier: $0, loops: eventLoops) }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(bind.address.description, port: bind.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(limiter.acceptLimit, logger: logger)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? bind.port
                hostGuard.setBoundPort(port)
                if let audit {
                    do {
                        try await audit.append(
                            AuditEvent(actor: "system", action: "gateway.start", metadata: startMetadata(port: port))
                        )
                    } catch {
                        logger.error("could not record gateway.start in the audit log", metadata: ["error": "\(error)"])
                    }
                }
                baseURL.set("\(scheme)://\(linkHost):\(port)")
                if let ownerAuth {
                    await offerSetupLink(auth: ownerAuth, baseURL: "\(scheme)://\(linkHost):\(port)", logger: logger)
                }
                // Logged last, so "listening" also means the setup link (when there is one) is ready.
                logger.notice(
                    "listening",
                    metadata: [
                        "url": "\(scheme)://\(hostText):\(port)", "loopback_only": "\(bind.isLoopback)",
                        "max_connections": "\(limiter.limit)",
                    ]
                )
                watchdog?.ready(status: "listening on \(scheme)://\(hostText):\(port)")
                onListening(port)
            },
            eventLoopGroupProvider: .shared(eventLoops),
            logger: logger
        )
        do {
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
            if let adminSocket {
                services.append(.init(service: adminSocket))
            }
            if let reloader {
                services.append(.init(service: reloader))
            }
            if let channels {
                services.append(.init(service: channels))
            }
            if let background {
                // First in the list, so it stops last: the routes that queue work are closed by then, and
                // the turns still running finish before the database closes.
                services.insert(.init(service: background), at: 0)
            }
            if let vault {
                let watcher = VaultWatcher(vault: vault, logger: logger, audit: audit)
                services.append(.init(service: watcher, successTerminationBehavior: .ignore))
            }
            if let watchdog {
                // Last in the list, so it is the first told of the shutdown: STOPPING=1 goes out at once.
                services.append(.init(service: watchdog, successTerminationBehavior: .ignore))
            }
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            )
            try await group.run()
        } catch {
            try? state.close()
            throw GatewayError(.startup, "the server stopped: \(error)")
        }
        do {
            // Uses of tokens and sessions kept in memory (written at most once a minute each) go to disk.
            try await ownerAuth?.authority.flushUsage()
        } catch {
            logger.error("could not write the last use of tokens and sessions", metadata: ["error": "\(error)"])
        }
        if let audit {
            // Recorded, then covered by a signed checkpoint, before the database closes.
            do {
                try await audit.append(AuditEvent(actor: "system", action: "gateway.stop"))
                let checkpoint = try await audit.writeCheckpoint()
                logger.info("audit checkpoint written", metadata: ["entries": "\(checkpoint.count)"])
            } catch {
                logger.error("could not record the shutdown in the audit log", metadata: ["error": "\(error)"])
            }
        }
        do {
            try state.close()
            logger.notice("stopped", metadata: ["database": "closed"])
        } catch {
            logger.error("stopped, but the database did not close cleanly", metadata: ["error": "\(error.message)"])
        }
    }
}
