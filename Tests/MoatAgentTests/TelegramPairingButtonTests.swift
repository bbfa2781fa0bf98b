import Foundation
import MoatAgent
import MoatCore
import MoatPolicy
import MoatTestSupport
import Testing

@testable import MoatChannels

@Suite struct TelegramPairingButtonTests {
    typealias Users = TelegramAdapterTests

    @Test(
        "a pairing notice carries Let in/Deny buttons bound to the request; only the owner's tap lets in, once"
    )
    func pairingButtons() async throws {
        let fixture = try await TelegramChannelFixture()
        defer { Task { await fixture.telegram.stop() } }
        let service = Task { await fixture.router.run() }
        let bind = try await fixture.desk.beginBinding(channel: "telegram")
        fixture.telegram.sendPrivateMessage(from: Users.owner, text: bind.code)
        try await fixture.eventually { fixture.texts(to: Users.owner).count == 1 }
        fixture.telegram.sendPrivateMessage(from: Users.alice, text: "hello?")
        try await fixture.eventually { fixture.texts(to: Users.alice).count == 1 }
        let pending = try #require(try await fixture.desk.pending().first { $0.senderID == String(Users.alice.id) })
        // The notice as `moat serve` sends it: the owner's bound chat, with one button per choice.
        let notifier = ChannelOwnerNotifier(next: NoticeRecorder(), policy: fixture.base.policy)
        notifier.attach(fixture.router)
        await notifier.notifyPairing(pending, logText: "asks to pair", ownerText: "Alice asks to pair")
        try await fixture.eventually { fixture.telegram.sentMessages.contains { $0.markup != nil } }
        let notice = try #require(fixture.telegram.sentMessages.last { $0.markup != nil })
        #expect(notice.chatID == Users.owner.id)
        let markup = try #require(notice.markup)
        for choice in ["chat", "suggest", "deny"] { #expect(markup.contains("\"pair:\(choice):\(pending.id)\"")) }
        #expect(markup.contains("Let in (chat only)") && markup.contains("Let in (suggest)") && markup.contains("Deny"))
        // The data refers to the request, never to its code.
        #expect(
            !markup.contains(pending.code) && !markup.contains(pending.code.replacingOccurrences(of: "-", with: "")))
        // Mallory writes (a pairing code for her), then taps forged data under her own message: refused.
        fixture.telegram.sendPrivateMessage(from: Users.mallory, text: "hi")
        try await fixture.eventually { fixture.texts(to: Users.mallory).count == 1 }
        let hers = try #require(fixture.telegram.sentMessages.last { $0.chatID == Users.mallory.id })
        fixture.telegram.tap(by: Users.mallory, messageID: hers.id, data: "pair:suggest:\(pending.id)")
        try await fixture.eventually { fixture.texts(to: Users.mallory).count == 2 }
        #expect(fixture.texts(to: Users.mallory).last == "Only the owner's bound account can let someone in.")
        // The router tells her before it returns; the tap's answer follows.
        try await fixture.eventually { fixture.tapAnswers.count == 1 }
        #expect(fixture.tapAnswers.last??.hasPrefix("Not done") == true)
        // A malformed reference is not one of Moat's buttons.
        fixture.telegram.tap(by: Users.owner, messageID: notice.id, data: "pair:chat:\(pending.id.uppercased())")
        try await fixture.eventually { fixture.tapAnswers.count == 2 }
        #expect(fixture.tapAnswers.last == "This button is not one of Moat's.")
        #expect(try await fixture.base.policy.contacts().isEmpty)
        // The owner's tap: answered, the buttons go, Alice is a contact with the chat-only preset and told so.
        fixture.telegram.tap(by: Users.owner, messageID: notice.id, data: "pair:chat:\(pending.id)")
        try await fixture.eventually { fixture.tapAnswers.count == 3 }
        #expect(fixture.tapAnswers.last == "Let in")
        try await fixture.eventually { fixture.telegram.sentMessages.first { $0.id == notice.id }?.markup == nil }
        let grant = try #require(try await fixture.base.policy.contacts().first)
        #expect(grant.senderID == String(Users.alice.id))
        #expect(TrustDomain.allCases.allSatisfy { (grant.ceilings[$0] ?? .none) == OwnerPairingPreset.chatOnly[$0] })
        try await fixture.eventually { fixture.texts(to: Users.alice).count == 2 }
        #expect(fixture.texts(to: Users.alice).last?.hasPrefix("The owner approved you") == true)
        // The same tap again (a replay): told, nothing changes.
        fixture.telegram.tap(by: Users.owner, messageID: notice.id, data: "pair:suggest:\(pending.id)")
        try await fixture.eventually { fixture.tapAnswers.count == 4 }
        #expect(fixture.tapAnswers.last??.contains("no longer pending") == true)
        #expect(try await fixture.base.policy.contacts().count == 1)
        // Alice's next message is answered.
        fixture.telegram.sendPrivateMessage(from: Users.alice, text: "now?")
        try await fixture.eventually { fixture.texts(to: Users.alice).count == 3 }
        #expect(fixture.texts(to: Users.alice).last == "done: now?")
        service.cancel()
        await service.value
    }
}
