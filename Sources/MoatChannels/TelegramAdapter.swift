public import Foundation
import MoatCore
import Synchronization

/// Telegram as a channel of the framework (``ChannelAdapter``): the Bot API's updates in, replies,
/// notices, pairing codes and approval prompts out, for one bot.
///
/// **In.** Long polling (``TelegramPoller``) starts from the offset the framework saved (``ChannelInbox``'s
/// cursor for `telegram`). A private text message becomes a ``ChannelMessage``: the sender is the Telegram
/// user id, the conversation the private chat's id, the idempotency key `telegram:UPDATE_ID`, the cursor
/// `UPDATE_ID + 1`. A tap on an Approve/Deny button (`callback_data` `approve:ID` / `deny:ID`) becomes a
/// message whose text is the prompt's reference (`approve ID` / `deny ID`): the router alone decides
/// whether the tapping account is the owner's. The router claims the owner's decision and runs the call
/// after `deliver` returns, so the tap is answered (`answerCallbackQuery`, "Approving…") and its buttons
/// removed at once; the result follows as a message. A second tap on a decided approval is answered with
/// why nothing was done. Every other update (a group message, an edit, a photo, a button Moat did not
/// make) only moves the cursor, and its reason goes to the log. In webhook mode the route
/// (`POST /hooks/telegram/updates`) hands each update to ``receive(_:)``, which takes the same path.
///
/// **Start.** Polling mode calls `deleteWebhook` once per process (Telegram answers `getUpdates` with 409
/// while a webhook is set); webhook mode calls `setWebhook` with the secret and checks with
/// `getWebhookInfo` that Telegram holds the configured URL.
///
/// **Out.** Plain text (no `parse_mode`), split by the client at Telegram's 4096 units; an approval
/// prompt carries the inline keyboard of ``TelegramApprovalButtons`` under its last piece, a pairing request
/// the one of ``TelegramPairingButtons`` (a tap comes back as `pairing REF CHOICE`, decided like the
/// approvals: the router checks the account, the pairing desk the request).
public struct TelegramAdapter: ChannelAdapter {
    public let channel = "telegram"
    let bot: TelegramBot
    let settings: TelegramSettings
    /// Told when an answer to a tap could not be sent, or webhook registration failed (the server's log).
    let report: @Sendable (String) -> Void
    /// The inbox while ``run(inbox:)`` runs (webhook mode delivers through it).
    private let current = InboxBox()
    /// Set once polling mode removed a webhook.
    private let webhookCleared = OnceFlag()

    public init(bot: TelegramBot, settings: TelegramSettings, report: @escaping @Sendable (String) -> Void = { _ in }) {
        self.bot = bot
        self.settings = settings
        self.report = report
    }

    // MARK: In

    public func run(inbox: any ChannelInbox) async throws {
        current.set(inbox)
        defer { current.set(nil) }
        switch settings.mode {
        case .polling:
            // Telegram refuses getUpdates (409) while a webhook is set, e.g. one left by an earlier webhook-mode
            // configuration. Removed once per process, keeping its pending updates: a webhook set again later
            // belongs to another program, and the 409 then says so instead of taking it back every reconnect.
            if !webhookCleared.isSet {
                try await bot.deleteWebhook()
                webhookCleared.set()
                inbox.reached(channel: channel)
            }
            let poller = TelegramPoller(
                bot: bot,
                cursor: TelegramPoller.Cursor(
                    load: { [channel] in try await inbox.savedCursor(channel: channel).flatMap { Int64($0) } },
                    // Saved already: `deliver` and `advance` store the cursor of each update they take.
                    store: { _ in }),
                timeout: settings.pollTimeout,
                handle: { inbound in try await take(inbound, into: inbox, polled: true) })
            while !Task.isCancelled {
                do {
                    try await poller.pollOnce()
                    inbox.reached(channel: channel)
                } catch {
                    if Task.isCancelled { return }
                    throw error
                }
            }
        case .webhook:
            if let url = settings.webhookURL { try await registerWebhook(url) }
            inbox.reached(channel: channel)
            // Updates arrive through ``receive(_:)``; this only keeps the inbox set until shutdown.
            while !Task.isCancelled {
                do { try await Task.sleep(for: .seconds(3600)) } catch { return }
            }
        }
    }

    /// `setWebhook` with the secret, then `getWebhookInfo` to check Telegram holds this URL (the secret is never
    /// read back; the route checks it on every delivery). Telegram's last delivery error, if any, is reported.
    ///
    /// - Throws: ``ChannelError`` `.configuration` when Telegram holds another URL.
    func registerWebhook(_ url: String) async throws(ChannelError) {
        try await bot.setWebhook(url: url)
        let info = try await bot.getWebhookInfo()
        guard info.url == url else {
            throw ChannelError(
                .configuration,
                "Telegram holds the webhook \(PrintableText.excerpt(info.url, limit: 200)) after setWebhook, not "
                    + "channels.telegram.webhook_url; another program with this bot's token changed it: stop it")
        }
        if let error = info.lastErrorMessage, !error.isEmpty {
            report(
                "Telegram's last delivery to the webhook failed: \(PrintableText.excerpt(error, limit: 200)) (check "
                    + "that channels.telegram.webhook_url reaches this server)")
        }
    }

    /// Webhook mode: one update that passed the secret-header check. Returns once it is durably handled.
    ///
    /// - Throws: ``ChannelError`` `.busy` while the channel is not running (Telegram delivers again later);
    ///   what ``ChannelInbox/deliver(_:)`` throws.
    public func receive(_ inbound: TelegramInbound) async throws {
        guard let inbox = current.get() else {
            throw ChannelError(.busy, "the Telegram channel is not running yet; Telegram will deliver again")
        }
        inbox.reached(channel: channel)
        try await take(inbound, into: inbox, polled: false)
    }

    /// One update, in the platform's order. Polled updates carry their cursor; webhook updates do not (the
    /// offset means nothing to a webhook, and the idempotency key still drops a repeat).
    func take(_ inbound: TelegramInbound, into inbox: any ChannelInbox, polled: Bool) async throws {
        switch inbound {
        case .message(let message):
            try await inbox.deliver(
                ChannelMessage(
                    channel: channel, senderID: String(message.sender.id), conversation: String(message.chatID),
                    text: message.text, idempotencyKey: inbound.idempotencyKey,
                    receivedAt: Date(timeIntervalSince1970: TimeInterval(message.date)),
                    cursor: polled ? String(message.updateID + 1) : nil))
        case .buttonTap(let tap):
            try await take(tap, key: inbound.idempotencyKey, into: inbox, polled: polled)
        case .ignored(let updateID, let reason):
            report("Telegram update \(updateID) was not read: \(reason)")
            if polled { try await inbox.advance(channel: channel, to: String(updateID + 1)) }
        }
    }

    func take(_ tap: TelegramInbound.ButtonTap, key: String, into inbox: any ChannelInbox, polled: Bool) async throws {
        let cursor = polled ? String(tap.updateID + 1) : nil
        let text: String
        let working: String
        if let (choice, approvalID) = TelegramApprovalButtons.parse(tap.data) {
            let prompt = ApprovalPrompt(approvalID: approvalID, summary: "", level: 2, domain: "", reason: nil)
            text = choice == .approve ? prompt.approveReference : prompt.denyReference
            working = choice == .approve ? "Approving…" : "Denying…"
        } else if let (choice, reference) = TelegramPairingButtons.parse(tap.data) {
            text = reference
            working = choice == .deny ? "Denied" : "Let in"
        } else {
            await answer(tap, "This button is not one of Moat's.")
            if let cursor { try await inbox.advance(channel: channel, to: cursor) }
            return
        }
        let outcome = try await inbox.deliver(
            ChannelMessage(
                channel: channel, senderID: String(tap.sender.id), conversation: String(tap.chatID), text: text,
                idempotencyKey: key, cursor: cursor))
        // `deliver` returns once the decision is claimed (an approved call runs after): the tap is answered now,
        // so the owner's client stops its spinner, and the result follows as a message.
        switch outcome {
        case .ownerCommand:
            await answer(tap, working)
            do {
                try await bot.editMessageReplyMarkup(chatID: tap.chatID, messageID: tap.messageID, keyboard: nil)
            } catch {
                report("the buttons of a decided Telegram approval could not be removed: \(error.message)")
            }
        case .refused(let reason):
            await answer(tap, "Not done: \(reason)")
        default:
            await answer(tap, nil)
        }
    }

    /// Stops the tapped button's spinner; a failure is only reported (the tap itself was handled).
    private func answer(_ tap: TelegramInbound.ButtonTap, _ text: String?) async {
        do {
            try await bot.answerCallbackQuery(tap.queryID, text: text)
        } catch {
            report("a Telegram button tap could not be answered: \(error.message)")
        }
    }

    // MARK: Out

    public func send(_ message: OutboundMessage) async throws {
        guard let chatID = Int64(message.conversation) else {
            throw ChannelError(.invalidInput, "a Telegram conversation is a chat id (an integer)")
        }
        var keyboard: TelegramInlineKeyboard?
        if case .approvalPrompt(let prompt) = message.kind {
            // An id that cannot be button data still goes out as text, with `approve ID` to type.
            keyboard = try? TelegramApprovalButtons.keyboard(approvalID: prompt.approvalID)
        } else if case .pairingRequest(let prompt) = message.kind {
            keyboard = TelegramPairingButtons.keyboard(prompt)
        }
        _ = try await bot.sendMessage(chatID: chatID, text: message.text, keyboard: keyboard)
    }
}

/// The inbox of the running adapter, for webhook deliveries.
private final class InboxBox: Sendable {
    private let inbox = Mutex<(any ChannelInbox)?>(nil)
    func set(_ value: (any ChannelInbox)?) { inbox.withLock { $0 = value } }
    func get() -> (any ChannelInbox)? { inbox.withLock { $0 } }
}

/// Set once, never cleared.
private final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
