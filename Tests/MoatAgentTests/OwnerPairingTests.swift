import Foundation
import MoatAgent
import MoatCore
import MoatPolicy
import Synchronization
import Testing

@testable import MoatChannels

/// Pairing decided from the owner's bound chat account: the notice's choices, taps and typed commands.
@Suite struct OwnerChatPairingTests {
    /// A fixture with "me" bound as the owner and `sender`'s pairing request sent to the owner as a notice.
    static func requested(
        by sender: String = "alice", fixture: ChannelFixture? = nil
    ) async throws -> (ChannelFixture, PendingCode, PairingPrompt) {
        let fixture = try fixture ?? ChannelFixture()
        if try await fixture.base.policy.principal(channel: "testchat", senderID: "me") != .owner {
            let bind = try await fixture.desk.beginBinding(channel: "testchat")
            #expect(try await fixture.router.deliver(fixture.message(bind.code, from: "me")) == .ownerBound)
        }
        #expect(try await fixture.router.deliver(fixture.message("hi", from: sender)) == .pairingCode)
        let pending = try #require(fixture.requests.codes.withLock { $0.last })
        let notifier = ChannelOwnerNotifier(next: NoticeRecorder(), policy: fixture.base.policy)
        notifier.attach(fixture.router)
        await notifier.notifyPairing(
            pending, logText: "\(sender) asks to pair", ownerText: "\(sender) asks to pair with \(pending.code)")
        let notice = try #require(fixture.adapter.sent.last { $0.recipient == "me" })
        guard case .pairingRequest(let prompt) = notice.kind else {
            Issue.record("the owner's notice carries no pairing choices")
            throw ChannelError(.invalidInput, "no pairing prompt")
        }
        return (fixture, pending, prompt)
    }

    static func ceilings(_ grant: ContactGrant) -> [TrustDomain: TrustLevel] {
        Dictionary(uniqueKeysWithValues: TrustDomain.allCases.map { ($0, grant.ceilings[$0] ?? .none) })
    }

    @Test("the owner's tap lets the sender in with the chat-only preset (never owner), once, and they are answered")
    func ownerTapLetsIn() async throws {
        let (fixture, pending, prompt) = try await Self.requested()
        // The buttons refer to the request, not to its code.
        #expect(prompt.reference == pending.id && prompt.senderID == "alice")
        let code = pending.code.replacingOccurrences(of: "-", with: "")
        #expect(!prompt.text(.chat).contains(code) && !prompt.text(.chat).contains(pending.code))
        #expect(
            try await fixture.router.deliver(fixture.message(prompt.text(.chat), from: "me")) == .ownerCommand)
        let grant = try #require(try await fixture.base.policy.contacts().first)
        #expect(grant.senderID == "alice" && Self.ceilings(grant) == OwnerPairingPreset.chatOnly)
        #expect(Self.ceilings(grant)[.messaging] == .inform && Self.ceilings(grant)[.shell] == TrustLevel.none)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "alice") != .owner)
        #expect(fixture.adapter.sent.last { $0.recipient == "me" }?.text.hasPrefix("Let in:") == true)
        #expect(fixture.adapter.sent.last { $0.recipient == "alice" }?.text.hasPrefix("The owner approved") == true)
        // Audited on the CLI's one path, as the owner on this channel.
        #expect(try fixture.base.count("audit_entries", "action = 'pairing.approve' AND actor = 'owner@testchat'") == 1)
        #expect(try fixture.base.count("audit_entries", "action = 'contact.add'") == 1)
        // A replayed tap (the same text again) does nothing and says so.
        guard
            case .refused(let reason) = try await fixture.router.deliver(
                fixture.message(prompt.text(.suggest), from: "me"))
        else {
            Issue.record("a replayed tap was taken")
            return
        }
        #expect(reason.contains("no longer pending"))
        #expect(try await fixture.base.policy.contacts().count == 1)
        #expect(
            Self.ceilings(try #require(try await fixture.base.policy.contacts().first)) == OwnerPairingPreset.chatOnly)
        // The sender's next message reaches the agent and is answered.
        #expect(try await fixture.router.deliver(fixture.message("what time is it", from: "alice")) == .accepted)
        try await fixture.eventually { fixture.adapter.sent.contains { $0.text == "done: what time is it" } }
        #expect(fixture.adapter.sent.contains { $0.text == "done: what time is it" && $0.recipient == "alice" })
    }

    @Test("a tap from any account but the owner's bound one is refused, audited, and lets nobody in")
    func strangerTapRefused() async throws {
        let (fixture, _, prompt) = try await Self.requested()
        for sender in ["mallory", "alice"] {
            for choice in PairingPrompt.Choice.allCases {
                guard
                    case .refused = try await fixture.router.deliver(
                        fixture.message(prompt.text(choice), from: sender))
                else {
                    Issue.record("\(sender)'s \(choice) tap was taken")
                    return
                }
            }
            #expect(fixture.adapter.sent.last { $0.recipient == sender }?.text.hasPrefix("Only the owner") == true)
        }
        #expect(try await fixture.base.policy.contacts().isEmpty)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "alice") == nil)
        #expect(fixture.base.model.requests.isEmpty)
        // One audit entry per channel and hour, however many taps.
        #expect(try fixture.base.count("audit_entries", "action = 'pairing.refused'") == 1)
        // The request is still pending: the owner's tap works afterwards.
        #expect(try await fixture.router.deliver(fixture.message(prompt.text(.suggest), from: "me")) == .ownerCommand)
        let grant = try #require(try await fixture.base.policy.contacts().first)
        #expect(Self.ceilings(grant) == OwnerPairingPreset.suggest)
        #expect(TrustDomain.allCases.allSatisfy { Self.ceilings(grant)[$0]! <= .suggest })
    }

    @Test("an expired code, a denied pairing and an unknown reference: the owner's tap does nothing and says so")
    func expiredDeniedUnknown() async throws {
        let (fixture, _, denied) = try await Self.requested(by: "bob")
        #expect(try await fixture.router.deliver(fixture.message(denied.text(.deny), from: "me")) == .ownerCommand)
        #expect(try fixture.base.count("audit_entries", "action = 'pairing.deny' AND actor = 'owner@testchat'") == 1)
        guard
            case .refused(let reason) = try await fixture.router.deliver(
                fixture.message(denied.text(.chat), from: "me"))
        else {
            Issue.record("a denied pairing was let in")
            return
        }
        #expect(reason.contains("already denied"))
        let (_, _, late) = try await Self.requested(by: "carol", fixture: fixture)
        fixture.base.advance(601)
        guard
            case .refused(let expired) = try await fixture.router.deliver(
                fixture.message(late.text(.chat), from: "me"))
        else {
            Issue.record("an expired pairing was let in")
            return
        }
        #expect(expired.contains("expired") || expired.contains("no longer pending"))
        let unknown = "pairing \(PairingCode.newID()) chat"
        guard case .refused = try await fixture.router.deliver(fixture.message(unknown, from: "me")) else {
            Issue.record("an unknown reference was taken")
            return
        }
        #expect(try await fixture.base.policy.contacts().isEmpty)
        #expect(fixture.adapter.sent.last { $0.recipient == "me" }?.text.hasPrefix("Not done") == true)
    }

    @Test("typed pair CODE DOMAIN=LEVEL sets ceilings over the chat-only preset; a mistyped one changes nothing")
    func typedPair() async throws {
        let (fixture, pending, _) = try await Self.requested()
        for typo in ["pair \(pending.code) web=9", "pair \(pending.code) shell", "pair \(pending.code) owner=4"] {
            guard case .refused = try await fixture.router.deliver(fixture.message(typo, from: "me")) else {
                Issue.record("\(typo) was taken")
                return
            }
        }
        #expect(try await fixture.base.policy.contacts().isEmpty)
        // A stranger typing the right code is refused too.
        guard
            case .refused = try await fixture.router.deliver(
                fixture.message("pair \(pending.code) shell=4", from: "mallory"))
        else {
            Issue.record("a stranger's pair command was taken")
            return
        }
        let typed = "pair \(pending.code.lowercased()) web=2 files=1"
        #expect(try await fixture.router.deliver(fixture.message(typed, from: "me")) == .ownerCommand)
        var expected = OwnerPairingPreset.chatOnly
        expected[.web] = .suggest
        expected[.files] = .inform
        #expect(Self.ceilings(try #require(try await fixture.base.policy.contacts().first)) == expected)
        // `deny CODE` denies a pairing; `deny ID` of an approval (10 characters) is still an approval's.
        let (_, other, _) = try await Self.requested(by: "bob", fixture: fixture)
        #expect(try await fixture.router.deliver(fixture.message("deny \(other.code)", from: "me")) == .ownerCommand)
        #expect(try await fixture.base.policy.principal(channel: "testchat", senderID: "bob") == nil)
        #expect(PairingCommand("deny abcdefghjk") == nil && OwnerCommand("deny abcdefghjk") != nil)
        #expect(PairingCommand("pairing \(other.id) owner") == nil)
        #expect(PairingCommand("pairing \(other.id.uppercased()) chat") == nil)
    }
}
