import Logging
import MoatAgent
import MoatAudit
import MoatChannels
import MoatConfig
import MoatConsole
import MoatCore
import MoatPolicy
import MoatVault
import ServiceLifecycle
import Synchronization

/// The messaging channels of `moat serve` (Docs/Channels.md): the channel framework's router with one
/// adapter per configured platform (today `channels.telegram`), run as one service of the server's service
/// group, and Telegram's webhook route when the bot is in webhook mode.
struct ChannelServices {
    let router: ChannelRouter
    let service: ChannelService
    /// `POST /hooks/telegram/updates`, in webhook mode.
    let telegramWebhook: TelegramWebhookRoutes?

    /// The channels `configuration.channels` names, or nil when none is configured. Nothing is contacted
    /// here: the adapters reach their platforms once the service runs.
    static func make(
        state: InstallationState, vault: UnlockedVault, audit: AuditLog, owner: OwnerAccess, logger: Logger
    ) throws(GatewayError) -> ChannelServices? {
        guard let settings = state.configuration.channels.telegram else { return nil }
        let report: @Sendable (String) -> Void = { logger.error("\($0)") }
        let adapter: TelegramAdapter
        let router: ChannelRouter
        do {
            adapter = TelegramAdapter(
                bot: try TelegramBot(settings: settings, vault: vault), settings: settings, report: report)
            let pairing = PairingDesk(
                database: state.database, authenticator: try ChannelKeyring.authenticator(from: vault), audit: audit,
                policy: owner.engine)
            let outbox = owner.channelOutbox
            router = try ChannelRouter(
                adapters: [adapter], database: state.database, policy: owner.engine, pairing: pairing,
                turns: AgentChannelTurns(agent: owner.agent), report: report,
                onPairingRequest: { pending in
                    // The log names the channel and the sender, never the code; the owner's own chat gets it.
                    logger.notice(
                        "someone asked to pair: approve with `moat pairing approve CODE` (the code they were given)",
                        metadata: ["channel": "\(pending.channel)", "sender": "\(pending.senderID)"])
                    await outbox.notifyOwner(
                        "\(pending.channel) user \(pending.senderID) asks to talk to the agent with pairing code "
                            + "\(pending.code). Approve with `moat pairing approve \(pending.code)`, or ignore it.")
                })
        } catch let error as ChannelError {
            throw GatewayError(.configuration, error.message)
        } catch {
            throw GatewayError(.startup, "cannot open the channels: \(error)")
        }
        owner.channelOutbox.attach(router)
        return ChannelServices(
            router: router, service: ChannelService(router: router),
            telegramWebhook: settings.mode == .webhook
                ? TelegramWebhookRoutes(
                    settings: settings, vault: vault, receiver: TelegramWebhookReceiver(adapter: adapter))
                : nil)
    }
}

/// The router as a service: every adapter under its supervisor and the accepted turns, until shutdown
/// (the adapters stop reading, then the running turns are cancelled; what was accepted is in moat.db).
struct ChannelService: Service {
    let router: ChannelRouter

    func run() async throws {
        await cancelWhenGracefulShutdown { [router] in await router.run() }
    }
}

/// Telegram's webhook route delivers into the running adapter.
struct TelegramWebhookReceiver: TelegramUpdateReceiver {
    let adapter: TelegramAdapter

    func receive(_ inbound: TelegramInbound) async throws { try await adapter.receive(inbound) }
}

/// Where owner notices go besides the log: the owner's bound channel accounts, once the channels run.
/// Made before the agent (which holds the notifier), attached to the router after.
final class ChannelOutbox: Sendable {
    private let router = Mutex<ChannelRouter?>(nil)

    func attach(_ router: ChannelRouter) { self.router.withLock { $0 = router } }

    /// Sends `text` (with Approve/Deny when `prompt` is set) to the owner's bound accounts, if any.
    func notifyOwner(_ text: String, prompt: ApprovalPrompt? = nil) async {
        guard let router = router.withLock({ $0 }) else { return }
        await router.notifyOwner(text, prompt: prompt)
    }
}

/// The owner notifier of `moat serve`: the log, and the owner's bound channel accounts (a held call comes
/// with Approve/Deny buttons where the platform has them).
struct ServeOwnerNotifier: OwnerNotifier {
    let log: LoggingNotifier
    let outbox: ChannelOutbox

    func notify(_ notice: OwnerNotice) async {
        await log.notify(notice)
        if notice.kind == .approvalPending, let approvalID = notice.approvalID {
            let prompt = ApprovalPrompt(approvalID: approvalID, summary: notice.text, level: 2, domain: "", reason: nil)
            await outbox.notifyOwner(
                notice.text
                    + "\n\nTap Approve or Deny, or answer `\(prompt.approveReference)` / `\(prompt.denyReference)`.",
                prompt: prompt)
        } else {
            await outbox.notifyOwner(notice.text)
        }
    }
}
