import Foundation
import MoatCore
import MoatTestSupport
import MoatVault
import Synchronization
import Testing

@testable import MoatChannels

/// The Telegram client against the fake Bot API on loopback: long polling with a stored offset, sending
/// (split, with buttons), button taps, the failure paths (429, 5xx, a wrong token), and the token kept out
/// of every error.
@Suite(.promptScheduling) struct TelegramBotTests {
    static let token = "123456789:AAH-fake_token-for-moat-tests-0123456789"
    static let ada = FakeTelegramServer.User(id: 4242, firstName: "Ada", username: "ada")

    /// The waits the client asked for, instead of sleeping.
    final class Waits: Sendable {
        let recorded = Mutex<[Duration]>([])
        var all: [Duration] { recorded.withLock { $0 } }
        func sleep(_ duration: Duration) { recorded.withLock { $0.append(duration) } }
    }

    /// A bot whose vault holds `storedToken` in TELEGRAM_BOT_TOKEN, talking to `server`.
    struct Fixture {
        let directory = TemporaryDirectory("moat-telegram")
        let vault: UnlockedVault
        let bot: TelegramBot
        let waits = Waits()

        init(
            server: FakeTelegramServer, storedToken: String = TelegramBotTests.token,
            baseURL: String? = nil, webhookSecret: String? = nil, attempts: Int = 5
        ) throws {
            vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: directory.path))
            var bytes = Array(storedToken.utf8)
            try vault.add("TELEGRAM_BOT_TOKEN", value: SecretBytes(wiping: &bytes), policy: .none)
            var settings = TelegramSettings(tokenSecret: "TELEGRAM_BOT_TOKEN", baseURL: baseURL ?? server.baseURL)
            if let webhookSecret {
                var secret = Array(webhookSecret.utf8)
                try vault.add("TELEGRAM_WEBHOOK_SECRET", value: SecretBytes(wiping: &secret), policy: .none)
                settings.webhookSecret = "TELEGRAM_WEBHOOK_SECRET"
            }
            var limits = TelegramBot.Limits()
            limits.attempts = attempts
            let waits = waits
            bot = try TelegramBot(settings: settings, vault: vault, limits: limits, sleep: { waits.sleep($0) })
        }
    }

    /// The offset store the channel framework keeps in moat.db, here in memory.
    final class Offsets: Sendable {
        let value = Mutex<Int64?>(nil)
        var cursor: TelegramPoller.Cursor {
            TelegramPoller.Cursor(
                load: { self.value.withLock { $0 } }, store: { offset in self.value.withLock { $0 = offset } })
        }
    }

    static func failure(_ body: () async throws(ChannelError) -> Void) async -> ChannelError? {
        do {
            try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test("getMe and a private text message arrive with the API's field names, and the message is read as one")
    func receivesAMessage() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        let me = try await fixture.bot.getMe()
        #expect(me.id == server.botID && me.isBot && me.username == server.botUsername)
        let id = server.sendPrivateMessage(from: Self.ada, text: "Is the garage door closed? ✓")
        let updates = try await fixture.bot.getUpdates(offset: nil, timeout: 0)
        #expect(updates.map(\.updateID) == [id])
        guard case .message(let message) = TelegramInbound.classify(try #require(updates.first)) else {
            Issue.record("a private text message was not read as a message")
            return
        }
        #expect(message.chatID == Self.ada.id && message.sender.id == Self.ada.id && message.sender.username == "ada")
        #expect(message.text == "Is the garage door closed? ✓")
        let request = try #require(server.calls("getUpdates").last)
        #expect(request.parameters["allowed_updates"] == #"["message","callback_query"]"#)
    }

    @Test("a long poll is held until an update arrives, and answers with it")
    func longPollIsHeld() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        async let polled = fixture.bot.getUpdates(offset: nil, timeout: 40)
        // Wait (bounded) until the fake holds the poll; only then is there something to send.
        for _ in 0..<400 where server.calls("getUpdates").isEmpty { try await Task.sleep(for: .milliseconds(25)) }
        try #require(server.calls("getUpdates").count == 1)
        let id = server.sendPrivateMessage(from: Self.ada, text: "hello while you wait")
        let updates = try await polled
        #expect(updates.map(\.updateID) == [id])
        #expect(server.calls("getUpdates").count == 1)
    }

    @Test("a restart with the stored offset neither repeats nor loses an update")
    func offsetSurvivesRestart() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        let offsets = Offsets()
        let ids = (1...3).map { server.sendPrivateMessage(from: Self.ada, text: "message \($0)") }
        let taken = Mutex<[String]>([])
        // The first run takes two updates, then dies while taking the third (its handler throws).
        let first = TelegramPoller(bot: fixture.bot, cursor: offsets.cursor, timeout: 0) { inbound in
            guard taken.withLock({ $0.count }) < 2 else { throw CancellationError() }
            taken.withLock { $0.append(inbound.idempotencyKey) }
        }
        let stopped = await Self.failure { () async throws(ChannelError) in _ = try await first.pollOnce() }
        #expect(stopped?.code == .deliveryFailed)
        #expect(offsets.value.withLock { $0 } == ids[1] + 1)
        // The restarted poller (a new one, the same stored offset) takes the third and a fourth, nothing twice.
        let second = TelegramPoller(bot: fixture.bot, cursor: offsets.cursor, timeout: 0) { inbound in
            taken.withLock { $0.append(inbound.idempotencyKey) }
        }
        #expect(try await second.pollOnce() == 1)
        let fourth = server.sendPrivateMessage(from: Self.ada, text: "message 4")
        #expect(try await second.pollOnce() == 1)
        #expect(try await second.pollOnce() == 0)
        #expect(taken.withLock { $0 } == (ids + [fourth]).map { "telegram:\($0)" })
        // Telegram forgot exactly the confirmed updates: the next getUpdates sent offset fourth + 1.
        #expect(server.calls("getUpdates").last?.parameters["offset"] == String(fourth + 1))
        #expect(server.pendingUpdateIDs.isEmpty)
    }

    @Test("an update whose offset could not be stored comes again with the same idempotency key")
    func unstoredOffsetRepeats() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        let id = server.sendPrivateMessage(from: Self.ada, text: "once")
        let stored = Mutex<Int64?>(nil)
        let failing = TelegramPoller.Cursor(load: { stored.withLock { $0 } }, store: { _ in throw CancellationError() })
        let keys = Mutex<[String]>([])
        let poller = TelegramPoller(bot: fixture.bot, cursor: failing, timeout: 0) { inbound in
            keys.withLock { $0.append(inbound.idempotencyKey) }
        }
        #expect(await Self.failure { () async throws(ChannelError) in _ = try await poller.pollOnce() } != nil)
        let working = TelegramPoller.Cursor(
            load: { stored.withLock { $0 } }, store: { offset in stored.withLock { $0 = offset } })
        let again = TelegramPoller(bot: fixture.bot, cursor: working, timeout: 0) { inbound in
            keys.withLock { $0.append(inbound.idempotencyKey) }
        }
        #expect(try await again.pollOnce() == 1)
        #expect(keys.withLock { $0 } == ["telegram:\(id)", "telegram:\(id)"])
    }

    @Test("a reply longer than 4096 UTF-16 units goes out in pieces the API accepts, the buttons under the last")
    func longReplyIsSplit() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        server.sendPrivateMessage(from: Self.ada, text: "hi")
        let paragraph = String(repeating: "word ", count: 700) + "\n"  // 3501 units
        let text = paragraph + paragraph + "https://example.org/a-link-that-must-stay-whole " + paragraph
        let keyboard = try TelegramApprovalButtons.keyboard(approvalID: "k7q2mxd4")
        let sent = try await fixture.bot.sendMessage(chatID: Self.ada.id, text: text, keyboard: keyboard)
        let calls = server.calls("sendMessage")
        #expect(sent.count == calls.count && calls.count == 3)
        #expect(calls.allSatisfy { ($0.parameters["text"]?.utf16.count ?? 0) <= 4096 })
        #expect(
            calls.contains {
                $0.parameters["text"]?.contains("https://example.org/a-link-that-must-stay-whole") == true
            })
        #expect(calls.dropLast().allSatisfy { $0.parameters["reply_markup"] == nil })
        let markup = try #require(calls.last?.parameters["reply_markup"])
        #expect(
            markup.contains(#""callback_data":"approve:k7q2mxd4""#)
                && markup.contains(#""callback_data":"deny:k7q2mxd4""#))
        #expect(calls.allSatisfy { $0.parameters["link_preview_options"] == #"{"is_disabled":true}"# })
        #expect(calls.allSatisfy { $0.parameters["parse_mode"] == nil })
        let words = calls.compactMap { $0.parameters["text"] }.joined(separator: " ").split(
            whereSeparator: \.isWhitespace)
        #expect(words == text.split(whereSeparator: \.isWhitespace))
    }

    @Test("splitting never cuts a surrogate pair or an emoji, prefers line breaks, then spaces")
    func splitting() {
        let emoji = String(repeating: "😀", count: 3000)  // 6000 units, no space: cut by characters
        let pieces = TelegramText.split(emoji)
        #expect(pieces.map(\.utf16.count) == [4096, 1904])
        #expect(pieces.joined() == emoji)
        let family = String(repeating: "👨‍👩‍👧", count: 600)  // 8 units a character
        #expect(TelegramText.split(family).joined() == family)
        #expect(TelegramText.split(family).allSatisfy { $0.utf16.count <= 4096 && $0.utf16.count % 8 == 0 })
        let lines = String(repeating: "a", count: 4000) + "\n" + String(repeating: "b b ", count: 50)
        #expect(
            TelegramText.split(lines) == [String(repeating: "a", count: 4000), String(repeating: "b b ", count: 50)])
        // A link (an entity Telegram finds by itself) across the limit moves whole to the next piece.
        let url = "https://example.org/a/path/straddling/the/limit"
        let straddling = String(repeating: "a ", count: 2040) + url  // the link starts at unit 4080
        let around = TelegramText.split(straddling)
        #expect(around.count == 2 && around.last == url && around[0].utf16.count == 4079)
        #expect(TelegramText.split("one two three", limit: 8) == ["one two", "three"])
        #expect(TelegramText.split("  \n  ").isEmpty)
        #expect(TelegramText.split("short") == ["short"])
    }

    @Test("a 429 waits exactly retry_after seconds and tries again; a wait over the limit fails at once")
    func rateLimited() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        server.sendPrivateMessage(from: Self.ada, text: "hi")
        server.failNext(.tooManyRequests(retryAfter: 7), method: "sendMessage")
        let sent = try await fixture.bot.sendMessage(chatID: Self.ada.id, text: "after the wait")
        #expect(sent.count == 1)
        #expect(fixture.waits.all == [.seconds(7)])
        #expect(server.calls("sendMessage").count == 2)
        server.failNext(.tooManyRequests(retryAfter: 3600), method: "sendMessage")
        let refused = await Self.failure { () async throws(ChannelError) in
            _ = try await fixture.bot.sendMessage(chatID: Self.ada.id, text: "too long a wait")
        }
        #expect(refused?.code == .busy)
        #expect(refused?.message.contains("3600 s") == true)
        #expect(fixture.waits.all == [.seconds(7)])
    }

    @Test("5xx answers and an HTML 502 are retried after growing, jittered waits; the attempts are bounded")
    func serverFailures() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server, attempts: 3)
        server.failNext(.serverError(500))
        server.failNext(.badGatewayPage)
        let me = try await fixture.bot.getMe()
        #expect(me.id == server.botID)
        let waits = fixture.waits.all
        #expect(waits.count == 2)
        #expect(waits.count == 2 && (Duration.milliseconds(250)...Duration.milliseconds(500)).contains(waits[0]))
        #expect(waits.count == 2 && (Duration.milliseconds(500)...Duration.seconds(1)).contains(waits[1]))
        for _ in 0..<3 { server.failNext(.serverError(502)) }
        let failed = await Self.failure { () async throws(ChannelError) in _ = try await fixture.bot.getMe() }
        #expect(failed?.code == .deliveryFailed)
        #expect(server.calls("getMe").count == 6)
    }

    @Test("a wrong token is a configuration error naming the secret, and no error text holds the token")
    func wrongToken() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let wrong = "987654321:AAE-another_token-that-is-wrong-987654"
        let fixture = try Fixture(server: server, storedToken: wrong)
        let refused = await Self.failure { () async throws(ChannelError) in _ = try await fixture.bot.getMe() }
        let error = try #require(refused)
        #expect(error.code == .configuration)
        #expect(error.message.contains("TELEGRAM_BOT_TOKEN") && error.message.contains("@BotFather"))
        #expect(!error.message.contains(wrong) && !error.message.contains("AAE-another"))
        #expect(!error.message.contains("/bot"))
        #expect(fixture.waits.all.isEmpty)
        // A base URL with a path the API does not have answers 404: the same advice.
        let elsewhere = try Fixture(server: server, baseURL: server.baseURL + "/nothing-here")
        let notFound = await Self.failure { () async throws(ChannelError) in _ = try await elsewhere.bot.getMe() }
        #expect(notFound?.code == .configuration && notFound?.message.contains(Self.token) == false)
        // Nothing listening: the transport's error names the origin, never the path with the token.
        await server.stop()
        let gone = try Fixture(server: server, attempts: 2)
        let unreachable = await Self.failure { () async throws(ChannelError) in _ = try await gone.bot.getMe() }
        let text = try #require(unreachable).message
        #expect(text.contains("127.0.0.1:\(server.port)"))
        #expect(!text.contains(Self.token) && !text.contains("/bot"))
    }

    @Test("a vault value that is not a bot token is refused before any request, and is not echoed")
    func malformedToken() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        for stored in ["not a token", "123:short", Self.token + "/../getMe", Self.token + "\n"] {
            let fixture = try Fixture(server: server, storedToken: stored)
            let refused = await Self.failure { () async throws(ChannelError) in _ = try await fixture.bot.getMe() }
            #expect(refused?.code == .configuration)
            #expect(refused?.message.contains(stored) == false)
        }
        #expect(server.calls.isEmpty)
        #expect(
            TelegramBot.scrubbed(ChannelError(.deliveryFailed, "x \(Self.token) y"), token: Self.token).message
                == "x [bot token] y")
    }

    @Test("a button tap names its approval; it is answered once and its buttons are removed once")
    func buttonTap() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        let offsets = Offsets()
        let inbound = Mutex<[TelegramInbound]>([])
        let poller = TelegramPoller(bot: fixture.bot, cursor: offsets.cursor, timeout: 0) { event in
            inbound.withLock { $0.append(event) }
        }
        server.sendPrivateMessage(from: Self.ada, text: "delete the old logs")
        try await poller.pollOnce()
        let keyboard = try TelegramApprovalButtons.keyboard(approvalID: "k7q2mxd4")
        let request = try await fixture.bot.sendMessage(
            chatID: Self.ada.id, text: "Approve: shell `rm logs/*.old`?", keyboard: keyboard)
        let messageID = try #require(request.first).messageID
        let (_, queryID) = server.tap(by: Self.ada, messageID: messageID, data: "approve:k7q2mxd4")
        try await poller.pollOnce()
        guard case .buttonTap(let tap)? = inbound.withLock({ $0.last }) else {
            Issue.record("the tap was not read as a button tap")
            return
        }
        #expect(tap.queryID == queryID && tap.sender.id == Self.ada.id && tap.messageID == messageID)
        let parsed = try #require(TelegramApprovalButtons.parse(tap.data))
        #expect(parsed.choice == .approve && parsed.approvalID == "k7q2mxd4")
        try await fixture.bot.answerCallbackQuery(tap.queryID, text: "Approved")
        let again = await Self.failure { () async throws(ChannelError) in
            try await fixture.bot.answerCallbackQuery(tap.queryID)
        }
        #expect(again?.code == .invalidInput && again?.message.contains("query is too old") == true)
        try await fixture.bot.editMessageReplyMarkup(chatID: Self.ada.id, messageID: messageID)
        let twice = await Self.failure { () async throws(ChannelError) in
            try await fixture.bot.editMessageReplyMarkup(chatID: Self.ada.id, messageID: messageID)
        }
        #expect(twice?.message.contains("message is not modified") == true)
        #expect(server.calls("answerCallbackQuery").first?.parameters["callback_query_id"] == queryID)
    }

    @Test("group messages, edited messages, messages without text, bots and other kinds are ignored, saying why")
    func ignored() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        let group = server.sendGroupMessage(from: Self.ada, text: "@moat_test_bot hi from the group")
        let message = server.sendPrivateMessage(from: Self.ada, text: "original")
        let edited = server.editMessage(from: Self.ada, messageID: 1, text: "edited")
        let updates = try await fixture.bot.getUpdates(offset: nil, timeout: 0, allowedUpdates: [])
        let read = Dictionary(uniqueKeysWithValues: updates.map { ($0.updateID, TelegramInbound.classify($0)) })
        guard case .ignored(_, let groupReason)? = read[group], case .ignored(_, let editReason)? = read[edited] else {
            Issue.record("a group or edited message was not ignored")
            return
        }
        #expect(groupReason.contains("private chats only") && editReason.contains("edited"))
        guard case .message? = read[message] else {
            Issue.record("the private message was not read")
            return
        }
        let ada = TelegramUser(id: 4242, isBot: false, firstName: "Ada")
        let bot = TelegramUser(id: 99, isBot: true, firstName: "Other bot")
        let chat = TelegramChat(id: 4242, type: "private")
        let photo = TelegramUpdate(
            updateID: 1, kind: .message(TelegramMessage(messageID: 5, from: ada, chat: chat, date: 0, text: nil)))
        let fromBot = TelegramUpdate(
            updateID: 2, kind: .message(TelegramMessage(messageID: 6, from: bot, chat: chat, date: 0, text: "hi")))
        let inline = try JSONDecoder().decode(
            TelegramUpdate.self, from: Data(#"{"update_id":3,"inline_query":{"id":"1","query":"x"}}"#.utf8))
        let broken = try JSONDecoder().decode(
            TelegramUpdate.self, from: Data(#"{"update_id":4,"message":{"message_id":"not a number"}}"#.utf8))
        for update in [photo, fromBot, inline, broken] {
            guard case .ignored(let id, _) = TelegramInbound.classify(update) else {
                Issue.record("update \(update.updateID) was not ignored")
                continue
            }
            #expect(id == update.updateID)
        }
        #expect(inline.kind == .other("an update of kind inline_query"))
    }

    @Test("button data is at most 64 bytes, and only the exact form Moat makes parses")
    func buttonData() throws {
        #expect(try TelegramApprovalButtons.data(.deny, approvalID: "abc") == "deny:abc")
        let longest = String(repeating: "a", count: 48)
        #expect(try TelegramApprovalButtons.data(.approve, approvalID: longest).utf8.count <= 64)
        for bad in ["", String(repeating: "a", count: 49), "a:b", "ab c", "é", "a\n"] {
            #expect(throws: ChannelError.self) { try TelegramApprovalButtons.data(.approve, approvalID: bad) }
        }
        for data in [
            "approve:", "approve", "APPROVE:abc", "approve:abc:def", "grant:abc", "approve:ab c", ":abc",
            "approve:" + String(repeating: "a", count: 60),
        ] {
            #expect(TelegramApprovalButtons.parse(data) == nil)
        }
    }

    @Test(
        "setWebhook sends the vault's secret; polling is refused while a webhook is set, and works after deleteWebhook")
    func webhookSwitch() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let secret = "S3cr3t_webhook-token_0123456789abcdef"
        let fixture = try Fixture(server: server, webhookSecret: secret)
        try await fixture.bot.setWebhook(url: "https://moat.example.ts.net/hooks/telegram/updates")
        #expect(server.webhookURL == "https://moat.example.ts.net/hooks/telegram/updates")
        #expect(server.calls("setWebhook").first?.parameters["secret_token"] == secret)
        let conflict = await Self.failure { () async throws(ChannelError) in
            _ = try await fixture.bot.getUpdates(offset: nil, timeout: 0)
        }
        #expect(conflict?.code == .configuration && conflict?.message.contains("409") == true)
        try await fixture.bot.deleteWebhook()
        #expect(try await fixture.bot.getUpdates(offset: nil, timeout: 0).isEmpty)
    }

    @Test("channels.telegram: the token secret is required, webhook mode needs its URL and secret, values are checked")
    func settings() throws {
        func read(_ fields: [(String, String)]) throws(ConfigError) -> TelegramSettings? {
            let telegram = ConfigNode(
                .mapping(
                    fields.map {
                        (
                            ConfigNode(.scalar($0.0, plain: true), line: 3),
                            ConfigNode(.scalar($0.1, plain: true), line: 3)
                        )
                    }), line: 2)
            let node = ConfigNode(
                .mapping([(ConfigNode(.scalar("telegram", plain: true), line: 1), telegram)]), line: 1)
            var settings = ChannelsSettings()
            try settings.read(node, path: "channels")
            return settings.telegram
        }
        let plain = try read([("token_secret", "TELEGRAM_BOT_TOKEN")])
        #expect(plain?.tokenSecret == "TELEGRAM_BOT_TOKEN" && plain?.mode == .polling)
        #expect(plain?.baseURL == "https://api.telegram.org" && plain?.pollTimeout == 30)
        let hook = try read([
            ("token_secret", "T"), ("mode", "webhook"),
            ("webhook_url", "https://moat.example.ts.net/hooks/telegram/updates"),
            ("webhook_secret", "TELEGRAM_WEBHOOK_SECRET"), ("poll_timeout", "10"),
            ("base_url", "http://127.0.0.1:8081"),
        ])
        #expect(hook?.mode == .webhook && hook?.webhookSecret == "TELEGRAM_WEBHOOK_SECRET" && hook?.pollTimeout == 10)
        #expect(hook?.baseURL == "http://127.0.0.1:8081")
        for fields in [
            [], [("token_secret", "lower")], [("token_secret", "MOAT_AUDIT_KEY")],
            [("token_secret", "T"), ("mode", "push")],
            [("token_secret", "T"), ("mode", "webhook")],
            [
                ("token_secret", "T"), ("mode", "webhook"), ("webhook_url", "http://x.example/"),
                ("webhook_secret", "W"),
            ],
            [("token_secret", "T"), ("base_url", "https://user:pw@api.telegram.org")],
            [("token_secret", "T"), ("base_url", "ftp://api.telegram.org")],
            [("token_secret", "T"), ("poll_timeout", "0")],
            [("token_secret", "T"), ("poll_timeout", "51")], [("token_secret", "T"), ("webhook_secret", "T")],
            [("token_secret", "T"), ("token", "123:abc")],
        ] as [[(String, String)]] {
            #expect(throws: ConfigError.self, "\(fields)") { try read(fields) }
        }
    }

    @Test("the webhook secret header is checked first: missing, empty, flipped, cut and extended ones are refused")
    func webhookSecretHeader() throws {
        let text = "S3cr3t_webhook-token_0123456789abcdef"
        var bytes = Array(text.utf8)
        let secret = SecretBytes(wiping: &bytes)
        let update = Array(
            #"{"update_id":5,"message":{"message_id":1,"date":0,"chat":{"id":1,"type":"private"}}}"#.utf8)
        #expect(try TelegramWebhook.verify(header: text, body: update, secret: secret).updateID == 5)
        var flipped = Array(text.utf8)
        flipped[flipped.count - 1] ^= 0x01
        for header in [
            nil, "", String(decoding: flipped, as: UTF8.self), String(text.dropLast()), text + "0", text.uppercased(),
        ] {
            #expect(throws: ChannelError.self) {
                try TelegramWebhook.verify(header: header, body: update, secret: secret)
            }
            // Refused for the header even when the body is not an update: the body is never read.
            let refused = #expect(throws: ChannelError.self) {
                try TelegramWebhook.verify(header: header, body: Array("not json".utf8), secret: secret)
            }
            #expect(refused?.code == .unauthorized && refused?.message.contains(text) == false)
        }
        let badBody = #expect(throws: ChannelError.self) {
            try TelegramWebhook.verify(header: text, body: Array("not json".utf8), secret: secret)
        }
        #expect(badBody?.code == .invalidInput)
    }

    @Test("a connection cut mid-answer repeats getMe but never sends a message twice")
    func cutConnection() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        server.sendPrivateMessage(from: Self.ada, text: "hi")
        server.failNext(.cutConnection, method: "getMe")
        #expect(try await fixture.bot.getMe().id == server.botID)
        #expect(server.calls("getMe").count == 2)
        server.failNext(.cutConnection, method: "sendMessage")
        let cut = await Self.failure { () async throws(ChannelError) in
            _ = try await fixture.bot.sendMessage(chatID: Self.ada.id, text: "only once")
        }
        #expect(cut?.code == .deliveryFailed && cut?.message.contains(Self.token) == false)
        #expect(server.calls("sendMessage").count == 1)
    }

    @Test("the polling loop reports each failure and waits longer each time, then goes on taking updates")
    func pollingLoop() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server, attempts: 1)
        let offsets = Offsets()
        let reports = Mutex<[String]>([])
        let taken = Mutex<[String]>([])
        for _ in 0..<3 { server.failNext(.serverError(500), method: "getUpdates") }
        let id = server.sendPrivateMessage(from: Self.ada, text: "after the outage")
        let poller = TelegramPoller(bot: fixture.bot, cursor: offsets.cursor, timeout: 0) { inbound in
            taken.withLock { $0.append(inbound.idempotencyKey) }
        }
        let loop = Task { await poller.run { error in reports.withLock { $0.append(error.message) } } }
        for _ in 0..<2400 where taken.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(25)) }
        loop.cancel()
        await loop.value
        #expect(taken.withLock { $0 }.first == "telegram:\(id)")
        #expect(reports.withLock { $0 }.count == 3)
        let waits = fixture.waits.all
        try #require(waits.count == 3)
        #expect((Duration.milliseconds(500)...Duration.seconds(1)).contains(waits[0]))
        #expect((Duration.seconds(1)...Duration.seconds(2)).contains(waits[1]))
        #expect((Duration.seconds(2)...Duration.seconds(4)).contains(waits[2]))
    }

    @Test("a held poll ends empty at its timeout, and a second poll ends the first with 409 as Telegram does")
    func pollEnds() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server, attempts: 1)
        #expect(try await fixture.bot.getUpdates(offset: nil, timeout: 1).isEmpty)
        let first = Task { () async -> ChannelError? in
            await Self.failure { () async throws(ChannelError) in
                _ = try await fixture.bot.getUpdates(offset: nil, timeout: 40)
            }
        }
        for _ in 0..<400 where server.calls("getUpdates").count < 2 { try await Task.sleep(for: .milliseconds(25)) }
        try #require(server.calls("getUpdates").count == 2)
        #expect(try await fixture.bot.getUpdates(offset: nil, timeout: 0).isEmpty)
        let ended = await first.value
        #expect(ended?.code == .configuration && ended?.message.contains("409") == true)
        #expect(ended?.message.contains("another program is polling this bot") == true)
        // A webhook set: 409 too, with the other cause and its fix; deleteWebhook ends it.
        server.setWebhookElsewhere("https://elsewhere.example.test/hook")
        let refused = await Self.failure { () async throws(ChannelError) in
            _ = try await fixture.bot.getUpdates(offset: nil, timeout: 0)
        }
        #expect(refused?.code == .configuration && refused?.message.contains("a webhook is set for this bot") == true)
        #expect(refused?.message.contains("channels.telegram.mode: webhook") == true)
        try await fixture.bot.deleteWebhook()
        #expect(try await fixture.bot.getUpdates(offset: nil, timeout: 0).isEmpty)
    }

    @Test("every method waits out a 429's retry_after and tries again, not only getUpdates")
    func rateLimitedEverywhere() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server, webhookSecret: "whsec_0123456789abcdefghijklmnopqrstuv")
        server.sendPrivateMessage(from: Self.ada, text: "hi")
        let bot = fixture.bot
        let sent = try await bot.sendMessage(
            chatID: Self.ada.id, text: "with a button", keyboard: .init(rows: [[.init(text: "A", callbackData: "a")]]))
        let messageID = try #require(sent.first).messageID
        let (_, queryID) = server.tap(by: Self.ada, messageID: messageID, data: "a")
        let calls: [(method: String, call: @Sendable () async throws(ChannelError) -> Void)] = [
            ("getMe", { () async throws(ChannelError) in _ = try await bot.getMe() }),
            ("getUpdates", { () async throws(ChannelError) in _ = try await bot.getUpdates(offset: nil, timeout: 0) }),
            (
                "sendMessage",
                { () async throws(ChannelError) in _ = try await bot.sendMessage(chatID: Self.ada.id, text: "again") }
            ),
            (
                "answerCallbackQuery",
                { () async throws(ChannelError) in try await bot.answerCallbackQuery(queryID, text: "ok") }
            ),
            (
                "editMessageReplyMarkup",
                { () async throws(ChannelError) in
                    try await bot.editMessageReplyMarkup(chatID: Self.ada.id, messageID: messageID)
                }
            ),
            (
                "setWebhook",
                { () async throws(ChannelError) in
                    try await bot.setWebhook(url: "https://moat.example.test/hooks/telegram/updates")
                }
            ),
            ("getWebhookInfo", { () async throws(ChannelError) in _ = try await bot.getWebhookInfo() }),
            ("deleteWebhook", { () async throws(ChannelError) in try await bot.deleteWebhook() }),
        ]
        for (index, (method, call)) in calls.enumerated() {
            server.failNext(.tooManyRequests(retryAfter: index + 2), method: method)
            let before = server.calls(method).count
            let failed = await Self.failure(call)
            #expect(failed == nil, "\(method): \(failed?.message ?? "")")
            #expect(server.calls(method).count == before + 2, "\(method)")
            #expect(fixture.waits.all.last == .seconds(index + 2), "\(method)")
        }
        #expect(fixture.waits.all == calls.indices.map { .seconds($0 + 2) })
    }

    @Test("webhook mode sets the webhook with the secret and checks Telegram holds that URL; another URL is refused")
    func webhookRegistered() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let secret = "whsec_0123456789abcdefghijklmnopqrstuv"
        let fixture = try Fixture(server: server, webhookSecret: secret)
        let url = "https://moat.example.test/hooks/telegram/updates"
        let reports = Mutex<[String]>([])
        let adapter = TelegramAdapter(
            bot: fixture.bot, settings: fixture.bot.settings, report: { line in reports.withLock { $0.append(line) } })
        server.setWebhookElsewhere(url, lastError: "Connection refused")
        try await adapter.registerWebhook(url)
        #expect(server.webhookURL == url)
        #expect(server.calls("setWebhook").last?.parameters["secret_token"] == secret)
        #expect(server.calls("getWebhookInfo").count == 1)
        #expect(reports.withLock { $0 }.contains { $0.contains("Connection refused") && $0.contains("webhook_url") })
        // Another program puts its own URL in between: refused, naming neither the token nor the secret.
        server.failNext(.webhookReplacedBy("https://attacker.example.test/steal"), method: "setWebhook")
        let replaced = await Self.failure { () async throws(ChannelError) in try await adapter.registerWebhook(url) }
        #expect(replaced?.code == .configuration && replaced?.message.contains("attacker.example.test") == true)
        #expect(replaced?.message.contains(secret) == false && replaced?.message.contains(Self.token) == false)
    }

    @Test("an error text quoting the request's path holds no bot token")
    func pathEchoed() async throws {
        let server = try await FakeTelegramServer.start(token: Self.token)
        defer { Task { await server.stop() } }
        let fixture = try Fixture(server: server)
        server.failNext(.echoPath, method: "getMe")
        let failed = await Self.failure { () async throws(ChannelError) in _ = try await fixture.bot.getMe() }
        let text = try #require(failed).message
        #expect(text.contains("no such method at /bot[bot token]/getMe"), "\(text)")
        let secretHalf = String(Self.token.split(separator: ":")[1])
        #expect(!text.contains(Self.token) && !text.contains(secretHalf))
        // A proxy that percent-encodes the colon still shows no secret part.
        #expect(
            TelegramBot.scrub("at /bot123456789%3A\(secretHalf)/getMe", token: Self.token)
                == "at /bot123456789%3A[bot token]/getMe")
    }
}
