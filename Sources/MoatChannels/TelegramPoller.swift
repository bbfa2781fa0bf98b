import MoatCore

/// What an update means to Moat: a text message in a private chat, a button tap, or something ignored
/// (and why). A pure reading of the update, no I/O.
public enum TelegramInbound: Sendable, Hashable {
    /// A new text message in a private chat with the bot.
    case message(TextMessage)
    /// A tap on an inline keyboard button Moat sent.
    case buttonTap(ButtonTap)
    /// Not for Moat: a group or channel message, an edited message, a message without text, a bot's
    /// message, another kind of update. The text says which.
    case ignored(updateID: Int64, reason: String)

    public struct TextMessage: Sendable, Hashable {
        public let updateID: Int64
        /// The private chat (its id is the user's id).
        public let chatID: Int64
        public let sender: TelegramUser
        public let messageID: Int64
        public let text: String
        /// Unix seconds.
        public let date: Int64
    }

    public struct ButtonTap: Sendable, Hashable {
        public let updateID: Int64
        /// Answer it with ``TelegramBot/answerCallbackQuery(_:text:)``.
        public let queryID: String
        public let sender: TelegramUser
        /// The chat and message that carry the button.
        public let chatID: Int64
        public let messageID: Int64
        public let data: String
    }

    /// The idempotency key of an update: `telegram:UPDATE_ID` (update ids are unique per bot).
    public var idempotencyKey: String {
        switch self {
        case .message(let message): "telegram:\(message.updateID)"
        case .buttonTap(let tap): "telegram:\(tap.updateID)"
        case .ignored(let id, _): "telegram:\(id)"
        }
    }

    /// Reads one update.
    public static func classify(_ update: TelegramUpdate) -> TelegramInbound {
        let id = update.updateID
        switch update.kind {
        case .message(let message):
            guard message.chat.isPrivate else {
                return .ignored(
                    updateID: id, reason: "a message in a \(kindOfChat(message.chat)): Moat answers private chats only")
            }
            guard let sender = message.from, !sender.isBot, sender.id == message.chat.id else {
                return .ignored(updateID: id, reason: "a message without a human sender")
            }
            guard let text = message.text, !text.isEmpty else {
                return .ignored(
                    updateID: id, reason: "a message without text (photos, stickers, files and voice are not read)")
            }
            return .message(
                TextMessage(
                    updateID: id, chatID: message.chat.id, sender: sender, messageID: message.messageID, text: text,
                    date: message.date))
        case .editedMessage:
            return .ignored(updateID: id, reason: "an edited message: only new messages are read")
        case .callbackQuery(let query):
            guard let message = query.message, message.chat.isPrivate, !query.from.isBot,
                message.chat.id == query.from.id
            else {
                return .ignored(updateID: id, reason: "a button tap outside a private chat with the bot")
            }
            guard let data = query.data, !data.isEmpty else {
                return .ignored(updateID: id, reason: "a button tap without data")
            }
            return .buttonTap(
                ButtonTap(
                    updateID: id, queryID: query.id, sender: query.from, chatID: message.chat.id,
                    messageID: message.messageID, data: data))
        case .other(let what):
            return .ignored(updateID: id, reason: "\(what): Moat reads new messages and button taps only")
        }
    }

    static func kindOfChat(_ chat: TelegramChat) -> String {
        switch chat.type {
        case "group", "supergroup": "group"
        case "channel": "channel"
        default: "chat of another kind"
        }
    }
}

/// Long polling: `getUpdates` in a loop, each update handed over in order, the offset stored after each.
///
/// **Offset.** The poller starts from the offset ``Cursor/load`` returns (nil: Telegram's oldest
/// unconfirmed update) and, after `handle` returns for an update, stores `update_id + 1` with
/// ``Cursor/store`` before the next one. The next `getUpdates` sends that offset, which confirms every
/// update below it to Telegram. So a restart neither loses an update (nothing is stored before it was
/// handled) nor repeats one that was stored; an update handled but not yet stored when the process
/// died comes again, with the same ``TelegramInbound/idempotencyKey``, for the receiver to drop.
///
/// **Shutdown.** Cancelling the task closes a held `getUpdates` at once (nothing waits out the poll's
/// timeout); updates fetched but not yet handled are left unconfirmed and come again at the next start.
///
/// **Failures.** When `handle` or `store` throws, the round stops there (the offset stays before the
/// update) and the same update comes back in the next round. A failed `getUpdates` (after the client's
/// own retries) is reported to `report` and the loop waits, doubling from 1 s to 60 s with jitter.
public struct TelegramPoller: Sendable {
    /// Where the offset lives (the channel framework keeps it in `moat.db`).
    public struct Cursor: Sendable {
        public var load: @Sendable () async throws -> Int64?
        public var store: @Sendable (Int64) async throws -> Void

        public init(
            load: @escaping @Sendable () async throws -> Int64?, store: @escaping @Sendable (Int64) async throws -> Void
        ) {
            self.load = load
            self.store = store
        }
    }

    let bot: TelegramBot
    let cursor: Cursor
    let timeout: Int
    let handle: @Sendable (TelegramInbound) async throws -> Void

    /// - Parameters:
    ///   - timeout: seconds one `getUpdates` waits for an update (``TelegramSettings/pollTimeout``).
    ///   - handle: takes one update; returns once it is safely taken (then its offset is stored).
    public init(
        bot: TelegramBot, cursor: Cursor, timeout: Int,
        handle: @escaping @Sendable (TelegramInbound) async throws -> Void
    ) {
        self.bot = bot
        self.cursor = cursor
        self.timeout = timeout
        self.handle = handle
    }

    /// One round: one `getUpdates` from the stored offset, then each update handled and its offset stored.
    /// Returns how many updates were handled.
    ///
    /// - Throws: ``ChannelError`` from `getUpdates`; `.deliveryFailed` when the cursor or `handle` failed
    ///   (the offset then stays before the update that failed).
    @discardableResult
    public func pollOnce() async throws(ChannelError) -> Int {
        let offset: Int64?
        do {
            offset = try await cursor.load()
        } catch {
            throw ChannelError(.deliveryFailed, "the Telegram offset cannot be read")
        }
        let updates = try await bot.getUpdates(offset: offset, timeout: timeout)
        var handled = 0
        for update in updates.sorted(by: { $0.updateID < $1.updateID }) {
            // Stopping: the rest stays unconfirmed and comes again at the next start.
            if Task.isCancelled { break }
            // Confirmed already: a server that sends it again is not believed.
            if let offset, update.updateID < offset { continue }
            do {
                try await handle(TelegramInbound.classify(update))
            } catch {
                throw ChannelError(.deliveryFailed, "Telegram update \(update.updateID) was not taken; it comes again")
            }
            do {
                try await cursor.store(update.updateID + 1)
            } catch {
                throw ChannelError(
                    .deliveryFailed, "the Telegram offset cannot be stored; update \(update.updateID) comes again")
            }
            handled += 1
        }
        return handled
    }

    /// Polls until the task is cancelled, passing every failure to `report` and waiting before the next round.
    public func run(report: @Sendable (ChannelError) async -> Void) async {
        var delay: Duration = .seconds(1)
        while !Task.isCancelled {
            do {
                try await pollOnce()
                delay = .seconds(1)
            } catch {
                if Task.isCancelled { return }
                await report(error)
                do {
                    try await bot.sleep(TelegramBot.jittered(delay))
                } catch {
                    return
                }
                delay = min(delay * 2, .seconds(60))
            }
        }
    }
}
