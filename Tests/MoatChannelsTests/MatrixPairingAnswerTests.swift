import Foundation
import MoatCore
import Testing

@testable import MoatChannels

@Suite struct MatrixPairingAnswerTests {
    typealias Inbound = MatrixAdapterInboundTests

    @Test("✅/❌ on a pairing notice in its room becomes the request's chat-only or deny reference, never the code")
    func pairingReactions() async throws {
        let (adapter, home) = try Inbound.adapter()
        defer { _ = home }
        let reference = String(repeating: "ab", count: 16)
        let prompt = PairingPrompt(reference: reference, channel: "matrix", senderID: "@alice:localhost")
        adapter.prompts.remember(
            event: "$pairing", room: "!owner", approve: prompt.text(.chat), deny: prompt.text(.deny))
        let inbox = Inbound.Inbox()
        for event in [
            Inbound.reaction("✅", on: "$pairing"), Inbound.reaction("👎", on: "$pairing"),
            Inbound.reaction("✅", on: "$pairing", in: "!stranger"), Inbound.reaction("🎉", on: "$pairing"),
        ] {
            try await adapter.take(event, into: inbox)
        }
        #expect(inbox.delivered.map(\.text) == ["pairing \(reference) chat", "pairing \(reference) deny"])
        #expect(PairingCommand(inbox.delivered[0].text)?.action == .approve(OwnerPairingPreset.chatOnly))
        #expect(PairingCommand(inbox.delivered[1].text)?.action == .deny)
        #expect(MatrixAdapter.pairingInstructions.contains("pair CODE"))
    }
}
