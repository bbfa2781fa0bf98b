import MoatChannels
import MoatConfig
import MoatConsole
import MoatCore
import MoatVault

extension InstallationState {
    /// The Telegram adapter `channels.telegram` configures, or nil (Docs/Channels.md, "Telegram"). Nothing is
    /// contacted here: the bot is reached once the channel service runs.
    static func telegramAdapter(
        _ settings: TelegramSettings?, vault: UnlockedVault, report: @escaping @Sendable (String) -> Void
    ) throws(GatewayError) -> TelegramAdapter? {
        guard let settings else { return nil }
        do {
            return TelegramAdapter(
                bot: try TelegramBot(settings: settings, vault: vault), settings: settings, report: report)
        } catch {
            throw GatewayError(.configuration, error.message)
        }
    }
}

extension GatewayServer {
    /// `POST /hooks/telegram/updates` when the bot is in webhook mode: updates that pass the secret header go
    /// to the running Telegram adapter of `router`.
    func telegramWebhook(router: ChannelRouter?, vault: UnlockedVault) -> TelegramWebhookRoutes? {
        guard let settings = configuration.channels.telegram, settings.mode == .webhook,
            let adapter = router?.adapter(for: "telegram") as? TelegramAdapter
        else { return nil }
        return TelegramWebhookRoutes(
            settings: settings, vault: vault, receiver: TelegramWebhookReceiver(adapter: adapter))
    }
}

/// Telegram's webhook route delivers into the running adapter (the same path as polled updates).
struct TelegramWebhookReceiver: TelegramUpdateReceiver {
    let adapter: TelegramAdapter

    func receive(_ inbound: TelegramInbound) async throws { try await adapter.receive(inbound) }
}
