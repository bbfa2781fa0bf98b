import Foundation
import MoatAgent
import MoatCore
import MoatPolicy
import MoatTestSupport
import MoatTools
import MoatVault
import Synchronization
import Testing

@testable import MoatChannels

/// The Telegram adapter on the channel framework, against the fake Bot API on loopback: the router, the
/// pairing desk and the real agent in the process, Telegram's wire on a real socket.
final class TelegramChannelFixture: Sendable {
    let base: AgentFixture
    let telegram: FakeTelegramServer
    let adapter: TelegramAdapter
    let desk: PairingDesk
    let router: ChannelRouter
    /// What the adapter and the router told the server's log.
    let reported = ReportedLines()

    init(tools: [any Tool] = [], trust: [TrustDomain: TrustLevel] = [:]) async throws {
        base = try AgentFixture(tools: tools, trust: trust)
        telegram = try await FakeTelegramServer.start()
        var token = Array(telegram.token.utf8)
        try base.vault.add("TELEGRAM_BOT_TOKEN", value: SecretBytes(wiping: &token), policy: .none)
        let settings = TelegramSettings(tokenSecret: "TELEGRAM_BOT_TOKEN", baseURL: telegram.baseURL, pollTimeout: 1)
        let reported = reported
        let report: @Sendable (String) -> Void = { reported.append($0) }
        adapter = TelegramAdapter(
            bot: try TelegramBot(settings: settings, vault: base.vault), settings: settings, report: report)
        let clock = base.clock
        desk = PairingDesk(
            database: base.database, authenticator: try ChannelKeyring.authenticator(from: base.vault),
            audit: base.audit, policy: base.policy, now: { clock.now })
        router = try Self.router(adapter, base: base, desk: desk, report: report)
    }

    static func router(
        _ adapter: TelegramAdapter, base: AgentFixture, desk: PairingDesk,
        report: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> ChannelRouter {
        let clock = base.clock
        return try ChannelRouter(
            adapters: [adapter], database: base.database, policy: base.policy, pairing: desk,
            turns: AgentChannelTurns(agent: base.agent), backoff: ReconnectBackoff(base: .milliseconds(5)),
            now: { clock.now }, report: report)
    }

    /// Every line reported so far.
    var reports: [String] { reported.all }

    /// The texts of the answers to button taps, in order (nil: answered without a text).
    var tapAnswers: [String?] { telegram.calls("answerCallbackQuery").map { $0.parameters["text"] } }

    /// The texts the bot sent into `user`'s chat, in order.
    func texts(to user: FakeTelegramServer.User) -> [String] {
        telegram.sentMessages.filter { $0.chatID == user.id }.map(\.text)
    }

    /// Waits (up to 60 s on a loaded machine) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<6000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// The pairing code in the last text sent to `user`.
    func lastCode(to user: FakeTelegramServer.User) throws -> String {
        let text = try #require(texts(to: user).last)
        let range = try #require(text.range(of: #"[0-9A-Z]{4}-[0-9A-Z]{4}"#, options: .regularExpression))
        return String(text[range])
    }
}

@Suite(.serialized) struct TelegramAdapterTests {
    static let owner = FakeTelegramServer.User(id: 111_000_111, firstName: "Olivia")
    static let alice = FakeTelegramServer.User(id: 222_000_222, firstName: "Alice")
    static let mallory = FakeTelegramServer.User(id: 333_000_333, firstName: "Mallory")

    @Test(
        "an unknown Telegram user gets a pairing code and reaches no model; once approved, the next message is answered"
    )
    func pairing() async throws {
        let fixture = try await TelegramChannelFixture()
        defer { Task { await fixture.telegram.stop() } }
        let service = Task { await fixture.router.run() }
        fixture.telegram.sendPrivateMessage(from: Self.alice, text: "hello, is anyone there?")
        fixture.telegram.sendGroupMessage(from: Self.alice, text: "group chatter is not read")
        fixture.telegram.editMessage(from: Self.alice, messageID: 1, text: "an edit is not read")
        try await fixture.eventually { fixture.texts(to: Self.alice).count == 1 }
        #expect(fixture.texts(to: Self.alice).first?.contains("pairing code") == true)
        #expect(fixture.base.model.requests.isEmpty)
        let code = try fixture.lastCode(to: Self.alice)
        _ = try await fixture.desk.approve(code: code, ceilings: [:])
        fixture.telegram.sendPrivateMessage(from: Self.alice, text: "now?")
        try await fixture.eventually { fixture.texts(to: Self.alice).count == 2 }
        #expect(fixture.texts(to: Self.alice).last == "done: now?")
        #expect(fixture.base.model.requests.count == 1)
        // Every update, the group message and the edit included, is confirmed: none comes again. The log says
        // why each ignored one was not read, without its text.
        try await fixture.eventually { fixture.telegram.pendingUpdateIDs.isEmpty }
        service.cancel()
        await service.value
        #expect(fixture.telegram.pendingUpdateIDs.isEmpty)
        let ignored = fixture.reports.filter { $0.contains("was not read") }
        #expect(ignored.contains { $0.contains("a message in a group: Moat answers private chats only") })
        #expect(ignored.contains { $0.contains("an edited message: only new messages are read") })
        #expect(!fixture.reports.contains { $0.contains("group chatter") || $0.contains("an edit is not read") })
    }

    @Test(
        "an approval prompt carries Approve/Deny; a tap from another account is refused, the owner's runs the call once"
    )
    func approvalButtons() async throws {
        let tool = TestTool("lights", domain: .integrations)
        let fixture = try await TelegramChannelFixture(tools: [tool], trust: [.integrations: .suggest])
        defer { Task { await fixture.telegram.stop() } }
        let service = Task { await fixture.router.run() }
        // The owner binds their Telegram account and asks for a level-2 call: held, and prompted.
        let (approvalID, sent) = try await Self.heldPrompt(#"CALL lights {"target":"porch"}"#, fixture)
        #expect(fixture.texts(to: Self.owner).first?.hasPrefix("This account is now the owner's") == true)
        #expect(sent.chatID == Self.owner.id)
        let markup = try #require(sent.markup)
        #expect(markup.contains("\"approve:\(approvalID)\"") && markup.contains("\"deny:\(approvalID)\""))
        #expect(markup.contains("Approve") && markup.contains("Deny"))
        // Mallory, a stranger, writes (and gets a pairing code), then taps a button with forged data under
        // that message in her own chat: refused, nothing ran, no model round.
        let requestsBefore = fixture.base.model.requests.count
        fixture.telegram.sendPrivateMessage(from: Self.mallory, text: "hi")
        try await fixture.eventually { fixture.texts(to: Self.mallory).count == 1 }
        let hers = try #require(fixture.telegram.sentMessages.last { $0.chatID == Self.mallory.id })
        fixture.telegram.tap(by: Self.mallory, messageID: hers.id, data: "approve:\(approvalID)")
        try await fixture.eventually { fixture.texts(to: Self.mallory).count == 2 }
        #expect(fixture.texts(to: Self.mallory).last == "Only the owner's bound account can approve or deny.")
        // A button Moat never made is answered and ignored.
        fixture.telegram.tap(by: Self.owner, messageID: sent.id, data: "launch:everything")
        try await fixture.eventually { fixture.telegram.calls("answerCallbackQuery").count == 2 }
        #expect(tool.ran.isEmpty)
        #expect(fixture.base.model.requests.count == requestsBefore)
        #expect(try await fixture.base.policy.approvals(pendingOnly: true).count == 1)
        // The owner's tap: the call runs once, the buttons go away, and a second tap runs nothing.
        fixture.telegram.tap(by: Self.owner, messageID: sent.id, data: "approve:\(approvalID)")
        try await fixture.eventually {
            tool.ran.count == 1 && fixture.telegram.calls("editMessageReplyMarkup").count == 1
        }
        try await fixture.eventually { fixture.texts(to: Self.owner).contains("Approved \(approvalID).") }
        #expect(fixture.telegram.sentMessages.first { $0.id == sent.id }?.markup == nil)
        fixture.telegram.tap(by: Self.owner, messageID: sent.id, data: "approve:\(approvalID)")
        try await fixture.eventually { fixture.telegram.calls("answerCallbackQuery").count == 4 }
        try await fixture.eventually { fixture.texts(to: Self.owner).contains { $0.hasPrefix("Not done") } }
        // Told why: still being decided (the reply was on its way) or already approved.
        #expect(fixture.tapAnswers.last??.hasPrefix("Not done: approval \(approvalID)") == true)
        #expect(tool.ran.count == 1)
        service.cancel()
        await service.value
    }

    @Test("a restart mid-stream loses and repeats nothing: the offset is in moat.db, a repeat counts once")
    func restart() async throws {
        let fixture = try await TelegramChannelFixture()
        defer { Task { await fixture.telegram.stop() } }
        let bind = try await fixture.desk.beginBinding(channel: "telegram")
        let first = Task { await fixture.router.run() }
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: bind.code)
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: "one")
        try await fixture.eventually { fixture.texts(to: Self.owner).contains("done: one") }
        first.cancel()
        await first.value
        let saved = try #require(try await fixture.router.savedCursor(channel: "telegram"))
        // Written while Moat was down.
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: "two")
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: "three")
        // A crash after "one" was handled but before its offset was saved: Telegram sends it again.
        let savedOffset = try #require(Int64(saved))
        try await fixture.router.advance(channel: "telegram", to: String(savedOffset - 1))
        let restarted = try TelegramChannelFixture.router(fixture.adapter, base: fixture.base, desk: fixture.desk)
        let second = Task { await restarted.run() }
        try await fixture.eventually { fixture.texts(to: Self.owner).contains("done: three") }
        try await fixture.eventually { fixture.telegram.pendingUpdateIDs.isEmpty }
        second.cancel()
        await second.value
        #expect(
            fixture.texts(to: Self.owner).filter { $0.hasPrefix("done: ") } == [
                "done: one", "done: two", "done: three",
            ])
        #expect(fixture.base.model.requests.count == 3)
        #expect(try fixture.base.count("agent_inbound") == 3)
        #expect(try await restarted.savedCursor(channel: "telegram") == String(savedOffset + 2))
    }

    @Test(
        "an owner's tap is answered at once, while the approved call still runs; a double tap runs it once and is told so"
    )
    func tapAnsweredAtOnce() async throws {
        let tool = GatedTool("unlock", domain: .integrations)
        let fixture = try await TelegramChannelFixture(tools: [tool], trust: [.integrations: .suggest])
        defer { Task { await fixture.telegram.stop() } }
        let service = Task { await fixture.router.run() }
        let (approvalID, prompt) = try await Self.heldPrompt(#"CALL unlock {"target":"front door"}"#, fixture)
        // The owner taps Approve; the call starts and is held inside the tool. The tap is answered and its
        // buttons go now, not when the call ends: Telegram's client stops its spinner.
        fixture.telegram.tap(by: Self.owner, messageID: prompt.id, data: "approve:\(approvalID)")
        try await fixture.eventually { tool.started == 1 && fixture.tapAnswers.count == 1 }
        #expect(fixture.tapAnswers == ["Approving…"])
        try await fixture.eventually { fixture.telegram.sentMessages.first { $0.id == prompt.id }?.markup == nil }
        #expect(tool.finished == 0)
        // A second tap (the buttons were still on the phone's screen) while the call runs: told, nothing run.
        fixture.telegram.tap(by: Self.owner, messageID: prompt.id, data: "approve:\(approvalID)")
        try await fixture.eventually { fixture.tapAnswers.count == 2 }
        #expect(fixture.tapAnswers.last??.contains("approval \(approvalID) is being decided already") == true)
        #expect(tool.started == 1)
        // The call ends; the result follows as a message. A deny tap now is told how it ended.
        tool.open()
        try await fixture.eventually { fixture.texts(to: Self.owner).contains("Approved \(approvalID).") }
        fixture.telegram.tap(by: Self.owner, messageID: prompt.id, data: "deny:\(approvalID)")
        try await fixture.eventually { fixture.tapAnswers.count == 3 }
        #expect(fixture.tapAnswers.last??.contains("was already approved, and its call ran") == true)
        #expect(tool.started == 1 && tool.finished == 1)
        service.cancel()
        await service.value
    }

    @Test(
        "polling removes a leftover webhook once at start, keeping its updates; a webhook set later is reported, not fought"
    )
    func leftoverWebhook() async throws {
        let fixture = try await TelegramChannelFixture()
        defer { Task { await fixture.telegram.stop() } }
        fixture.telegram.setWebhookElsewhere("https://old.example.test/hooks/telegram/updates")
        fixture.telegram.sendPrivateMessage(from: Self.alice, text: "written while a webhook was set")
        let service = Task { await fixture.router.run() }
        try await fixture.eventually { fixture.texts(to: Self.alice).count == 1 }
        #expect(fixture.texts(to: Self.alice).first?.contains("pairing code") == true)
        #expect(fixture.telegram.calls("deleteWebhook").map { $0.parameters["drop_pending_updates"] } == ["false"])
        // Another program with the same token sets its webhook: getUpdates is refused with 409, the log says
        // what happened and the fix, and the channel keeps trying without deleting the other program's webhook.
        fixture.telegram.setWebhookElsewhere("https://elsewhere.example.test/hook")
        try await fixture.eventually { fixture.reports.filter { $0.contains("HTTP 409") }.count >= 2 }
        service.cancel()
        await service.value
        let conflict = try #require(fixture.reports.first { $0.contains("HTTP 409") })
        #expect(
            conflict.contains("a webhook is set for this bot") && conflict.contains("channels.telegram.mode: webhook"))
        #expect(!conflict.contains(fixture.telegram.token))
        #expect(fixture.telegram.calls("deleteWebhook").count == 1)
        #expect(fixture.telegram.webhookURL == "https://elsewhere.example.test/hook")
    }

    /// The owner binds their account (the code `moat channel bind` shows) and asks for `call`, which is held;
    /// the prompt goes to the owner's bound account with its buttons, as `moat serve`'s notifier sends it.
    /// Returns the approval id and the prompt as the bot sent it.
    static func heldPrompt(_ call: String, _ fixture: TelegramChannelFixture) async throws
        -> (approvalID: String, prompt: (id: Int64, chatID: Int64, text: String, markup: String?))
    {
        let bind = try await fixture.desk.beginBinding(channel: "telegram")
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: bind.code)
        try await fixture.eventually { fixture.texts(to: Self.owner).count == 1 }
        fixture.telegram.sendPrivateMessage(from: Self.owner, text: call)
        try await fixture.eventually { fixture.texts(to: Self.owner).contains { $0.hasPrefix("done: Held") } }
        let notice = try #require(fixture.base.notices.all.first { $0.kind == .approvalPending })
        let approvalID = try #require(notice.approvalID)
        let prompt = ApprovalPrompt(approvalID: approvalID, summary: notice.text, level: 2, domain: "", reason: nil)
        #expect(await fixture.router.notifyOwner(notice.text, prompt: prompt))
        try await fixture.eventually { fixture.telegram.sentMessages.contains { $0.markup != nil } }
        return (approvalID, try #require(fixture.telegram.sentMessages.last { $0.markup != nil }))
    }
}

/// Lines told to a log, in order.
final class ReportedLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
}

/// A tool whose runs wait until the test opens its gate, counting the runs started and finished.
final class GatedTool: Tool {
    let inner: TestTool
    var name: String { inner.name }
    var domain: TrustDomain { inner.domain }
    var description: String { inner.description }
    var parameters: String { inner.parameters }
    private let counts = Mutex<(started: Int, finished: Int)>((0, 0))
    private let gate: AsyncStream<Void>
    private let opener: AsyncStream<Void>.Continuation

    init(_ name: String, domain: TrustDomain) {
        inner = TestTool(name, domain: domain)
        (gate, opener) = AsyncStream.makeStream()
    }

    var started: Int { counts.withLock { $0.started } }
    var finished: Int { counts.withLock { $0.finished } }

    /// Lets every run (waiting or to come) finish.
    func open() { opener.finish() }

    func prepare(_ arguments: String) throws(ToolError) -> PreparedCall { try inner.prepare(arguments) }

    func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        counts.withLock { $0.started += 1 }
        for await _ in gate {}
        counts.withLock { $0.finished += 1 }
        return try await inner.run(call, context: context)
    }
}
