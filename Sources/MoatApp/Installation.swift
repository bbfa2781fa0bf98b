import Foundation
public import MoatAdmin
public import MoatAgent
public import MoatAudit
public import MoatAuth
public import MoatChannels
public import MoatConfig
public import MoatCore
import MoatHTTP
public import MoatPolicy
import MoatProviders
public import MoatStore
import MoatTools
public import MoatVault

/// The composition root: the one way every entry point (`moat serve`, each CLI command run in its own
/// process, `moat doctor`, the test fixtures) finds and opens a Moat installation.
///
/// The order is fixed here and nowhere else: layout → configuration (file, then flags) → state directory
/// (modes checked) → database (every module's migrations) → vault (unlocked by the caller: a prompt, a
/// PIN file or the seal are the caller's business) → audit log (after the rollback guard) → policy and
/// owner authentication. ``locate(_:)`` changes nothing on disk; ``open(_:)`` returns the
/// ``InstallationState`` that holds what was opened and closes it once.
public struct Installation: Sendable {
    /// What the command line asked for; flags win over the config file.
    public struct Options: Sendable {
        public var home: String?
        public var configPath: String?
        public var host: String?
        public var port: Int?
        public var logFormat: GatewayConfiguration.LogFormat?
        public var environment: [String: String]

        public init(
            home: String? = nil,
            configPath: String? = nil,
            host: String? = nil,
            port: Int? = nil,
            logFormat: GatewayConfiguration.LogFormat? = nil,
            environment: [String: String]
        ) {
            self.home = home
            self.configPath = configPath
            self.host = host
            self.port = port
            self.logFormat = logFormat
            self.environment = environment
        }
    }

    /// How the state directory is used.
    public enum Access: Sendable {
        /// Creates the directories (0700) when missing: `moat serve`, `moat vault init`.
        case create
        /// Needs state that is already there (`moat.db`): every other command.
        case existing
        /// Uses what is there without creating anything or needing the database (`moat vault …`,
        /// which may run before the first `moat serve`).
        case asFound
    }

    public let layout: StateLayout
    public let configuration: GatewayConfiguration
    /// Where the configuration came from (a path, or "defaults").
    public let configurationSource: String

    /// An installation at `layout` with a configuration given in code rather than read from a file (the
    /// test fixtures; ``locate(_:readConfiguration:)`` is what the commands use).
    public init(
        layout: StateLayout, configuration: GatewayConfiguration = GatewayConfiguration(),
        configurationSource: String = "given in code"
    ) {
        self.layout = layout
        self.configuration = configuration
        self.configurationSource = configurationSource
    }

    /// Resolves the layout, loads the config and applies the flags. Nothing is created on disk.
    ///
    /// With `readConfiguration` false the config file is not read and the defaults stand in: for the
    /// read-only audit commands, which must work exactly when something (a config file included) is wrong.
    public static func locate(_ options: Options, readConfiguration: Bool = true) throws(GatewayError) -> Installation {
        let layout = try Self.layout(options)
        guard readConfiguration else {
            return Installation(
                layout: layout, configuration: GatewayConfiguration(), configurationSource: "not read")
        }
        let path = options.configPath ?? layout.configFile
        var configuration = try ConfigurationLoader.load(path: path, required: options.configPath != nil)
        let source = FileModes.mode(of: path) == nil && options.configPath == nil ? "defaults (no \(path))" : path
        if let host = options.host { configuration.host = host }
        if let port = options.port {
            guard (0...65535).contains(port) else {
                throw GatewayError(.configuration, "--port \(port): out of range; use a port from 1 to 65535")
            }
            configuration.port = port
        }
        if let format = options.logFormat { configuration.logFormat = format }
        return Installation(layout: layout, configuration: configuration, configurationSource: source)
    }

    /// Only the layout, for commands that need no configuration (`moat vault`, `moat sandbox`).
    public static func layout(_ options: Options) throws(GatewayError) -> StateLayout {
        do {
            return try StateLayout.resolve(home: options.home, environment: options.environment)
        } catch {
            throw GatewayError(.configuration, error.message)
        }
    }

    /// The vault's files in this installation.
    public var vaultPaths: VaultPaths { VaultPaths(stateDirectory: layout.stateDirectory) }
    /// The admin socket's path.
    public var adminSocketPath: String { layout.adminSocket }
    /// Where `moat serve` writes the one-time setup link when there is no terminal.
    public var setupLinkFile: String { layout.setupLinkFile }

    /// Checks the state directory (creating it with `.create`) and refuses modes others can reach.
    public static func checkState(_ layout: StateLayout, _ access: Access) throws(GatewayError) {
        switch access {
        case .create:
            do {
                try layout.createDirectories()
            } catch {
                throw GatewayError(.unsafeState, error.message)
            }
        case .existing:
            guard FileModes.mode(of: layout.databaseFile) != nil else {
                throw GatewayError(
                    .configuration,
                    "no Moat state in \(layout.stateDirectory): start the gateway once with `moat serve`, "
                        + "or point --home at the right directory")
            }
        case .asFound:
            break
        }
        let problems = layout.permissionProblems()
        guard problems.isEmpty else {
            throw GatewayError(
                .unsafeState,
                "refusing to use Moat's state: it must be private to you (as OpenSSH requires for ~/.ssh):\n"
                    + PermissionProblem.report(problems) + "\nThen run the command again."
            )
        }
    }

    /// Checks the state directory and opens the database with every module's migrations.
    public func open(_ access: Access) throws(GatewayError) -> InstallationState {
        try Self.checkState(layout, access)
        return InstallationState(installation: self, database: try Self.openDatabase(layout))
    }

    /// The one place `moat.db` is opened (and migrated).
    public static func openDatabase(_ layout: StateLayout) throws(GatewayError) -> MoatDatabase {
        do {
            return try MoatDatabase(path: layout.databaseFile, migrations: MoatSchema.migrations)
        } catch {
            throw GatewayError(.database, error.message)
        }
    }

    /// A vault error as a start-up failure: a damaged or rolled-back file is bad data (65), anything else
    /// means the vault stays locked (78).
    public static func vaultFailure(_ error: VaultError) -> GatewayError {
        let damaged: Set<VaultError.Code> = [.corrupt, .unsupportedVersion, .weakParameters, .rolledBack]
        return GatewayError(
            damaged.contains(error.code) ? .vaultDamaged : .vaultLocked,
            "cannot unlock the vault: \(error.message)"
        )
    }

    /// The one place the audit log is built: first the rollback guard (a copied-back older vault is
    /// refused before anything in it is used, the audit keys included), then the keys from the vault.
    public static func auditLog(database: MoatDatabase, vault: UnlockedVault) throws(GatewayError) -> AuditLog {
        do {
            try VaultRollbackGuard.check(vault, database: database)
        } catch {
            throw vaultFailure(error)
        }
        let keys: AuditKeys
        do {
            keys = try AuditKeyring.keys(from: vault)
        } catch {
            throw GatewayError(.startup, "the audit keys could not be read from the vault: \(error)")
        }
        return try auditLog(database: database, keys: keys)
    }

    /// The audit log of `database` with `keys` (for the vault commands that record a change with keys
    /// they hold before the vault file is written).
    public static func auditLog(database: MoatDatabase, keys: AuditKeys) throws(GatewayError) -> AuditLog {
        do {
            return AuditLog(database: database, keys: keys, origin: try AuditLog.origin(for: database))
        } catch {
            throw GatewayError(.database, "the audit log cannot be opened: \(error)")
        }
    }
}

/// An opened installation: its database and what is built on it. Closed once, by whoever opened it.
public final class InstallationState: Sendable {
    public let installation: Installation
    public let database: MoatDatabase

    init(installation: Installation, database: MoatDatabase) {
        self.installation = installation
        self.database = database
    }

    public var layout: StateLayout { installation.layout }
    public var configuration: GatewayConfiguration { installation.configuration }

    /// The audit log, with the vault's keys, after the rollback guard (``Installation/auditLog(database:vault:)``).
    public func auditLog(vault: UnlockedVault) throws(GatewayError) -> AuditLog {
        try Installation.auditLog(database: database, vault: vault)
    }

    /// Owner authentication over this installation's tables, with the configured limits.
    public func ownerAuthority(vault: UnlockedVault, audit: AuditLog) throws(GatewayError) -> OwnerAuthority {
        do {
            return try OwnerAuthority(database: database, vault: vault, audit: audit, settings: configuration.auth)
        } catch {
            throw GatewayError(.startup, "cannot open owner authentication: \(error)")
        }
    }

    /// The policy engine (trust, approvals, contacts), its rows authenticated with the vault's key.
    public func policyEngine(vault: UnlockedVault, audit: AuditLog) throws(GatewayError) -> PolicyEngine {
        do {
            return PolicyEngine(
                database: database, authenticator: try PolicyKeyring.authenticator(from: vault), audit: audit,
                settings: configuration.policy)
        } catch {
            throw GatewayError(.startup, "cannot open the policy engine: \(error)")
        }
    }

    /// The agent pipeline: the configured provider (`agent.provider` among `providers:`), the built-in
    /// tools over the workspace, the policy engine and the audit log. Nothing is contacted here: the model
    /// server is reached at the first turn.
    public func agent(
        vault: UnlockedVault, audit: AuditLog, engine: PolicyEngine, notifier: any OwnerNotifier,
        metrics: MoatMetrics = .none
    ) throws(GatewayError) -> Agent {
        let settings = configuration.agent
        let routing = try Self.providerRouting(configuration, vault: vault, metrics: metrics)
        do {
            let workspace = try Workspace.open(configured: configuration.tools.workspace, layout: layout)
            let sender = try webhookCallbacks(vault: vault, audit: audit).map {
                WebhookMessageSender(callbacks: $0, engine: engine)
            }
            let tools = try ToolRegistry.builtin(
                workspace: workspace, settings: configuration.tools, ssrf: configuration.policy.ssrf, vault: vault,
                messageSender: sender)
            return Agent(
                routing: routing, tools: tools.all, policy: engine, audit: audit, vault: vault,
                database: database, authenticator: try AgentKeyring.authenticator(from: vault), settings: settings,
                notifier: notifier)
        } catch let error as AgentError {
            throw GatewayError(.configuration, error.message)
        } catch let error as ToolError {
            throw GatewayError(.configuration, error.message)
        } catch {
            throw GatewayError(.startup, "cannot open the agent: \(error)")
        }
    }

    /// Every provider of `configuration`, each with its own breaker and timed into `metrics`, and the
    /// routes that decide who reaches which: what `moat serve` starts with and what a reload puts in force.
    public static func providerRouting(
        _ configuration: GatewayConfiguration, vault: UnlockedVault, metrics: MoatMetrics
    ) throws(GatewayError) -> ProviderRouting {
        let settings = configuration.agent
        guard let providerSettings = configuration.providers.named(settings.provider) else {
            throw GatewayError(
                .configuration,
                "agent.provider names \(settings.provider), which is not among providers: "
                    + configuration.providers.providers.map(\.name).joined(separator: ", "))
        }
        do {
            return try ProviderRouting(
                members: try configuration.providers.providers.map { (provider) throws(ProviderError) in
                    ProviderRouting.Member(
                        MeteredProvider(wrapped: try provider.makeProvider(vault: vault), metrics: metrics),
                        settings: provider)
                },
                defaultProvider: providerSettings.name, routes: settings.routes)
        } catch let error as ProviderError {
            throw GatewayError(.configuration, error.message)
        } catch let error as AgentError {
            throw GatewayError(.configuration, error.message)
        } catch {
            throw GatewayError(.configuration, "cannot set up the providers: \(error)")
        }
    }

    /// The signed callbacks of the webhooks that have a `callback_url`; nil when none has one (then
    /// `send_message` is not offered and every webhook answers with its reply).
    func webhookCallbacks(vault: UnlockedVault, audit: AuditLog) throws(GatewayError) -> SignedCallback? {
        let channels = configuration.channels
        guard channels.webhooks.values.contains(where: { $0.callback != nil }) else { return nil }
        do {
            return try SignedCallback(settings: channels, vault: vault, audit: audit)
        } catch {
            throw GatewayError(.startup, error.message)
        }
    }

    /// The messaging channels' adapters (Telegram, Matrix) as `config.yaml` configures them.
    /// Each adapter adds itself here (its settings, its vault credentials), and nothing else changes.
    /// `report` takes what an adapter tells the server's log (never a message's text or a credential).
    public func channelAdapters(
        vault: UnlockedVault, report: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(GatewayError) -> [any ChannelAdapter] {
        try Self.channelAdapters(configuration.channels, vault: vault, report: report)
    }

    /// The adapters `channels` configures, each named by its channel (`telegram`, `matrix`): what `moat
    /// serve` starts with, and what a config reload starts for a channel added or changed.
    static func channelAdapters(
        _ channels: ChannelsSettings, vault: UnlockedVault, report: @escaping @Sendable (String) -> Void
    ) throws(GatewayError) -> [any ChannelAdapter] {
        var adapters: [any ChannelAdapter] = []
        if let telegram = try telegramAdapter(channels.telegram, vault: vault, report: report) {
            adapters.append(telegram)
        }
        if let matrix = try matrixAdapter(channels.matrix, vault: vault, report: report) { adapters.append(matrix) }
        return adapters
    }

    /// DM pairing and owner binding over this installation's tables, keyed from the vault.
    public func pairingDesk(vault: UnlockedVault, audit: AuditLog, engine: PolicyEngine) throws(GatewayError)
        -> PairingDesk
    {
        do {
            return PairingDesk(
                database: database, authenticator: try ChannelKeyring.authenticator(from: vault), audit: audit,
                policy: engine, settings: configuration.channels.pairing)
        } catch {
            throw GatewayError(.startup, "cannot open DM pairing: \(error)")
        }
    }

    /// Every owner operation (owner, tokens, trust, approvals, contacts), as the admin socket serves
    /// them and as a command runs them in its own process when no server is running.
    public func adminOperations(
        authority: OwnerAuthority,
        engine: PolicyEngine,
        vault: VaultOperations? = nil,
        agent: AgentOperations? = nil,
        pairing: PairingDesk? = nil,
        baseURL: @escaping @Sendable () -> String?,
        onSetupLink: (@Sendable (String) -> Void)? = nil
    ) -> AdminOperations {
        AdminOperations(
            owner: OwnerOperations(authority: authority, baseURL: baseURL, onSetupLink: onSetupLink),
            policy: PolicyOperations(engine: engine), vault: vault, agent: agent,
            usage: UsageLedger(
                database: database,
                dailyLimits: configuration.providers.providers.reduce(into: [:]) { $0[$1.name] = $1.dailyTokenLimit }),
            channels: pairing.map { ChannelOperations(desk: $0, engine: engine) })
    }

    /// Closes the database (after the last write; a second call does nothing harmful).
    public func close() throws(GatewayError) {
        do {
            try database.close()
        } catch {
            throw GatewayError(.database, "the database did not close cleanly: \(ExitStatus.message(for: error))")
        }
    }
}
