import Logging
import MoatAgent
import MoatAudit
public import MoatConfig
import MoatCore
import MoatVault
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What a reload of `config.yaml` may put in force while `moat serve` runs, and what waits for a
/// restart: a pure comparison of the configuration in force with the one just loaded.
public struct ReloadPlan: Sendable, Equatable {
    /// Changed sections put in force now (`providers`, `agent`).
    public let applied: [String]
    /// Changed keys or sections that keep their old value until `moat serve` restarts.
    public let needsRestart: [String]
    /// The configuration in force after the reload: the new live sections, the old everything else.
    public let inForce: GatewayConfiguration

    /// Compares `current` (in force) with `loaded` (just read).
    public init(current: GatewayConfiguration, loaded: GatewayConfiguration) {
        var applied: [String] = []
        var restart: [String] = []
        var inForce = current
        if current.providers != loaded.providers {
            applied.append("providers")
            inForce.providers = loaded.providers
        }
        if current.agent != loaded.agent {
            applied.append("agent")
            inForce.agent = loaded.agent
        }
        let rest: [(String, Bool)] = [
            ("gateway.host", current.host != loaded.host), ("gateway.port", current.port != loaded.port),
            ("gateway.tls", current.tls != loaded.tls),
            ("gateway.allowed_hosts", current.allowedHosts != loaded.allowedHosts),
            ("gateway.auth", current.authMode != loaded.authMode || current.tailscaleOwner != loaded.tailscaleOwner),
            ("gateway.auth.limits", current.auth != loaded.auth),
            ("log", current.logFormat != loaded.logFormat || current.logLevel != loaded.logLevel),
            ("policy", current.policy != loaded.policy), ("channels", current.channels != loaded.channels),
            ("tools", current.tools != loaded.tools),
        ]
        restart = rest.filter(\.1).map(\.0)
        self.applied = applied
        self.needsRestart = restart
        self.inForce = inForce
    }
}

/// SIGHUP: reads `config.yaml` again with the loader `moat serve` started with, puts the providers and
/// the agent's limits, budgets and routes in force, and says what needs a restart. A file that does not
/// load changes nothing; either way the reload is logged and audited (`config.reload`).
final class ConfigReloader: Service {
    let options: Installation.Options
    let inForce: Mutex<GatewayConfiguration>
    let agent: Agent
    let vault: UnlockedVault
    let audit: AuditLog
    let metrics: MoatMetrics
    let logger: Logger

    init(
        options: Installation.Options, configuration: GatewayConfiguration, agent: Agent, vault: UnlockedVault,
        audit: AuditLog, metrics: MoatMetrics, logger: Logger
    ) {
        self.options = options
        self.inForce = Mutex(configuration)
        self.agent = agent
        self.vault = vault
        self.audit = audit
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await reload()
        }
    }

    func reload() async {
        let loaded: GatewayConfiguration
        let plan: ReloadPlan
        do {
            loaded = try Installation.locate(options).configuration
            plan = ReloadPlan(current: inForce.withLock { $0 }, loaded: loaded)
            if !plan.applied.isEmpty {
                let routing = try InstallationState.providerRouting(loaded, vault: vault, metrics: metrics)
                agent.reload(routing: routing, settings: loaded.agent)
            }
        } catch {
            logger.error(
                "config reload refused: nothing changed, the configuration in force stays",
                metadata: ["error": "\(error.message)"])
            await record(outcome: "failure", ["error": .string(PrintableText.excerpt(error.message, limit: 300))])
            return
        }
        inForce.withLock { $0 = plan.inForce }
        logger.notice(
            "config reloaded",
            metadata: [
                "applied": "\(plan.applied.isEmpty ? "nothing changed" : plan.applied.joined(separator: ", "))",
                "needs_restart": "\(plan.needsRestart.isEmpty ? "nothing" : plan.needsRestart.joined(separator: ", "))",
            ])
        await record(
            outcome: "success",
            [
                "applied": .array(plan.applied.map { .string($0) }),
                "needs_restart": .array(plan.needsRestart.map { .string($0) }),
            ])
    }

    private func record(outcome: String, _ metadata: [String: AuditValue]) async {
        do {
            try await audit.append(
                AuditEvent(actor: "system", action: "config.reload", outcome: outcome, metadata: metadata))
        } catch {
            logger.error("could not record config.reload in the audit log", metadata: ["error": "\(error)"])
        }
    }
}
