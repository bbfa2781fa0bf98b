import Foundation
import Logging
import MoatAdmin
import MoatAgent
import MoatAudit
import MoatAuth
import MoatChannels
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatPolicy
import MoatStore
import MoatVault
import Synchronization

/// The gateway's address once it listens (the port is only known then when 0 was asked for).
final class BaseURLBox: Sendable {
    private let value = Mutex<String?>(nil)
    func set(_ url: String) { value.withLock { $0 = url } }
    func get() -> String? { value.withLock { $0 } }
}

/// Owner authentication as the running server uses it: the HTTP side and the admin socket.
struct OwnerAccess {
    let auth: GatewayAuth
    /// The agent pipeline the owner's chat, approvals and the channels feed.
    let agent: Agent
    /// The messaging channels' router (with no adapter when none is configured: a reload may add one).
    let channels: ChannelRouter
    /// DM pairing and owner binding.
    let pairing: PairingDesk
    let operations: (@escaping @Sendable () -> String?) -> AdminOperations
    /// The owner's policy engine (pending approvals for the metrics).
    let engine: PolicyEngine
    let socketPath: String
    let logger: Logger

    func adminSocket(baseURL: BaseURLBox) -> AdminSocketServer {
        let operations = self.operations { baseURL.get() }
        let authority = auth.authority
        return AdminSocketServer(
            path: socketPath,
            handler: { operation, peer, events in
                await operations.respond(
                    to: operation, client: ClientInfo(sourceIP: "admin-socket", userAgent: "uid \(peer.uid)"),
                    events: events)
            },
            onRefused: { peer in
                await authority.recordAdminRefusal(uid: peer.uid, pid: peer.pid)
            },
            logger: logger
        )
    }
}

extension GatewayServer {
    /// The setup link goes to the terminal when there is one, else to `setup-link.txt` (0600) in the
    /// state directory: it is a credential, so it never goes through the logger.
    public var setupLinkFile: String { installation.setupLinkFile }

    /// The admin socket's path.
    public var adminSocketPath: String { installation.adminSocketPath }

    func makeOwnerAccess(
        state: InstallationState, vault: UnlockedVault, audit: AuditLog, logger: Logger,
        metrics: ServerMetrics
    ) throws(GatewayError) -> OwnerAccess {
        let authority = try state.ownerAuthority(vault: vault, audit: audit)
        let engine = try state.policyEngine(vault: vault, audit: audit)
        let notifier = ChannelOwnerNotifier(next: LoggingNotifier(logger: logger), policy: engine)
        let agent = try state.agent(
            vault: vault, audit: audit, engine: engine, notifier: notifier, metrics: metrics.metrics)
        let pairing = try state.pairingDesk(vault: vault, audit: audit, engine: engine)
        let adapters = try state.channelAdapters(vault: vault) { logger.warning("\($0)") }
        let channels = try Self.channelRouter(
            adapters: adapters, state: state, engine: engine, pairing: pairing,
            agent: agent, notifier: notifier, logger: logger)
        let installation: String
        do {
            installation = try state.database.installationID()
        } catch {
            throw GatewayError(.database, ExitStatus.message(for: error))
        }
        let tailscale = configuration.tailscaleOwner.map {
            TailscaleIdentity(
                owner: $0, localAPI: TailscaleLocalAPI(socketPath: configuration.tailscaleSocket),
                proxyUID: configuration.tailscaleProxyUID)
        }
        let auth = GatewayAuth(
            authority: authority, database: state.database, tailscale: tailscale, tls: bind.tls != nil,
            mode: configuration.authMode,
            liveTokens: LiveTokenIssuer(key: authority.liveTokenKey, audience: "moat:" + installation),
            setupLinkFile: setupLinkFile, tailscaleProxyUID: configuration.tailscaleProxyUID)
        let linkFile = setupLinkFile
        return OwnerAccess(
            auth: auth,
            agent: agent,
            channels: channels,
            pairing: pairing,
            operations: { baseURL in
                state.adminOperations(
                    authority: authority, engine: engine,
                    vault: VaultOperations(vault: vault, audit: audit, userAgent: "moat-admin-socket"),
                    agent: AgentOperations(agent: agent), pairing: pairing, baseURL: baseURL
                ) { link in
                    Self.deliverSetupLink(link, file: linkFile, logger: logger)
                }
                .withMetrics { await metrics.scrape(policy: engine) }
            },
            engine: engine,
            socketPath: adminSocketPath,
            logger: logger
        )
    }

    /// The router over `adapters` (none yet is fine: a reload may start one), its notices going to the
    /// owner's bound accounts.
    static func channelRouter(
        adapters: [any ChannelAdapter], state: InstallationState, engine: PolicyEngine, pairing: PairingDesk,
        agent: Agent, notifier: ChannelOwnerNotifier, logger: Logger
    ) throws(GatewayError) -> ChannelRouter {
        do {
            let router = try ChannelRouter(
                adapters: adapters, database: state.database, policy: engine, pairing: pairing,
                turns: AgentChannelTurns(agent: agent), report: { logger.warning("\($0)") },
                onPairingRequest: { pending in
                    // The code goes to the owner's bound accounts only: the log (journald, anyone in the
                    // adm group) gets the request and where to read the code.
                    let who = "\(pending.channel) sender \(pending.senderID) asks to pair"
                    await notifier.notifyPairing(
                        pending,
                        logText: PrintableText.strip(
                            who + ": `moat pairing list` shows the code; then moat pairing approve CODE "
                                + "[--ceiling DOMAIN=LEVEL] or moat pairing deny CODE"),
                        ownerText: PrintableText.strip(
                            who + " with code \(pending.code): tap a choice, or reply pair \(pending.code) "
                                + "[DOMAIN=LEVEL …] or deny \(pending.code) (or moat pairing approve "
                                + "\(pending.code) on the server)"))
                })
            notifier.attach(router)
            return router
        } catch {
            throw GatewayError(.configuration, "cannot start the channels: \(error)")
        }
    }

    /// With no owner yet, creates a setup link and shows it; with an owner, removes a stale link file.
    func offerSetupLink(auth: GatewayAuth, baseURL: String, logger: Logger) async {
        let client = ClientInfo.local("serve")
        let state = try? await auth.authority.state()
        guard state == .needsSetup else {
            unlink(setupLinkFile)
            if state == .damaged { logger.error("\(OwnerState.damagedAdvice)") }
            return
        }
        do {
            let token = try await auth.authority.createSetupToken(client: client)
            Self.deliverSetupLink("\(baseURL)/setup#\(token)", file: setupLinkFile, logger: logger)
        } catch {
            logger.error("could not create a setup link", metadata: ["error": "\(error.message)"])
        }
    }

    static func deliverSetupLink(_ link: String, file: String, logger: Logger) {
        if isatty(STDOUT_FILENO) == 1 {
            let text = """

                Moat has no owner yet. Open this link in a browser on this machine within 15 minutes to set
                the owner password (it works once; `moat owner setup` does the same in a terminal):

                    \(link)


                """
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do {
            try FileModes.writePrivateFile(file, contents: Array((link + "\n").utf8))
            logger.notice(
                "Moat has no owner yet: the one-time setup link (valid 15 minutes) is in a file; open it in a browser, or run `moat owner setup`",
                metadata: ["file": "\(file)"])
        } catch {
            logger.error("could not write the setup link file", metadata: ["file": "\(file)"])
        }
    }
}
