import Foundation
import MoatTestSupport
import Testing

/// Telegram as a channel of the real `moat serve`, against the fake Bot API on loopback: pairing before
/// any model round, the offset in moat.db across a restart, and the bot token kept out of every log.
@Suite(.serialized) struct TelegramServeTests {
    static let owner = FakeTelegramServer.User(id: 111_000_111, firstName: "Olivia")
    static let alice = FakeTelegramServer.User(id: 222_000_222, firstName: "Alice")
    static let mallory = FakeTelegramServer.User(id: 333_000_333, firstName: "Mallory")

    /// A served home whose provider is `model` and whose bot is `telegram`, the token in the vault.
    static func home(
        model: ScriptedModelServer, telegram: FakeTelegramServer, token: String, extra: String = ""
    ) async throws -> TemporaryDirectory {
        try await ChannelServeHome.make(
            model: model,
            section: """

                channels:
                  telegram:
                    token_secret: TELEGRAM_BOT_TOKEN
                    base_url: \(telegram.baseURL)
                    poll_timeout: 1
                \(extra)
                """, secret: "TELEGRAM_BOT_TOKEN", value: token)
    }

    /// Waits (up to 60 s on a loaded machine) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<6000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// The `XXXX-XXXX` code in `text`.
    static func code(in text: String) -> String? {
        text.range(of: #"[0-9A-Z]{4}-[0-9A-Z]{4}"#, options: .regularExpression).map { String(text[$0]) }
    }

    static func texts(_ telegram: FakeTelegramServer, to user: FakeTelegramServer.User) -> [String] {
        telegram.sentMessages.filter { $0.chatID == user.id }.map(\.text)
    }

    @Test(
        "moat serve: a stranger gets a pairing code and no model round; once approved they are answered, across a restart once each"
    )
    func pairingAndRestart() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("Hello Alice."), .text("Second answer.")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let home = try await Self.home(model: model, telegram: telegram, token: telegram.token)
        var server = try await RunningServer.start(arguments: [], home: home.path)
        telegram.sendPrivateMessage(from: Self.alice, text: "hi, may I talk to your assistant?")
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 1 }
        let codeText = try #require(Self.texts(telegram, to: Self.alice).first)
        #expect(codeText.contains("pairing code"), "\(codeText)")
        #expect(model.requests.isEmpty)
        // A code that is not Alice's is refused; hers makes her a contact.
        let wrongCode = try await MoatBinary.run(["pairing", "approve", "ABCD-EFGH"], home: home.path)
        #expect(wrongCode.status != 0)
        let code = try #require(Self.code(in: codeText))
        let approved = try await MoatBinary.run(["pairing", "approve", code], home: home.path)
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(model.requests.isEmpty)
        telegram.sendPrivateMessage(from: Self.alice, text: "what's new?")
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 2 }
        #expect(Self.texts(telegram, to: Self.alice).last == "Hello Alice.")
        #expect(model.requests.count == 1)
        #expect(model.requests.first?.body.contains("may I talk") == false)
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty }
        var (status, log) = await server.stop()
        #expect(status == 0)
        // Written while Moat is down: answered once after the restart, and nothing earlier again.
        telegram.sendPrivateMessage(from: Self.alice, text: "still there?")
        server = try await RunningServer.start(arguments: [], home: home.path)
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 3 }
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty }
        let second = await server.stop()
        #expect(second.status == 0)
        log += second.log
        #expect(Self.texts(telegram, to: Self.alice) == [codeText, "Hello Alice.", "Second answer."])
        #expect(model.requests.count == 2)
        // The token is nowhere in the server's log or the audit log's tail, whole or its secret half.
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(audit.status == 0, "\(audit.stderr)")
        let secretHalf = String(telegram.token.split(separator: ":")[1])
        for text in [log, audit.stdout, audit.stderr] {
            #expect(!text.contains(secretHalf))
        }
        // The pairing code went to Alice and to `moat pairing list`, never into the server's log.
        #expect(!log.contains(code) && !log.contains(code.replacingOccurrences(of: "-", with: "")))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test(
        "moat serve: the owner binds their account; a held call's prompt has Approve/Deny; a stranger's tap is refused, the owner's runs it once"
    )
    func approvalFromThePhone() async throws {
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits for your approval."),
            .text("notes.txt says: groceries."),
        ])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let home = try await Self.home(model: model, telegram: telegram, token: telegram.token)
        // Binding: the code `moat channel bind telegram` shows, sent from the owner's own account.
        let (server, bindCode) = try await ChannelServeHome.servedForApprovals(home: home, channel: "telegram")
        telegram.sendPrivateMessage(from: Self.owner, text: bindCode)
        try await Self.eventually { Self.texts(telegram, to: Self.owner).count == 1 }
        #expect(Self.texts(telegram, to: Self.owner).first?.hasPrefix("This account is now the owner's") == true)
        // The owner asks; the call is held and the prompt comes with the two buttons.
        telegram.sendPrivateMessage(from: Self.owner, text: "what is in notes.txt?")
        try await Self.eventually { telegram.sentMessages.contains { $0.markup != nil } }
        try await Self.eventually { Self.texts(telegram, to: Self.owner).contains("It waits for your approval.") }
        let prompt = try #require(telegram.sentMessages.first { $0.markup != nil })
        #expect(prompt.chatID == Self.owner.id)
        let markup = try #require(prompt.markup)
        let range = try #require(markup.range(of: #"approve:[a-z0-9]+"#, options: .regularExpression))
        let approvalID = String(markup[range].dropFirst("approve:".count))
        #expect(markup.contains("deny:\(approvalID)") && markup.contains("Approve") && markup.contains("Deny"))
        #expect(model.requests.allSatisfy { !$0.body.contains("groceries") })
        // A stranger forges the owner's button data under the pairing message in their own chat.
        telegram.sendPrivateMessage(from: Self.mallory, text: "hello")
        try await Self.eventually { Self.texts(telegram, to: Self.mallory).count == 1 }
        let hers = try #require(telegram.sentMessages.last { $0.chatID == Self.mallory.id })
        telegram.tap(by: Self.mallory, messageID: hers.id, data: "approve:\(approvalID)")
        try await Self.eventually { Self.texts(telegram, to: Self.mallory).count == 2 }
        #expect(Self.texts(telegram, to: Self.mallory).last == "Only the owner's bound account can approve or deny.")
        #expect(model.requests.count == 2)
        #expect(model.requests.allSatisfy { !$0.body.contains("groceries") })
        // The owner's tap: the call runs, once; the buttons go; a second tap runs nothing.
        telegram.tap(by: Self.owner, messageID: prompt.id, data: "approve:\(approvalID)")
        try await Self.eventually { Self.texts(telegram, to: Self.owner).contains("notes.txt says: groceries.") }
        #expect(model.requests.count == 3)
        #expect(model.requests.last?.body.contains("groceries") == true)
        try await Self.eventually { telegram.sentMessages.first { $0.id == prompt.id }?.markup == nil }
        telegram.tap(by: Self.owner, messageID: prompt.id, data: "approve:\(approvalID)")
        try await Self.eventually { Self.texts(telegram, to: Self.owner).contains { $0.hasPrefix("Not done") } }
        #expect(model.requests.count == 3)
        // The owner's taps were answered: the first at once ("Approving…"), the second with why nothing ran
        // (that answer follows the "Not done" message).
        let answered = { telegram.calls("answerCallbackQuery").map { $0.parameters["text"] ?? "" } }
        try await Self.eventually { answered().count == 3 }
        let answers = answered()
        #expect(answers.count == 3 && answers[1] == "Approving…", "\(answers)")
        #expect(answers.last?.hasPrefix("Not done: approval \(approvalID)") == true, "\(answers)")
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(String(telegram.token.split(separator: ":")[1])))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test(
        "moat serve, webhook mode: setWebhook at start; an update with the secret header is taken, without it refused")
    func webhookMode() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("never")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let secret = "whsec_0123456789abcdefghijklmnopqrstuv"
        let hookURL = "https://moat.example.test/hooks/telegram/updates"
        let home = try await Self.home(
            model: model, telegram: telegram, token: telegram.token,
            extra: """
                    mode: webhook
                    webhook_url: \(hookURL)
                    webhook_secret: TELEGRAM_WEBHOOK_SECRET
                """)
        try secret.write(toFile: home.file("hook"), atomically: true, encoding: .utf8)
        chmod(home.file("hook"), 0o600)
        let added = try await MoatBinary.run(
            ["vault", "add", "TELEGRAM_WEBHOOK_SECRET", "--from-file", home.file("hook")], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        let server = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(server.port)
        try await Self.eventually { telegram.webhookURL != nil }
        #expect(telegram.webhookURL == hookURL)
        let id = telegram.sendPrivateMessage(from: Self.alice, text: "hello by webhook")
        let body = String(decoding: try #require(telegram.updateJSON(id)), as: UTF8.self)
        func post(_ header: String?) async throws -> RawHTTP.Response {
            var headers = [("Host", "127.0.0.1:\(port)"), ("Content-Type", "application/json")]
            if let header { headers.append(("X-Telegram-Bot-Api-Secret-Token", header)) }
            return try await RawHTTP.sendOffPool(
                RawHTTP.request("POST", "/hooks/telegram/updates", headers: headers, body: body), port: port)
        }
        // No header, and a header one byte off: 401, nothing handled.
        #expect(try await post(nil).status == 401)
        #expect(try await post(String(secret.dropLast()) + "w").status == 401)
        #expect(telegram.sentMessages.isEmpty)
        // The real header: the stranger gets a pairing code; the same update again (Telegram retrying) gets
        // the code still pending, not a second one.
        #expect(try await post(secret).status == 200)
        #expect(try await post(secret).status == 200)
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 2 }
        let codes = Self.texts(telegram, to: Self.alice).map { Self.code(in: $0) }
        #expect(codes.count == 2 && codes[0] != nil && codes[0] == codes[1])
        #expect(model.requests.isEmpty)
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(secret) && !log.contains(String(telegram.token.split(separator: ":")[1])))
    }

    @Test("moat serve: a bot token Telegram refuses is named by its vault secret, never shown, and nothing is answered")
    func refusedToken() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("never")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let wrong = "123456789:AAH-wrong_token-0123456789abcdefghij"
        let home = try await Self.home(model: model, telegram: telegram, token: wrong)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        telegram.sendPrivateMessage(from: Self.alice, text: "hello?")
        try await Self.eventually { server.log.contains("TELEGRAM_BOT_TOKEN") }
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("TELEGRAM_BOT_TOKEN"), "\(log)")
        #expect(!log.contains("wrong_token"))
        #expect(telegram.sentMessages.isEmpty)
        #expect(model.requests.isEmpty)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(!audit.stdout.contains("wrong_token") && !audit.stderr.contains("wrong_token"))
    }

    @Test(
        "moat serve: SIGTERM during a held getUpdates stops at once, and the next start gets what was not handled"
    )
    func shutdownDuringLongPoll() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("never")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        // A poll is answered only when an update arrives or Moat hangs up: waiting it out never ends.
        telegram.holdPollsUntilClosed()
        let home = try await Self.home(model: model, telegram: telegram, token: telegram.token)
        var server = try await RunningServer.start(arguments: [], home: home.path)
        telegram.sendPrivateMessage(from: Self.alice, text: "hello")
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 1 }
        // The update is confirmed by the next poll, which is then held.
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty && telegram.isHoldingPoll }
        try #require(telegram.isHoldingPoll)
        var (status, log) = await server.stop()
        // Exited by itself on SIGTERM (stop() kills only after 30 s, which shows as a signal, not status 0).
        #expect(status == 0, "\(log)")
        // Written while Moat is down: taken after the restart, and the first message is not handled again.
        telegram.sendPrivateMessage(from: Self.alice, text: "are you back?")
        server = try await RunningServer.start(arguments: [], home: home.path)
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 2 }
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty && telegram.isHoldingPoll }
        let second = await server.stop()
        #expect(second.status == 0, "\(second.log)")
        log += second.log
        let codes = Self.texts(telegram, to: Self.alice).map { Self.code(in: $0) }
        #expect(codes.count == 2 && codes[0] != nil && codes[0] == codes[1])
        #expect(model.requests.isEmpty)
        #expect(!log.contains(String(telegram.token.split(separator: ":")[1])))
    }

    @Test("moat serve, polling: a leftover webhook is removed at start; one set later is logged as 409 with the fix")
    func leftoverWebhook() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("never")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        telegram.setWebhookElsewhere("https://old.example.test/hooks/telegram/updates")
        telegram.sendPrivateMessage(from: Self.alice, text: "sent while the webhook was set")
        let home = try await Self.home(model: model, telegram: telegram, token: telegram.token)
        let server = try await RunningServer.start(arguments: [], home: home.path)
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 1 }
        #expect(telegram.calls("deleteWebhook").count == 1)
        telegram.setWebhookElsewhere("https://elsewhere.example.test/hook")
        try await Self.eventually { server.log.contains("a webhook is set for this bot") }
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("HTTP 409") && log.contains("channels.telegram.mode: webhook"), "\(log)")
        #expect(telegram.calls("deleteWebhook").count == 1)
        #expect(!log.contains(String(telegram.token.split(separator: ":")[1])))
    }
}
