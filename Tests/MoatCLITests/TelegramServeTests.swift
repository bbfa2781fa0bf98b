import Foundation
import MoatTestSupport
import Testing

/// Telegram as a channel of the real `moat serve`, against the fake Bot API on loopback: pairing before
/// any model round, the offset in moat.db across a restart, and the bot token kept out of every log.
@Suite(.serialized) struct TelegramServeTests {
    static let alice = FakeTelegramServer.User(id: 222_000_222, firstName: "Alice")

    /// A served home whose provider is `model` and whose bot is `telegram`, the token in the vault.
    static func home(model: ScriptedModelServer, telegram: FakeTelegramServer, token: String) throws
        -> TemporaryDirectory
    {
        let home = try ServedHome.copy()
        let config = """
            providers:
              local:
                base_url: \(model.baseURL)
                model: scripted
            channels:
              telegram:
                token_secret: TELEGRAM_BOT_TOKEN
                base_url: \(telegram.baseURL)
                poll_timeout: 1
            """
        try config.write(toFile: home.file("config.yaml"), atomically: true, encoding: .utf8)
        chmod(home.file("config.yaml"), 0o600)
        try token.write(toFile: home.file("token"), atomically: true, encoding: .utf8)
        chmod(home.file("token"), 0o600)
        let added = try MoatBinary.run(
            ["vault", "add", "TELEGRAM_BOT_TOKEN", "--from-file", home.file("token")], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        unlink(home.file("token"))
        return home
    }

    /// Waits (up to 60 s on a loaded machine) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<6000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
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
        let home = try Self.home(model: model, telegram: telegram, token: telegram.token)
        var server = try RunningServer(arguments: [], home: home.path)
        telegram.sendPrivateMessage(from: Self.alice, text: "hi, may I talk to your assistant?")
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 1 }
        let codeText = try #require(Self.texts(telegram, to: Self.alice).first)
        #expect(codeText.contains("pairing code"), "\(codeText)")
        #expect(model.requests.isEmpty)
        // The owner lets Alice in (`moat contact add` over the admin socket; `moat pairing approve CODE` once
        // the pairing commands are merged).
        let added = try MoatBinary.run(["contact", "add", "telegram:\(Self.alice.id)"], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        telegram.sendPrivateMessage(from: Self.alice, text: "what's new?")
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 2 }
        #expect(Self.texts(telegram, to: Self.alice).last == "Hello Alice.")
        #expect(model.requests.count == 1)
        #expect(model.requests.first?.body.contains("may I talk") == false)
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty }
        var (status, log) = server.stop()
        #expect(status == 0)
        // Written while Moat is down: answered once after the restart, and nothing earlier again.
        telegram.sendPrivateMessage(from: Self.alice, text: "still there?")
        server = try RunningServer(arguments: [], home: home.path)
        try await Self.eventually { Self.texts(telegram, to: Self.alice).count == 3 }
        try await Self.eventually { telegram.pendingUpdateIDs.isEmpty }
        let second = server.stop()
        #expect(second.status == 0)
        log += second.log
        #expect(Self.texts(telegram, to: Self.alice) == [codeText, "Hello Alice.", "Second answer."])
        #expect(model.requests.count == 2)
        // The token is nowhere in the server's log or the audit log's tail, whole or its secret half.
        let audit = try MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(audit.status == 0, "\(audit.stderr)")
        let secretHalf = String(telegram.token.split(separator: ":")[1])
        for text in [log, audit.stdout, audit.stderr] {
            #expect(!text.contains(secretHalf))
        }
        #expect(try MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("moat serve: a bot token Telegram refuses is named by its vault secret, never shown, and nothing is answered")
    func refusedToken() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("never")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let wrong = "123456789:AAH-wrong_token-0123456789abcdefghij"
        let home = try Self.home(model: model, telegram: telegram, token: wrong)
        let server = try RunningServer(arguments: [], home: home.path)
        telegram.sendPrivateMessage(from: Self.alice, text: "hello?")
        try await Self.eventually { server.log.contains("TELEGRAM_BOT_TOKEN") }
        let (status, log) = server.stop()
        #expect(status == 0)
        #expect(log.contains("TELEGRAM_BOT_TOKEN"), "\(log)")
        #expect(!log.contains("wrong_token"))
        #expect(telegram.sentMessages.isEmpty)
        #expect(model.requests.isEmpty)
        let audit = try MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(!audit.stdout.contains("wrong_token") && !audit.stderr.contains("wrong_token"))
    }
}
