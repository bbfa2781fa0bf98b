import Foundation
import MoatCore
import MoatTestSupport
import Testing

/// SIGHUP on a real `moat serve`: what can change live is put in force, what cannot is named, and a
/// file that does not load changes nothing while the server keeps answering.
@Suite(.serialized) struct ConfigReloadServeTests {
    static func write(_ text: String, to file: String) throws {
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
    }

    /// Waits until the server's log holds `count` lines containing `text`.
    static func waitForLog(_ running: RunningServer, _ text: String, count: Int = 1) async -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if running.log.components(separatedBy: text).count - 1 >= count { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Writes `config` to the home's config.yaml, sends SIGHUP and waits for the reload's answer (`config
    /// reloaded`, or `config reload refused`); the log line with it.
    static func reload(
        _ running: RunningServer, home: TemporaryDirectory, config: String, outcome: String = "config reloaded"
    ) async throws -> String {
        let seen = running.log.components(separatedBy: outcome).count - 1
        try write(config, to: home.file("config.yaml"))
        kill(running.process.processIdentifier, SIGHUP)
        #expect(await waitForLog(running, outcome, count: seen + 1), "\(running.log)")
        let lines = running.log.split(separator: "\n").filter { $0.contains(outcome) }
        return lines.count > seen ? String(lines[seen]) : ""
    }

    @Test(
        "SIGHUP: a lowered agent.message_bytes holds at once, a bind change is listed as needing a restart; a broken file on SIGHUP keeps the old limit and the server keeps answering"
    )
    func reloadOnSIGHUP() async throws {
        let server = try await ScriptedModelServer.start(replies: [.text("first answer"), .text("second answer")])
        defer { Task { await server.stop() } }
        let home = try await ChatCommandTests.home(server)
        let providers = "providers:\n  local:\n    base_url: \(server.baseURL)\n    model: scripted\n"
        let config = home.file("config.yaml")
        try Self.write(providers + "agent:\n  message_bytes: 1000\n", to: config)
        let running = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(running.port)
        await waitForFile(home.file("moat.sock"), within: 60)
        let long = "a message of more than ten bytes"
        let before = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(before.status == 0, "\(before.stderr)")

        try Self.write(
            providers + "agent:\n  message_bytes: 10\ngateway:\n  allowed_hosts: [studio.lan]\n", to: config)
        kill(running.process.processIdentifier, SIGHUP)
        #expect(await Self.waitForLog(running, "config reloaded"), "\(running.log)")
        let line = running.log.split(separator: "\n").first { $0.contains("config reloaded") }.map(String.init) ?? ""
        #expect(line.contains(#""applied":"agent""#), "\(line)")
        #expect(line.contains(#""needs_restart":"gateway.allowed_hosts""#), "\(line)")
        let refused = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("longer than 10 bytes (agent.message_bytes)"), "\(refused.stderr)")

        // A broken file: the reload is refused, the limit of 10 stays, the server answers.
        try Self.write(providers + "agent:\n  message_bytes: 0\n", to: config)
        kill(running.process.processIdentifier, SIGHUP)
        #expect(await Self.waitForLog(running, "config reload refused"), "\(running.log)")
        #expect(running.log.contains("agent.message_bytes: 0 is out of range"))
        let short = try await MoatBinary.run(["chat", "--message", "hi"], home: home.path)
        #expect(short.status == 0 && short.stdout.hasPrefix("second answer"), "\(short.stderr)")
        let stillRefused = try await MoatBinary.run(["chat", "--message", long], home: home.path)
        #expect(stillRefused.stderr.contains("longer than 10 bytes"), "\(stillRefused.stderr)")
        #expect(try await OwnerCommandTests.send("GET", "/healthz", port: port).status == 200)
        #expect(running.process.isRunning)

        let (status, _) = await running.stop()
        #expect(status == 0)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "60"], home: home.path)
        let reloads = audit.stdout.split(separator: "\n").filter { $0.contains("config.reload") }
        #expect(reloads.count == 2, "\(audit.stdout)")
        #expect(reloads.contains { $0.contains("failure") })
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test(
        "SIGHUP: a Telegram channel added starts polling and answers; changed, it restarts with no message lost or answered twice; a bad channels section changes nothing; removed, it stops polling"
    )
    func telegramChannelLive() async throws {
        let model = try await ScriptedModelServer.start(replies: [
            .text("First answer."), .text("Second answer."), .text("Third answer."), .text("Fourth answer."),
        ])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let alice = TelegramServeTests.alice
        // The token in the vault and Alice a contact; no channel in config.yaml yet.
        let home = try await ChannelServeHome.make(
            model: model, section: "", secret: "TELEGRAM_BOT_TOKEN", value: telegram.token)
        let added = try await MoatBinary.run(["contact", "add", "telegram:\(alice.id)"], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        let base = try String(contentsOfFile: home.file("config.yaml"), encoding: .utf8)
        func channel(pollTimeout: Int) -> String {
            base + """

                channels:
                  telegram:
                    token_secret: TELEGRAM_BOT_TOKEN
                    base_url: \(telegram.baseURL)
                    poll_timeout: \(pollTimeout)

                """
        }
        let running = try await RunningServer.start(arguments: [], home: home.path)
        #expect(telegram.calls("getUpdates").isEmpty)

        // Added: polling starts and Alice is answered.
        let addedLine = try await Self.reload(running, home: home, config: channel(pollTimeout: 1))
        #expect(addedLine.contains(#""applied":"channels.telegram""#), "\(addedLine)")
        #expect(await Self.waitForLog(running, "channel started"))
        #expect(running.log.contains(#""channel":"telegram""#))
        telegram.sendPrivateMessage(from: alice, text: "hello")
        try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: alice).count == 1 }
        #expect(TelegramServeTests.texts(telegram, to: alice) == ["First answer."])

        // Changed (another poll timeout): the adapter restarts from the saved offset. A message written just
        // before the reload and one after it are each answered once.
        telegram.sendPrivateMessage(from: alice, text: "second")
        _ = try await Self.reload(running, home: home, config: channel(pollTimeout: 2))
        #expect(await Self.waitForLog(running, "channel restarted"))
        telegram.sendPrivateMessage(from: alice, text: "third")
        try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: alice).count >= 3 }
        try await TelegramServeTests.eventually { telegram.pendingUpdateIDs.isEmpty }
        #expect(
            TelegramServeTests.texts(telegram, to: alice) == ["First answer.", "Second answer.", "Third answer."])
        #expect(model.requests.count == 3)

        // A bad channels section: refused with the reason, and the channel keeps running as it was.
        let refused = try await Self.reload(
            running, home: home,
            config: channel(pollTimeout: 2).replacingOccurrences(of: "TELEGRAM_BOT_TOKEN", with: "telegram-token"),
            outcome: "config reload refused")
        #expect(refused.contains("channels.telegram.token_secret"), "\(refused)")
        telegram.sendPrivateMessage(from: alice, text: "fourth")
        try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: alice).count == 4 }
        #expect(TelegramServeTests.texts(telegram, to: alice).last == "Fourth answer.")

        // Removed: the adapter stops, and no getUpdates comes after that; Alice is not answered.
        _ = try await Self.reload(running, home: home, config: base)
        #expect(await Self.waitForLog(running, "channel stopped"))
        try await Task.sleep(for: .seconds(1))
        let polls = telegram.calls("getUpdates").count
        telegram.sendPrivateMessage(from: alice, text: "anyone there?")
        try await Task.sleep(for: .seconds(4))
        #expect(telegram.calls("getUpdates").count == polls)
        #expect(TelegramServeTests.texts(telegram, to: alice).count == 4)
        #expect(model.requests.count == 4)

        let (status, log) = await running.stop()
        #expect(status == 0)
        #expect(!log.contains(String(telegram.token.split(separator: ":")[1])))
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        let lines = audit.stdout.split(separator: "\n")
        #expect(lines.filter { $0.contains("channel.start") && $0.contains("telegram") }.count == 2, "\(audit.stdout)")
        #expect(lines.filter { $0.contains("channel.stop") && $0.contains("telegram") }.count == 1, "\(audit.stdout)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test(
        "SIGHUP: a webhook added answers its signed delivery and removed answers 404; a lowered gateway.auth.limits password limit refuses the next login"
    )
    func webhooksAndLimitsLive() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("The door is closed.")])
        defer { Task { await model.stop() } }
        let password = "a long owner passphrase"
        let home = try await ChannelServeHome.make(
            model: model, section: "", secret: "SMS_HOOK_KEY", value: WebhookServeTests.key)
        let base = try String(contentsOfFile: home.file("config.yaml"), encoding: .utf8)
        #expect(try await MoatBinary.run(["contact", "add", "webhook:sms:+15551234567"], home: home.path).status == 0)
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: password + "\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let running = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(running.port)
        func deliver(_ id: String) async throws -> RawHTTP.Response {
            try await RawHTTP.sendOffPool(
                WebhookServeTests.delivery(
                    #"{"id":"\#(id)","sender":"+15551234567","text":"Is the door closed?"}"#, port: port),
                port: port)
        }
        func login(_ secret: String) async throws -> Int {
            try await RawHTTP.sendOffPool(
                RawHTTP.request(
                    "POST", "/api/auth/login",
                    headers: [("Host", "127.0.0.1:\(port)"), ("Origin", "http://127.0.0.1:\(port)")],
                    body: #"{"username":"owner","password":"\#(secret)"}"#), port: port
            ).status
        }
        #expect(try await deliver("msg-1").status == 404)

        // Added: the signed delivery reaches the model and its reply comes back.
        let hook = "\nchannels:\n  webhooks:\n    sms:\n      key_secret: SMS_HOOK_KEY\n"
        let added = try await Self.reload(running, home: home, config: base + hook)
        #expect(added.contains(#""applied":"channels.webhooks""#), "\(added)")
        let answer = try await deliver("msg-2")
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.body == #"{"reply":"The door is closed."}"#)

        // Two wrong passwords are within the default limit (10): the third try is checked, not refused.
        #expect(try await login("wrong one") == 401)
        #expect(try await login("wrong two") == 401)
        #expect(try await login("wrong three") == 401)
        // The limit lowered to 2 in force: even the right password is refused now.
        let limits = "\ngateway:\n  auth:\n    limits:\n      password_failures: 2\n"
        let lowered = try await Self.reload(running, home: home, config: base + hook + limits)
        #expect(lowered.contains(#""applied":"gateway.auth.limits""#), "\(lowered)")
        #expect(try await login(password) == 429)

        // Removed: 404 again, and the model saw one delivery only.
        let removed = try await Self.reload(running, home: home, config: base + limits)
        #expect(removed.contains(#""applied":"channels.webhooks""#), "\(removed)")
        #expect(try await deliver("msg-3").status == 404)
        #expect(model.requests.count == 1)

        let (status, _) = await running.stop()
        #expect(status == 0)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
