import Foundation
import MoatCore
public import MoatNet
public import MoatVault
import NIOCore

/// A client of the Telegram Bot API (https://core.telegram.org/bots/api) for one bot.
///
/// **The token.** It is read from the vault secret ``TelegramSettings/tokenSecret`` at every call (so a
/// token replaced in the vault is used from the next call on) and must look like a bot token
/// (`DIGITS:` and 20–128 of `A-Z a-z 0-9 _ -`), which also keeps it a single path segment. The API puts
/// the token in the URL path (`/bot<TOKEN>/METHOD`), so no message of this type ever holds a URL: errors
/// name the origin (`https://api.telegram.org`), the method and the secret's *name*, and every error
/// text is scrubbed of the token before it leaves, whatever produced it.
///
/// **The exchange.** One `POST` with a JSON body through MoatNet's pinned transport (the owner's
/// ``TelegramSettings/baseURL``, resolved once per call and pinned; TLS verified). The answer is the
/// API's envelope, decoded strictly: `ok` must be a boolean, a success must carry a `result` of the
/// method's type, a failure an `error_code`.
///
/// **Failures.** 429 waits `parameters.retry_after` seconds and tries again (a wait longer than
/// ``Limits/maximumRetryAfter`` fails the call at once as `.busy`); a 5xx answer or a connection failure
/// is tried again after a doubling delay with jitter, up to ``Limits/attempts``; 401 and 404 mean the
/// token is wrong (`.configuration`, naming the secret to check); 409 means another client (a webhook, a
/// second Moat) takes the updates; anything else fails at once with Telegram's description.
public struct TelegramBot: Sendable {
    /// Bounds of one call.
    public struct Limits: Sendable {
        /// Attempts in all (the first and the retries) for 429, 5xx and connection failures.
        public var attempts = 5
        /// The wait before the first retry after a 5xx or a connection failure; each further one doubles
        /// (up to ``maximumRetryDelay``), and each is drawn at random between half of it and all of it.
        public var firstRetryDelay: Duration = .milliseconds(500)
        public var maximumRetryDelay: Duration = .seconds(30)
        /// The longest 429 `retry_after` waited for inside a call; a longer one fails the call.
        public var maximumRetryAfter: Duration = .seconds(120)
        /// Connecting, and the whole exchange of a call that does not long-poll (a long poll adds its timeout).
        public var connectTimeout: Duration = .seconds(10)
        public var requestTimeout: Duration = .seconds(30)
        /// The largest answer read.
        public var maximumResponseBytes = 8 << 20

        public init() {}
    }

    let settings: TelegramSettings
    let vault: UnlockedVault
    let transport: PinnedHTTPTransport
    let resolver: AddressResolver
    let limits: Limits
    let sleep: @Sendable (Duration) async throws -> Void

    /// - Parameters:
    ///   - sleep: how a retry waits (tests record the waits instead of sleeping).
    /// - Throws: ``ChannelError`` `.configuration` when the base URL is unusable.
    public init(
        settings: TelegramSettings, vault: UnlockedVault, resolver: AddressResolver = .system,
        limits: Limits = Limits(),
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) throws(ChannelError) {
        guard case .success(let base) = FetchURL.parse(settings.baseURL), base.userInfo == nil else {
            throw ChannelError(.configuration, "channels.telegram.base_url is not a usable URL")
        }
        do {
            transport = try PinnedHTTPTransport(userAgent: "Moat/\(MoatVersion.current)")
        } catch {
            throw ChannelError(.configuration, "the TLS client for Telegram cannot be set up")
        }
        self.settings = settings
        self.vault = vault
        self.resolver = resolver
        self.limits = limits
        self.sleep = sleep
    }

    // MARK: Methods

    /// `getMe`: the bot itself (a cheap check that the token works).
    public func getMe() async throws(ChannelError) -> TelegramUser {
        try await call("getMe", NoParameters())
    }

    /// `getUpdates`: updates from `offset` on (which confirms every update below it), waiting up to
    /// `timeout` seconds for the first one.
    public func getUpdates(offset: Int64?, timeout: Int, allowedUpdates: [String] = TelegramBot.allowedUpdates)
        async throws(ChannelError) -> [TelegramUpdate]
    {
        try await call(
            "getUpdates", GetUpdates(offset: offset, timeout: max(0, timeout), allowedUpdates: allowedUpdates),
            longPoll: max(0, timeout))
    }

    /// The update kinds Moat asks for: new messages and button taps.
    public static let allowedUpdates = ["message", "callback_query"]

    /// `sendMessage`, as many times as ``TelegramText/split(_:limit:)`` needs: plain text (no
    /// `parse_mode`, so nothing in the text is read as markup), link previews off (a preview would make
    /// Telegram fetch a URL the model wrote, without anyone tapping it). The keyboard goes under the last
    /// piece. Returns the messages sent, in order.
    ///
    /// - Throws: ``ChannelError`` `.invalidInput` for an empty text; what ``call`` throws. Pieces sent
    ///   before a failure stay sent.
    public func sendMessage(chatID: Int64, text: String, keyboard: TelegramInlineKeyboard? = nil)
        async throws(ChannelError) -> [TelegramMessage]
    {
        let pieces = TelegramText.split(text)
        guard !pieces.isEmpty else { throw ChannelError(.invalidInput, "a Telegram message cannot be empty") }
        var sent: [TelegramMessage] = []
        for (index, piece) in pieces.enumerated() {
            let markup = index == pieces.count - 1 ? keyboard : nil
            sent.append(try await call("sendMessage", SendMessage(chatID: chatID, text: piece, replyMarkup: markup)))
        }
        return sent
    }

    /// `answerCallbackQuery`: stops the spinner on the tapped button, with a short notice when `text` is set.
    public func answerCallbackQuery(_ id: String, text: String? = nil) async throws(ChannelError) {
        let _: Bool = try await call(
            "answerCallbackQuery", AnswerCallbackQuery(callbackQueryID: id, text: text.map { String($0.prefix(200)) }))
    }

    /// `editMessageReplyMarkup`: replaces the buttons under a message (nil removes them: a tapped approval
    /// shows no buttons any more).
    public func editMessageReplyMarkup(chatID: Int64, messageID: Int64, keyboard: TelegramInlineKeyboard? = nil)
        async throws(ChannelError)
    {
        let _: EditResult = try await call(
            "editMessageReplyMarkup", EditReplyMarkup(chatID: chatID, messageID: messageID, replyMarkup: keyboard))
    }

    /// `setWebhook`: Telegram POSTs updates to `url` with the secret of ``TelegramSettings/webhookSecret`` in
    /// `X-Telegram-Bot-Api-Secret-Token`.
    public func setWebhook(url: String, dropPendingUpdates: Bool = false) async throws(ChannelError) {
        let secret = try TelegramWebhook.secretToken(settings, vault: vault)
        let token = secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        let _: Bool = try await call(
            "setWebhook",
            SetWebhook(
                url: url, secretToken: token, allowedUpdates: Self.allowedUpdates,
                dropPendingUpdates: dropPendingUpdates))
    }

    /// `deleteWebhook`: back to `getUpdates` (Telegram refuses `getUpdates` with 409 while a webhook is set).
    /// Pending updates are kept unless `dropPendingUpdates`.
    public func deleteWebhook(dropPendingUpdates: Bool = false) async throws(ChannelError) {
        let _: Bool = try await call("deleteWebhook", DeleteWebhook(dropPendingUpdates: dropPendingUpdates))
    }

    /// `getWebhookInfo`: the webhook Telegram has on record (its URL, empty when none; never the secret).
    public func getWebhookInfo() async throws(ChannelError) -> TelegramWebhookInfo {
        try await call("getWebhookInfo", NoParameters())
    }
}

// MARK: The exchange

extension TelegramBot {
    /// What one attempt ended with, when it did not return a result.
    struct Failure: Error {
        enum Retry {
            case never
            case after(Duration)
            case backoff
        }
        var error: ChannelError
        var retry: Retry
    }

    /// Calls `method` with `parameters`, retrying as the type says, and returns its `result`.
    func call<Parameters: Encodable & Sendable, Result: Decodable & Sendable>(
        _ method: String, _ parameters: Parameters, longPoll: Int = 0
    ) async throws(ChannelError) -> Result {
        let token = try botToken()
        let body: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            body = Array(try encoder.encode(parameters))
        } catch {
            throw ChannelError(.invalidInput, "the parameters of Telegram's \(method) cannot be encoded")
        }
        var delay = limits.firstRetryDelay
        for attempt in 1...max(1, limits.attempts) {
            let failure: Failure
            do {
                return try await attemptOnce(method, body: body, token: token, longPoll: longPoll)
            } catch {
                failure = error
            }
            // Shutdown closed the connection (a held long poll ends at once): not a failure to retry.
            if Task.isCancelled {
                throw ChannelError(.deliveryFailed, "Telegram's \(method) was cancelled: Moat is stopping")
            }
            let wait: Duration?
            switch failure.retry {
            case .never: wait = nil
            case .after(let seconds): wait = seconds <= limits.maximumRetryAfter ? seconds : nil
            case .backoff: wait = Self.jittered(delay)
            }
            guard let wait, attempt < limits.attempts else { throw Self.scrubbed(failure.error, token: token) }
            do {
                try await sleep(wait)
            } catch {
                throw ChannelError(.deliveryFailed, "Telegram's \(method) was stopped while waiting to try again")
            }
            if case .backoff = failure.retry { delay = min(delay * 2, limits.maximumRetryDelay) }
        }
        throw ChannelError(.deliveryFailed, "Telegram's \(method) failed")  // not reached: the loop returns or throws
    }

    /// Whether a request to `method` may be sent again after a connection broke mid-exchange.
    static func isRepeatable(_ method: String) -> Bool { method != "sendMessage" }

    /// A wait between half of `delay` and all of it, so many clients after one outage do not retry in step.
    static func jittered(_ delay: Duration) -> Duration {
        let milliseconds = max(
            1, Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000))
        return .milliseconds(Int.random(in: (milliseconds / 2)...milliseconds))
    }

    /// `error` with every occurrence of the token replaced: whatever text reached it (a server's
    /// description, a transport message), the token does not leave this type.
    static func scrubbed(_ error: ChannelError, token: String) -> ChannelError {
        let message = scrub(error.message, token: token)
        return message == error.message ? error : ChannelError(error.code, message)
    }

    /// `text` without the token, nor its secret part after the colon (which stays whole when a proxy
    /// percent-encodes the colon).
    static func scrub(_ text: String, token: String) -> String {
        let secret = token.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
        var text = text
        for value in [token, secret] where value.utf8.count >= 20 && text.contains(value) {
            text = text.replacingOccurrences(of: value, with: "[bot token]")
        }
        return text
    }

    func attemptOnce<Result: Decodable & Sendable>(
        _ method: String, body: [UInt8], token: String, longPoll: Int
    ) async throws(Failure) -> Result {
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        guard case .success(let url) = FetchURL.parse(base + "/bot" + token + "/" + method) else {
            throw Failure(
                error: ChannelError(.configuration, "channels.telegram.base_url is not a usable URL"), retry: .never)
        }
        let target: CheckedURL
        do {
            target = try await CheckedURL.ownerConfigured(url, resolver: resolver)
        } catch {
            let refused = error.code == .urlRefused
            throw Failure(
                error: ChannelError(
                    refused ? .configuration : .deliveryFailed,
                    "Telegram's \(method) cannot reach \(url.origin): \(error.message)"),
                retry: refused ? .never : .backoff)
        }
        var streamLimits = PinnedHTTPTransport.StreamLimits()
        streamLimits.connectTimeout = SignedCallback.timeAmount(limits.connectTimeout)
        streamLimits.firstByteTimeout = SignedCallback.timeAmount(limits.requestTimeout + .seconds(longPoll))
        streamLimits.idleTimeout = SignedCallback.timeAmount(limits.requestTimeout)
        streamLimits.totalTimeout = SignedCallback.timeAmount(limits.requestTimeout + .seconds(longPoll))
        streamLimits.maximumBodyBytes = limits.maximumResponseBytes
        let answer: (status: Int, body: [UInt8])
        do {
            answer = try await transport.stream(
                target, method: "POST", headers: [("Content-Type", "application/json")], body: body,
                limits: streamLimits
            ) { response in
                var bytes: [UInt8] = []
                for try await chunk in response.body { bytes += chunk }
                return (response.status, bytes)
            }
        } catch {
            // The connection broke: when it was made, Telegram may have taken the request. A sendMessage is
            // then not sent again (the reply would show twice); the other methods may be repeated.
            let connected = (error as? NetError)?.code != .connectFailed
            let detail = (error as? NetError).map { ": " + $0.message } ?? ""
            throw Failure(
                error: ChannelError(.deliveryFailed, "Telegram's \(method) at \(url.origin) failed\(detail)"),
                retry: connected && !Self.isRepeatable(method) ? .never : .backoff)
        }
        return try read(answer, method: method, origin: url.origin, token: token)
    }

    /// The result of an answer, or the failure it reports. Telegram's description is scrubbed of the token
    /// before it is cut to length (a cut token would no longer be found by ``scrubbed(_:token:)``).
    func read<Result: Decodable>(
        _ answer: (status: Int, body: [UInt8]), method: String, origin: String, token: String
    ) throws(Failure) -> Result {
        let envelope: TelegramEnvelope<Result>
        do {
            envelope = try JSONDecoder().decode(TelegramEnvelope<Result>.self, from: Data(answer.body))
        } catch {
            let server = (500...599).contains(answer.status)
            throw Failure(
                error: ChannelError(
                    .deliveryFailed,
                    server
                        ? "\(origin) failed (HTTP \(answer.status)) on \(method)"
                        : "\(origin) answered \(method) with something that is not the Bot API's format (HTTP \(answer.status))"
                ),
                retry: server ? .backoff : .never)
        }
        switch envelope.outcome {
        case .success(let result):
            return result
        case .failure(let code, let description, let parameters):
            throw failure(
                code: code, description: Self.scrub(description, token: token), parameters: parameters,
                method: method, origin: origin)
        }
    }

    func failure(
        code: Int, description: String, parameters: TelegramResponseParameters?, method: String, origin: String
    )
        -> Failure
    {
        let said = PrintableText.excerpt(description, limit: 200)
        switch code {
        case 401, 404:
            return Failure(
                error: ChannelError(
                    .configuration,
                    "Telegram refused the bot token in vault secret \(settings.tokenSecret) (HTTP \(code)): check the token "
                        + "@BotFather gave you and store it again (`moat vault rm \(settings.tokenSecret)`, then "
                        + "`moat vault add \(settings.tokenSecret)`)"),
                retry: .never)
        case 429:
            let seconds = max(1, parameters?.retryAfter ?? 1)
            return Failure(
                error: ChannelError(
                    .busy, "Telegram is limiting \(method) (HTTP 429): it asks to wait \(seconds) s before the next try"
                ),
                retry: .after(.seconds(seconds)))
        case 409:
            return Failure(error: Self.conflict(method: method, description: description), retry: .never)
        case 403:
            return Failure(
                error: ChannelError(
                    .deliveryFailed,
                    "Telegram refused \(method) (HTTP 403, \(said)): the user blocked the bot or left the chat"),
                retry: .never)
        case 500...599:
            return Failure(
                error: ChannelError(.deliveryFailed, "\(origin) failed (HTTP \(code)) on \(method): \(said)"),
                retry: .backoff)
        default:
            return Failure(
                error: ChannelError(.invalidInput, "Telegram refused \(method) (HTTP \(code)): \(said)"), retry: .never)
        }
    }

    /// A 409: someone else takes this bot's updates. Telegram's description says who (a webhook, or another
    /// `getUpdates`), and the fix differs.
    static func conflict(method: String, description: String) -> ChannelError {
        // Short enough to reach the log whole (the router cuts a failure at 300 characters).
        let lowered = description.lowercased()
        if lowered.contains("webhook") {
            return ChannelError(
                .configuration,
                "Telegram refused \(method) (HTTP 409): a webhook is set for this bot, by another program with its "
                    + "token since Moat removed it at start; stop that program, or set channels.telegram.mode: webhook")
        }
        if lowered.contains("getupdates") {
            return ChannelError(
                .configuration,
                "Telegram refused \(method) (HTTP 409): another program is polling this bot with the same token "
                    + "(a second moat serve?); only one may take its updates: stop the other one")
        }
        return ChannelError(
            .configuration,
            "Telegram refused \(method) (HTTP 409, \(PrintableText.excerpt(description, limit: 120))): another "
                + "program takes this bot's updates; stop it")
    }

    /// The token from the vault, checked to be a bot token.
    func botToken() throws(ChannelError) -> String {
        let secret = settings.tokenSecret
        let value: SecretBytes?
        do {
            value = try vault.value(named: secret)
        } catch {
            throw ChannelError(
                .configuration, "Telegram's bot token cannot be read from vault secret \(secret): \(error.message)")
        }
        guard let value, !value.isEmpty else {
            throw ChannelError(
                .configuration,
                "the Telegram bot token belongs in vault secret \(secret), which does not exist: add the token @BotFather "
                    + "gave you with `moat vault add \(secret)`")
        }
        let token = value.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        guard Self.isBotToken(token) else {
            throw ChannelError(
                .configuration,
                "vault secret \(secret) does not hold a Telegram bot token (digits, a colon, then letters, digits, _ and -): "
                    + "store the token alone with `moat vault add \(secret)`")
        }
        return token
    }

    static func isBotToken(_ token: String) -> Bool {
        let parts = token.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, (1...20).contains(parts[0].utf8.count), (20...128).contains(parts[1].utf8.count) else {
            return false
        }
        return parts[0].utf8.allSatisfy { (0x30...0x39).contains($0) }
            && parts[1].utf8.allSatisfy(TelegramText.isTokenByte)
    }
}

// MARK: Parameters (the API's names)

struct NoParameters: Encodable, Sendable {}

struct GetUpdates: Encodable, Sendable {
    let offset: Int64?
    let timeout: Int
    let allowedUpdates: [String]

    enum CodingKeys: String, CodingKey {
        case offset, timeout
        case allowedUpdates = "allowed_updates"
    }
}

struct SendMessage: Encodable, Sendable {
    struct LinkPreview: Encodable, Sendable {
        let isDisabled = true
        enum CodingKeys: String, CodingKey { case isDisabled = "is_disabled" }
    }
    let chatID: Int64
    let text: String
    let replyMarkup: TelegramInlineKeyboard?
    let linkPreviewOptions = LinkPreview()

    enum CodingKeys: String, CodingKey {
        case chatID = "chat_id"
        case text
        case replyMarkup = "reply_markup"
        case linkPreviewOptions = "link_preview_options"
    }
}

struct AnswerCallbackQuery: Encodable, Sendable {
    let callbackQueryID: String
    let text: String?

    enum CodingKeys: String, CodingKey {
        case callbackQueryID = "callback_query_id"
        case text
    }
}

struct EditReplyMarkup: Encodable, Sendable {
    let chatID: Int64
    let messageID: Int64
    let replyMarkup: TelegramInlineKeyboard?

    enum CodingKeys: String, CodingKey {
        case chatID = "chat_id"
        case messageID = "message_id"
        case replyMarkup = "reply_markup"
    }
}

struct SetWebhook: Encodable, Sendable {
    let url: String
    let secretToken: String
    let allowedUpdates: [String]
    let dropPendingUpdates: Bool

    enum CodingKeys: String, CodingKey {
        case url
        case secretToken = "secret_token"
        case allowedUpdates = "allowed_updates"
        case dropPendingUpdates = "drop_pending_updates"
    }
}

struct DeleteWebhook: Encodable, Sendable {
    let dropPendingUpdates: Bool

    enum CodingKeys: String, CodingKey { case dropPendingUpdates = "drop_pending_updates" }
}

/// `editMessageReplyMarkup`'s result: the edited message, or `true` for an inline-mode message.
enum EditResult: Decodable, Sendable {
    case message(TelegramMessage)
    case done

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self), flag {
            self = .done
        } else {
            self = .message(try container.decode(TelegramMessage.self))
        }
    }
}
