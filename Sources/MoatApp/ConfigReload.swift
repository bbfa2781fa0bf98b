import Logging
import MoatAgent
import MoatAudit
import MoatAuth
import MoatChannels
public import MoatConfig
import MoatConsole
import MoatCore
import MoatVault
import ServiceLifecycle
import Synchronization
import UnixSignals

/// What a reload of `config.yaml` may put in force while `moat serve` runs, and what waits for a
/// restart: a pure comparison of the configuration in force with the one just loaded.
public struct ReloadPlan: Sendable, Equatable {
    /// One messaging channel's adapter to start, stop, or stop and start again with new settings.
    public struct ChannelChange: Sendable, Equatable {
        public enum Action: String, Sendable, Equatable {
            case start = "started"
            case stop = "stopped"
            case restart = "restarted"
        }

        /// The channel (`telegram`, `matrix`).
        public let channel: String
        public let action: Action

        public init(channel: String, action: Action) {
            self.channel = channel
            self.action = action
        }
    }

    /// Changed sections put in force now (`providers`, `agent`, `gateway.auth.limits`, `channels.…`).
    public let applied: [String]
    /// Changed keys or sections that keep their old value until `moat serve` restarts.
    public let needsRestart: [String]
    /// The channel adapters to start or stop, in the order of ``applied``.
    public let channels: [ChannelChange]
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
        if current.auth != loaded.auth {
            applied.append("gateway.auth.limits")
            inForce.auth = loaded.auth
        }
        if current.channels.pairing != loaded.channels.pairing {
            applied.append("channels.pairing")
            inForce.channels.pairing = loaded.channels.pairing
        }
        let hooks = Self.webhooks(current: current.channels.webhooks, loaded: loaded.channels.webhooks)
        if hooks.inForce != current.channels.webhooks {
            applied.append("channels.webhooks")
            inForce.channels.webhooks = hooks.inForce
        }
        restart += hooks.needsRestart
        var changes: [ChannelChange] = []
        // Webhook mode binds Telegram's route to the adapter at start: a change into, out of or within it waits.
        let telegramWebhook = [current.channels.telegram, loaded.channels.telegram].contains { $0?.mode == .webhook }
        if current.channels.telegram != loaded.channels.telegram, telegramWebhook {
            restart.append("channels.telegram (webhook mode)")
        } else if let change = Self.change("telegram", current.channels.telegram, loaded.channels.telegram) {
            changes.append(change)
            inForce.channels.telegram = loaded.channels.telegram
        }
        if let change = Self.change("matrix", current.channels.matrix, loaded.channels.matrix) {
            changes.append(change)
            inForce.channels.matrix = loaded.channels.matrix
        }
        applied += changes.map { "channels.\($0.channel)" }
        let rest: [(String, Bool)] = [
            ("gateway.host", current.host != loaded.host), ("gateway.port", current.port != loaded.port),
            ("gateway.tls", current.tls != loaded.tls),
            ("gateway.allowed_hosts", current.allowedHosts != loaded.allowedHosts),
            ("gateway.auth", current.authMode != loaded.authMode || current.tailscaleOwner != loaded.tailscaleOwner),
            ("log", current.logFormat != loaded.logFormat || current.logLevel != loaded.logLevel),
            ("policy", current.policy != loaded.policy), ("tools", current.tools != loaded.tools),
        ]
        restart += rest.filter(\.1).map(\.0)
        self.applied = applied
        self.needsRestart = restart
        self.channels = changes
        self.inForce = inForce
    }

    /// What becomes of one channel's adapter when its settings go from `old` to `new` (nil: not configured).
    /// Any change, a credential's secret name included, stops the adapter and starts a new one.
    static func change<Settings: Equatable>(_ channel: String, _ old: Settings?, _ new: Settings?) -> ChannelChange? {
        switch (old, new) {
        case (nil, nil): nil
        case (nil, _?): ChannelChange(channel: channel, action: .start)
        case (_?, nil): ChannelChange(channel: channel, action: .stop)
        case (let old?, let new?): old == new ? nil : ChannelChange(channel: channel, action: .restart)
        }
    }

    /// The webhooks in force after a reload: one without a callback is added, changed or removed at once;
    /// one with a callback on either side keeps its old form until a restart (its replies go out through
    /// `send_message` and the callback sender, both set up at start), and is named in the second list.
    static func webhooks(
        current: [String: ChannelsSettings.Webhook], loaded: [String: ChannelsSettings.Webhook]
    ) -> (inForce: [String: ChannelsSettings.Webhook], needsRestart: [String]) {
        var inForce: [String: ChannelsSettings.Webhook] = [:]
        var restart: [String] = []
        for name in Set(current.keys).union(loaded.keys).sorted() {
            let old = current[name]
            let new = loaded[name]
            if old != new, old?.callback != nil || new?.callback != nil {
                restart.append("channels.webhooks.\(name) (callback)")
                inForce[name] = old
            } else {
                inForce[name] = new
            }
        }
        return (inForce, restart)
    }
}

/// The parts of the running server a reload changes in place.
struct LiveParts: Sendable {
    let agent: Agent
    /// Owner authentication (`gateway.auth.limits`).
    let authority: OwnerAuthority
    /// DM pairing (`channels.pairing`).
    let pairing: PairingDesk
    /// The signed webhooks `POST /hooks/NAME` answers for (`channels.webhooks`).
    let webhooks: WebhookTable
    /// The messaging channels' adapters (`channels.telegram`, `channels.matrix`).
    let channels: ChannelRouter
}

/// SIGHUP: reads `config.yaml` again with the loader `moat serve` started with, puts in force what can
/// change live (providers, the agent's limits, budgets and routes, `gateway.auth.limits`, the channels
/// and their pairing limits, webhooks without a callback) and says what needs a restart. Everything
/// that could fail (the file, the providers, the new channel adapters) is checked before anything
/// changes: a reload that fails changes nothing. Either way the reload is logged and audited
/// (`config.reload`), and each channel started or stopped too (`channel.start`, `channel.stop`).
final class ConfigReloader: Service {
    let options: Installation.Options
    let inForce: Mutex<GatewayConfiguration>
    let parts: LiveParts
    let vault: UnlockedVault
    let audit: AuditLog
    let metrics: MoatMetrics
    let logger: Logger

    init(
        options: Installation.Options, configuration: GatewayConfiguration, parts: LiveParts, vault: UnlockedVault,
        audit: AuditLog, metrics: MoatMetrics, logger: Logger
    ) {
        self.options = options
        self.inForce = Mutex(configuration)
        self.parts = parts
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
        var routing: ProviderRouting?
        var adapters: [String: any ChannelAdapter] = [:]
        do {
            loaded = try Installation.locate(options).configuration
            plan = ReloadPlan(current: inForce.withLock { $0 }, loaded: loaded)
            if plan.applied.contains("providers") || plan.applied.contains("agent") {
                routing = try InstallationState.providerRouting(loaded, vault: vault, metrics: metrics)
            }
            let logger = self.logger
            for adapter in try InstallationState.channelAdapters(
                plan.inForce.channels, vault: vault, report: { logger.warning("\($0)") })
            where plan.channels.contains(where: { $0.channel == adapter.channel && $0.action != .stop }) {
                adapters[adapter.channel] = adapter
            }
        } catch {
            logger.error(
                "config reload refused: nothing changed, the configuration in force stays",
                metadata: ["error": "\(error.message)"])
            await record(
                "config.reload", outcome: "failure",
                ["error": .string(PrintableText.excerpt(error.message, limit: 300))])
            return
        }
        if let routing { parts.agent.reload(routing: routing, settings: plan.inForce.agent) }
        parts.authority.apply(plan.inForce.auth)
        parts.pairing.apply(plan.inForce.channels.pairing)
        parts.webhooks.replace(plan.inForce.channels.webhooks)
        for change in plan.channels { await apply(change, adapter: adapters[change.channel]) }
        inForce.withLock { $0 = plan.inForce }
        logger.notice(
            "config reloaded",
            metadata: [
                "applied": "\(plan.applied.isEmpty ? "nothing changed" : plan.applied.joined(separator: ", "))",
                "needs_restart": "\(plan.needsRestart.isEmpty ? "nothing" : plan.needsRestart.joined(separator: ", "))",
            ])
        await record(
            "config.reload", outcome: "success",
            [
                "applied": .array(plan.applied.map { .string($0) }),
                "needs_restart": .array(plan.needsRestart.map { .string($0) }),
            ])
    }

    /// Stops the channel's running adapter (waiting until it has), then starts `adapter` for it; logged and
    /// audited with the channel's name and what was done.
    private func apply(_ change: ReloadPlan.ChannelChange, adapter: (any ChannelAdapter)?) async {
        if change.action != .start { await parts.channels.stop(channel: change.channel) }
        if change.action != .stop, let adapter {
            do {
                try parts.channels.start(adapter)
            } catch {
                logger.error(
                    "channel not started", metadata: ["channel": "\(change.channel)", "error": "\(error.message)"])
                await record("channel.start", target: change.channel, outcome: "failure", ["reason": "config.reload"])
                return
            }
        }
        logger.notice("channel \(change.action.rawValue)", metadata: ["channel": "\(change.channel)"])
        let action = change.action == .stop ? "channel.stop" : "channel.start"
        await record(
            action, target: change.channel, outcome: "success",
            ["reason": "config.reload", "change": .string(change.action.rawValue)])
    }

    private func record(
        _ action: String, target: String = "", outcome: String, _ metadata: [String: AuditValue]
    ) async {
        do {
            try await audit.append(
                AuditEvent(actor: "system", action: action, target: target, outcome: outcome, metadata: metadata))
        } catch {
            logger.error("could not record \(action) in the audit log", metadata: ["error": "\(error)"])
        }
    }
}
