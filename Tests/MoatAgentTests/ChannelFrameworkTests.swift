import Crypto
import Foundation
import GRDB
import MoatAgent
import MoatCore
import MoatPolicy
import MoatStore
import MoatTools
import Synchronization
import Testing

@testable import MoatChannels

/// A platform in the process: it hands in its script from the saved cursor on (the cursor is the index of
/// the next message), keeps everything sent to it, and can fail its first runs like a dropped connection.
final class TestAdapter: ChannelAdapter {
    let channel: String
    let script: [ChannelMessage]
    private let state = Mutex<(sent: [OutboundMessage], runs: Int, failuresLeft: Int)>(([], 0, 0))

    init(channel: String = "testchat", script: [ChannelMessage] = [], failFirstRuns: Int = 0) {
        self.channel = channel
        self.script = script
        state.withLock { $0.failuresLeft = failFirstRuns }
    }

    var sent: [OutboundMessage] { state.withLock { $0.sent } }
    var runs: Int { state.withLock { $0.runs } }

    func run(inbox: any ChannelInbox) async throws {
        let fail = state.withLock { state in
            state.runs += 1
            guard state.failuresLeft > 0 else { return false }
            state.failuresLeft -= 1
            return true
        }
        if fail { throw ChannelError(.deliveryFailed, "test platform unreachable") }
        let start = Int(try await inbox.savedCursor(channel: channel) ?? "0") ?? 0
        for message in script.dropFirst(start) { try await inbox.deliver(message) }
        try await Task.sleep(for: .seconds(3600))
    }

    func send(_ message: OutboundMessage) async throws {
        state.withLock { $0.sent.append(message) }
    }

    /// The `index`-th scripted message: `text` from `sender`, key `k<index>`, cursor `index + 1`.
    static func message(_ index: Int, _ text: String, from sender: String = "alice", channel: String = "testchat")
        -> ChannelMessage
    {
        ChannelMessage(
            channel: channel, senderID: sender, conversation: "dm-\(sender)", text: text,
            idempotencyKey: "k\(index)", cursor: String(index + 1))
    }
}

/// The agent fixture with the channel framework on it: a pairing desk and a router over one test adapter.
final class ChannelFixture: Sendable {
    let base: AgentFixture
    let adapter: TestAdapter
    let desk: PairingDesk
    let router: ChannelRouter
    let requests = CodeRecorder()
    /// The router's service (its turns run there), cancelled with the fixture.
    let service: Task<Void, Never>?

    init(
        tools: [any Tool] = [], trust: [TrustDomain: TrustLevel] = [:], settings: PairingSettings = PairingSettings(),
        adapter: TestAdapter = TestAdapter(), running: Bool = true
    ) throws {
        base = try AgentFixture(tools: tools, trust: trust)
        self.adapter = adapter
        let clock = base.clock
        desk = PairingDesk(
            database: base.database, authenticator: try ChannelKeyring.authenticator(from: base.vault),
            audit: base.audit, policy: base.policy, settings: settings, now: { clock.now })
        let requests = self.requests
        router = try ChannelRouter(
            adapters: [adapter], database: base.database, policy: base.policy, pairing: desk,
            turns: AgentChannelTurns(agent: base.agent), backoff: ReconnectBackoff(base: .milliseconds(5)),
            now: { clock.now }, onPairingRequest: { code in requests.codes.withLock { $0.append(code) } })
        let router = self.router
        service = running ? Task { await router.run() } : nil
    }

    deinit { service?.cancel() }

    /// A message from `sender` with a fresh idempotency key.
    func message(_ text: String, from sender: String = "alice") -> ChannelMessage {
        ChannelMessage(
            channel: "testchat", senderID: sender, conversation: "dm-\(sender)", text: text,
            idempotencyKey: UUID().uuidString)
    }

    /// Binds `me` as the owner's account on `testchat` (the router not running yet), the cursor at 0.
    func bindOwner() async throws {
        let bind = try await desk.beginBinding(channel: "testchat")
        try await router.advance(channel: "testchat", to: "0")
        _ = try await router.deliver(
            ChannelMessage(
                channel: "testchat", senderID: "me", conversation: "dm-me", text: bind.code, idempotencyKey: "bind"))
    }

    /// The code in the last text sent to `sender`.
    func lastCode(to sender: String) throws -> String {
        let text = try #require(adapter.sent.last { $0.recipient == sender }).text
        let range = try #require(text.range(of: #"[0-9A-Z]{4}-[0-9A-Z]{4}"#, options: .regularExpression))
        return String(text[range])
    }

    /// Waits (up to 60 s on a loaded machine) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<6000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}

/// The pairing requests the owner was told of.
final class CodeRecorder: Sendable {
    let codes = Mutex<[PendingCode]>([])
}

@Suite struct PairingCodeTests {
    @Test("codes are 8 Crockford base32 characters, differ per row id, and typing variants normalise to them")
    func shape() throws {
        let authenticator = RowAuthenticator(key: .init(size: .bits256))
        let codes = Set(
            (0..<200).map { _ in PairingCode.derive(id: PairingCode.newID(), authenticator: authenticator) })
        #expect(codes.count == 200)
        for code in codes {
            #expect(code.utf8.count == 8 && code.utf8.allSatisfy { PairingCode.alphabet.contains($0) })
            #expect(PairingCode.normalize(PairingCode.display(code).lowercased()) == code)
        }
        #expect(PairingCode.normalize("oiLl-2345") == "01112345")
        #expect(PairingCode.normalize("ABCD-EFG") == nil)
        #expect(PairingCode.normalize("ABCD-EFGU") == nil)  // U is not in the alphabet
        #expect(PairingCode.normalize("ABCD-EFGHJ") == nil)
        #expect(PairingCode.matches("ABCDEFGH", "ABCDEFGH") && !PairingCode.matches("ABCDEFGH", "ABCDEFGJ"))
    }

    @Test("the decision: the pending code again, then the caps per channel and per hour, denied senders wait")
    func decision() {
        let settings = PairingSettings(pendingPerChannel: 3, attemptsPerHour: 5)
        func decide(_ mine: Bool, _ denied: Bool, _ pending: Int, _ attempts: Int) -> PairingDecision {
            PairingDecision.decide(
                pendingForSender: mine, deniedForSender: denied, pendingOnChannel: pending,
                attemptsThisHour: attempts, settings: settings)
        }
        #expect(decide(true, false, 3, 5) == .resend)
        #expect(decide(false, false, 2, 4) == .issue)
        guard case .refuse = decide(false, false, 3, 0) else {
            Issue.record("4th pending code issued")
            return
        }
        guard case .refuse = decide(false, false, 0, 5) else {
            Issue.record("hourly cap ignored")
            return
        }
        guard case .refuse = decide(false, true, 0, 0) else {
            Issue.record("denied sender got a code")
            return
        }
        #expect(PairingSettings(codeLifetime: 3600, pendingPerChannel: 9).codeLifetime == 600)
        #expect(PairingSettings(codeLifetime: 3600, pendingPerChannel: 9).pendingPerChannel == 3)
    }

    @Test("backoff doubles up to its cap with jitter in the upper half")
    func backoff() {
        let backoff = ReconnectBackoff(base: .seconds(1), maximum: .seconds(60))
        var random = SystemRandomNumberGenerator()
        for failures in 1...12 {
            let ceiling = min(Duration.seconds(1) * (1 << (failures - 1)), .seconds(60))
            for _ in 0..<20 {
                let wait = backoff.delay(afterFailures: failures, random: &random)
                #expect(wait <= ceiling && wait >= ceiling / 2)
            }
        }
    }
}

@Suite struct ChannelPairingTests {
    @Test("an unknown sender gets a code, reaches no model, leaves no text in moat.db, and the owner is told")
    func unknownSenderPairs() async throws {
        let fixture = try ChannelFixture()
        let outcome = try await fixture.router.deliver(fixture.message("hello, secret plans inside"))
        #expect(outcome == .pairingCode)
        #expect(fixture.base.model.requests.isEmpty)
        let code = try fixture.lastCode(to: "alice")
        #expect(fixture.requests.codes.withLock { codes in codes.map { $0.code } } == [code])
        #expect(try !fixture.base.allStoredText().contains("secret plans"))
        #expect(try !fixture.base.allStoredText().contains(code.replacingOccurrences(of: "-", with: "")))
        #expect(try fixture.base.count("agent_inbound") == 0)
        // Writing again gets the same code, no new row, no second notice.
        #expect(try await fixture.router.deliver(fixture.message("hello?")) == .pairingCode)
        #expect(try fixture.lastCode(to: "alice") == code)
        #expect(try fixture.base.count("channel_codes") == 1)
        #expect(fixture.requests.codes.withLock { $0.count } == 1)
        #expect(fixture.base.model.requests.isEmpty)
    }

    @Test(
        "pairing limits a reload applies hold from the next code: the new lifetime, and a lowered per-channel cap refuses a second sender"
    )
    func limitsAppliedLive() async throws {
        let fixture = try ChannelFixture()
        fixture.desk.apply(PairingSettings(codeLifetime: 120, pendingPerChannel: 1))
        #expect(try await fixture.router.deliver(fixture.message("hi")) == .pairingCode)
        let text = try #require(fixture.adapter.sent.last { $0.recipient == "alice" }).text
        #expect(text.contains("valid about 2 more minutes"), "\(text)")
        guard case .refused = try await fixture.router.deliver(fixture.message("hi", from: "bob")) else {
            Issue.record("a second pending pairing passed the lowered cap of one per channel")
            return
        }
        #expect(try fixture.base.count("channel_codes") == 1)
    }

    @Test("the owner approves with ceilings: the sender is a contact (never the owner) and is answered next time")
    func approveThenTalk() async throws {
        let fixture = try ChannelFixture()
        try await fixture.router.deliver(fixture.message("hi"))
        let code = try fixture.lastCode(to: "alice")
        let (grant, pairing) = try await fixture.desk.approve(code: code.lowercased(), ceilings: [.web: .suggest])
        #expect(grant.channel == "testchat" && grant.senderID == "alice" && pairing.senderID == "alice")
        #expect(grant.ceilings == [.web: .suggest])
        let principal = try await fixture.base.policy.principal(channel: "testchat", senderID: "alice")
        #expect(principal != .owner && principal != nil)
        #expect(try await fixture.router.deliver(fixture.message("what time is it")) == .accepted)
        try await fixture.eventually { fixture.adapter.sent.contains { $0.text == "done: what time is it" } }
        #expect(fixture.adapter.sent.last?.text == "done: what time is it")
        #expect(fixture.base.model.requests.count == 1)
        // The code was single use.
        await #expect(throws: ChannelError.self) { try await fixture.desk.approve(code: code, ceilings: [:]) }
        let actions = try fixture.base.auditActions()
        #expect(actions.contains("pairing.request") && actions.contains("pairing.approve"))
        #expect(actions.contains("contact.add"))
    }

    @Test("wrong, expired, used and denied codes are refused with a reason and add no contact")
    func badCodes() async throws {
        let fixture = try ChannelFixture()
        try await fixture.router.deliver(fixture.message("hi", from: "bob"))
        let code = try fixture.lastCode(to: "bob")
        for typed in ["ABCD-EFGH", "0000-0000", "not a code", ""]
        where PairingCode.normalize(typed) != PairingCode.normalize(code) {
            await #expect(throws: ChannelError.self) { try await fixture.desk.approve(code: typed, ceilings: [:]) }
        }
        _ = try await fixture.desk.deny(code: code)
        do {
            _ = try await fixture.desk.approve(code: code, ceilings: [:])
            Issue.record("a denied code was approved")
        } catch let error as ChannelError {
            #expect(error.message.contains("already denied"))
        }
        // A denied sender gets no new code while the denial stands.
        #expect(try await fixture.router.deliver(fixture.message("again", from: "bob")) != .pairingCode)
        // Expiry: a fresh sender's code after 10 minutes and a second.
        try await fixture.router.deliver(fixture.message("hi", from: "carol"))
        let late = try fixture.lastCode(to: "carol")
        fixture.base.advance(601)
        await #expect(throws: ChannelError.self) { try await fixture.desk.approve(code: late, ceilings: [:]) }
        #expect(try await fixture.base.policy.contacts().isEmpty)
        #expect(try fixture.base.count("channel_codes") == 0)
    }

    @Test("a 4th pending pairing on a channel and attempts over the hourly cap are refused; state stays bounded")
    func caps() async throws {
        let fixture = try ChannelFixture(settings: PairingSettings(attemptsPerHour: 4))
        for sender in ["a", "b", "c"] {
            #expect(try await fixture.router.deliver(fixture.message("hi", from: sender)) == .pairingCode)
        }
        guard case .refused = try await fixture.router.deliver(fixture.message("hi", from: "d")) else {
            Issue.record("a 4th pending code was issued")
            return
        }
        for sender in (0..<200).map({ "flood\($0)" }) {
            _ = try await fixture.router.deliver(fixture.message("hi", from: sender))
        }
        #expect(try fixture.base.count("channel_codes") == 3)
        #expect(try fixture.base.count("audit_entries", "action = 'pairing.refused'") == 1)
        // Approving one frees a slot; the hourly cap (4) then stops the next after one more.
        _ = try await fixture.desk.approve(code: try fixture.lastCode(to: "a"), ceilings: [:])
        #expect(try await fixture.router.deliver(fixture.message("hi", from: "e")) == .pairingCode)
        _ = try await fixture.desk.deny(code: try fixture.lastCode(to: "b"))
        guard case .refused(let reason) = try await fixture.router.deliver(fixture.message("hi", from: "f")) else {
            Issue.record("the hourly cap was not applied")
            return
        }
        #expect(reason.contains("this hour"))
        #expect(fixture.base.model.requests.isEmpty)
    }

    @Test("a pairing row changed in moat.db (another sender) is refused and admits nobody")
    func tamperedPairing() async throws {
        let fixture = try ChannelFixture()
        try await fixture.router.deliver(fixture.message("hi", from: "victim"))
        let code = try fixture.lastCode(to: "victim")
        try fixture.base.sql("UPDATE channel_codes SET sender_id = 'mallory'")
        do {
            _ = try await fixture.desk.approve(code: code, ceilings: [:])
            Issue.record("a tampered pairing was approved")
        } catch let error as ChannelError {
            #expect(error.message.contains("integrity"))
        }
        #expect(try await fixture.base.policy.contacts().isEmpty)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "mallory") == nil)
    }
}

@Suite struct OwnerBindingTests {
    @Test("the owner's account is bound only by the terminal's code; wrong guesses withdraw it; unbind undoes it")
    func bindAndUnbind() async throws {
        let fixture = try ChannelFixture(settings: PairingSettings(wrongBindCodes: 3))
        let pending = try await fixture.desk.beginBinding(channel: "testchat")
        // Guesses from someone else: counted, and the third withdraws the code.
        for guess in ["AAAA-AAAA", "BBBB-BBBB"] {
            #expect(try await fixture.router.deliver(fixture.message(guess, from: "mallory")) != .ownerBound)
        }
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "mallory") == nil)
        // The right code from the owner's account binds it.
        #expect(try await fixture.router.deliver(fixture.message(pending.code, from: "me")) == .ownerBound)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "me") == .owner)
        // Used once: the same code again is an ordinary owner message now, not a second binding.
        #expect(try await fixture.router.deliver(fixture.message(pending.code, from: "mallory")) == .pairingCode)
        try await fixture.base.policy.unbindOwner(channel: "testchat")
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "me") == nil)
        let actions = try fixture.base.auditActions()
        #expect(actions.contains("channel.bind.begin") && actions.contains("channel.owner.bind"))
        #expect(actions.contains("channel.owner.unbind") && actions.contains("channel.bind.wrong"))
        // Three wrong codes withdraw a pending binding.
        let second = try await fixture.desk.beginBinding(channel: "testchat")
        for guess in ["AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC"] {
            _ = try await fixture.router.deliver(fixture.message(guess, from: "mallory"))
        }
        #expect(try await fixture.router.deliver(fixture.message(second.code, from: "me")) != .ownerBound)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "me") == nil)
    }

    @Test("an owner binding changed in moat.db makes nobody the owner")
    func tamperedBinding() async throws {
        let fixture = try ChannelFixture()
        let pending = try await fixture.desk.beginBinding(channel: "testchat")
        _ = try await fixture.router.deliver(fixture.message(pending.code, from: "me"))
        try fixture.base.sql("UPDATE policy_owner_bindings SET sender_id = 'mallory'")
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "mallory") == nil)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "me") == nil)
    }

    @Test("webhooks and the owner's own channel cannot be bound")
    func unbindable() async throws {
        let fixture = try ChannelFixture()
        for channel in ["webhook:sms", "owner", "Telegram", ""] {
            await #expect(throws: ChannelError.self) { try await fixture.desk.beginBinding(channel: channel) }
        }
    }

    @Test("approval taps: refused from any other account, run exactly once from the owner's bound account")
    func approvalTaps() async throws {
        let tool = TestTool("lights", domain: .integrations)
        let fixture = try ChannelFixture(tools: [tool], trust: [.integrations: .actAndReport])
        try await fixture.router.deliver(fixture.message("hi", from: "alice"))
        _ = try await fixture.desk.approve(
            code: try fixture.lastCode(to: "alice"), ceilings: [.integrations: .suggest])
        let bind = try await fixture.desk.beginBinding(channel: "testchat")
        #expect(try await fixture.router.deliver(fixture.message(bind.code, from: "me")) == .ownerBound)
        try await fixture.router.deliver(fixture.message(#"CALL lights {"target":"porch"}"#, from: "alice"))
        // The turn is over once the model has answered the held call.
        try await fixture.eventually { fixture.adapter.sent.contains { $0.text.hasPrefix("done: Held") } }
        let approval = try #require(try await fixture.base.policy.approvals(pendingOnly: true).first)
        // The prompt goes to the owner's bound account, bound to this approval.
        let notifier = ChannelOwnerNotifier(next: NoticeRecorder(), policy: fixture.base.policy)
        notifier.attach(fixture.router)
        await notifier.notify(
            OwnerNotice(
                kind: .approvalPending, conversationID: "testchat:dm-alice", approvalID: approval.id,
                text: "lights on porch waits for your approval \(approval.id)"))
        let prompt = try #require(fixture.adapter.sent.last { $0.recipient == "me" })
        guard case .approvalPrompt(let details) = prompt.kind else {
            Issue.record("the owner got no approval prompt")
            return
        }
        #expect(details.approveReference == "approve \(approval.id)" && details.denyReference == "deny \(approval.id)")
        #expect(details.domain == "integrations" && details.level == 2 && prompt.conversation == "dm-me")
        // The contact itself, and a stranger, tap Approve: refused, and the model never sees it.
        let requestsBefore = fixture.base.model.requests.count
        for sender in ["alice", "stranger"] {
            guard
                case .refused = try await fixture.router.deliver(
                    fixture.message("approve \(approval.id)", from: sender))
            else {
                Issue.record("an approval from \(sender) was taken")
                return
            }
        }
        #expect(tool.ran.isEmpty)
        #expect(fixture.base.model.requests.count == requestsBefore)
        // The owner's bound account: claimed at once, then run once in the background; a second decision is
        // refused whether it comes while the call runs or after.
        #expect(
            try await fixture.router.deliver(fixture.message("approve \(approval.id)", from: "me")) == .ownerCommand)
        guard case .refused = try await fixture.router.deliver(fixture.message("Approve \(approval.id)", from: "me"))
        else {
            Issue.record("a second decision of the same approval was taken")
            return
        }
        try await fixture.eventually { fixture.adapter.sent.contains { $0.text == "Approved \(approval.id)." } }
        #expect(tool.ran.count == 1)
        guard case .refused = try await fixture.router.deliver(fixture.message("deny \(approval.id)", from: "me"))
        else {
            Issue.record("a decided approval was decided again")
            return
        }
        #expect(tool.ran.count == 1)
        #expect(fixture.adapter.sent.last { $0.recipient == "me" }?.text.hasPrefix("Not done") == true)
    }
}

@Suite struct ChannelCursorTests {
    @Test("across a restart nothing is lost or handled twice: the cursor is saved after each message")
    func restart() async throws {
        let script = (0..<4).map { TestAdapter.message($0, "message \($0)", from: "me") }
        let first = TestAdapter(script: Array(script.prefix(2)), failFirstRuns: 2)
        let fixture = try ChannelFixture(adapter: first, running: false)
        try await fixture.bindOwner()
        // The adapter fails twice (the supervisor backs off and runs it again), then delivers both messages.
        let service = Task { await fixture.router.run() }
        try await fixture.eventually { first.sent.filter { $0.text.hasPrefix("done: ") }.count == 2 }
        service.cancel()
        await service.value
        #expect(first.runs == 3)
        #expect(try await fixture.router.savedCursor(channel: "testchat") == "2")
        // A crash after message 1 was recorded but before its cursor was saved: the platform sends it again.
        try await fixture.router.advance(channel: "testchat", to: "1")
        let second = TestAdapter(script: script)
        let restarted = try ChannelRouter(
            adapters: [second], database: fixture.base.database, policy: fixture.base.policy, pairing: fixture.desk,
            turns: AgentChannelTurns(agent: fixture.base.agent))
        let again = Task { await restarted.run() }
        try await fixture.eventually { second.sent.filter { $0.text.hasPrefix("done: ") }.count == 2 }
        try await fixture.eventually { (try? fixture.base.count("agent_inbound")) == 4 }
        again.cancel()
        await again.value
        #expect(second.sent.map(\.text).filter { $0.hasPrefix("done: ") } == ["done: message 2", "done: message 3"])
        #expect(fixture.base.model.requests.count == 4)
        #expect(try fixture.base.count("agent_inbound") == 4)
        #expect(try await restarted.savedCursor(channel: "testchat") == "4")
    }

    @Test(
        "a running router stops an adapter and starts its successor (a config reload): the successor goes on from the saved cursor, nothing lost or handled twice; a second adapter for a running channel is refused"
    )
    func liveRestart() async throws {
        let script = (0..<4).map { TestAdapter.message($0, "message \($0)", from: "me") }
        let first = TestAdapter(script: Array(script.prefix(2)))
        let fixture = try ChannelFixture(adapter: first, running: false)
        try await fixture.bindOwner()
        let service = Task { await fixture.router.run() }
        try await fixture.eventually { first.sent.filter { $0.text.hasPrefix("done: ") }.count == 2 }
        #expect(throws: ChannelError.self) { try fixture.router.start(TestAdapter(script: script)) }
        #expect(await fixture.router.stop(channel: "testchat"))
        #expect(fixture.router.channels.isEmpty)
        #expect(await fixture.router.stop(channel: "testchat") == false)
        // Stopped: a message for the channel is not taken in (it stays on the platform for the next adapter).
        await #expect(throws: ChannelError.self) { try await fixture.router.deliver(script[2]) }
        let second = TestAdapter(script: script)
        try fixture.router.start(second)
        #expect(fixture.router.channels == ["testchat"])
        try await fixture.eventually { second.sent.filter { $0.text.hasPrefix("done: ") }.count == 2 }
        try await fixture.eventually { (try? fixture.base.count("agent_inbound")) == 4 }
        service.cancel()
        await service.value
        #expect(second.sent.map(\.text).filter { $0.hasPrefix("done: ") } == ["done: message 2", "done: message 3"])
        #expect(first.sent.map(\.text).filter { $0.hasPrefix("done: ") } == ["done: message 0", "done: message 1"])
        #expect(fixture.base.model.requests.count == 4)
        #expect(try await fixture.router.savedCursor(channel: "testchat") == "4")
    }

    @Test(
        "an adapter stopped before the router ran returns at once and never runs; after run() ended, stop returns and start is refused",
        .timeLimit(.minutes(1)))
    func stopBeforeRun() async throws {
        let never = TestAdapter(script: [TestAdapter.message(0, "never handled", from: "me")])
        let fixture = try ChannelFixture(adapter: never, running: false)
        #expect(await fixture.router.stop(channel: "testchat"))
        #expect(fixture.router.channels.isEmpty)
        // The job stays queued: when run() gets to it, the adapter does not start.
        let later = TestAdapter(channel: "other")
        try fixture.router.start(later)
        let service = Task { await fixture.router.run() }
        // run() takes the jobs in the order they were queued: the stopped adapter's came first and ran nothing.
        try await fixture.eventually { later.runs == 1 }
        #expect(never.runs == 0)
        service.cancel()
        await service.value
        // run() ended with the other adapter still registered: stopping it does not wait forever, and an
        // adapter started now is refused instead of left waiting for a run() that is over.
        #expect(await fixture.router.stop(channel: "other"))
        #expect(throws: ChannelError.self) { try fixture.router.start(TestAdapter(script: [])) }
        #expect(fixture.router.channels.isEmpty && fixture.router.health.isEmpty)
    }
}

/// What the owner's overview reads of each running channel (`ChannelRouter.health`).
@Suite struct ChannelHealthTests {
    /// A platform that refuses while `down`, then answers: each run reports it was reached, then waits.
    final class FlakyPlatform: ChannelAdapter {
        let channel = "testchat"
        let down = Atomic(true)

        func run(inbox: any ChannelInbox) async throws {
            if down.load(ordering: .sequentiallyConsistent) {
                throw ChannelError(.unauthorized, "the platform refused the credential in vault secret TEST_TOKEN")
            }
            inbox.reached(channel: channel)
            try await Task.sleep(for: .seconds(3600))
        }

        func send(_ message: OutboundMessage) async throws {}
    }

    @Test(
        "a channel is starting until its platform answers, reconnecting after a failure (why, and the wait), connected once it answers, and gone when stopped"
    )
    func states() async throws {
        let platform = FlakyPlatform()
        let fixture = try ChannelFixture(adapter: TestAdapter(channel: "other"), running: false)
        #expect(fixture.router.health.map(\.channel) == ["other"])
        try fixture.router.start(platform)
        let started = try #require(fixture.router.health.last)
        #expect(started.channel == "testchat" && started.state == .starting && started.lastContact == nil)

        let service = Task { await fixture.router.run() }
        try await fixture.eventually { fixture.router.health.last?.state == .reconnecting }
        let failing = try #require(fixture.router.health.last)
        #expect(failing.problem?.contains("refused the credential in vault secret TEST_TOKEN") == true)
        #expect(failing.retryIn != nil && failing.lastContact == nil)

        platform.down.store(false, ordering: .sequentiallyConsistent)
        try await fixture.eventually { fixture.router.health.last?.state == .connected }
        let connected = try #require(fixture.router.health.last)
        #expect(connected.problem == nil && connected.lastContact != nil)

        #expect(await fixture.router.stop(channel: "testchat"))
        #expect(fixture.router.health.map(\.channel) == ["other"])
        service.cancel()
        await service.value
    }
}
