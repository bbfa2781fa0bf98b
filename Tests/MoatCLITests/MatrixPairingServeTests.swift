import Foundation
import MoatTestSupport
import Testing

/// Pairing approved by a ✅ in the owner's Matrix chat, through the real `moat serve` and a real Synapse.
@Suite(.serialized, .synapseSerial, .tags(.slow)) struct MatrixPairingServeTests {
    typealias M = MatrixServeTests

    @Test(
        "moat serve + Synapse: a stranger gets a code, the owner's ✅ on the pairing notice lets them in, and they are answered"
    )
    func pairingByReaction() async throws {
        let synapse = try await SynapseHomeserver.startForTest()
        let model = try await ScriptedModelServer.start(replies: [.text("Hello Alice.")])
        defer { Task { await model.stop() } }
        let bot = try await synapse.register("moat", password: "bot-password")
        let owner = try await synapse.register("olivia", password: "olivia-password")
        let alice = try await synapse.register("alice", password: "alice-password")
        let home = try await M.home(model: model, server: synapse, bot: bot)
        let (server, bindCode) = try await ChannelServeHome.servedForApprovals(home: home, channel: "matrix")
        let ownerChat = try await M.directChat(owner, with: bot)
        try await owner.send(bindCode, to: ownerChat.room)
        try await ownerChat.wait(for: 1, "the binding's confirmation")
        // Alice writes: a code for her, a notice with how to answer for the owner.
        let aliceChat = try await M.directChat(alice, with: bot)
        try await alice.send("hi, may I talk to your assistant?", to: aliceChat.room)
        try await aliceChat.wait(for: 1, "the pairing code")
        try await ownerChat.wait(for: 2, "the pairing notice")
        let notice = ownerChat.texts[1]
        #expect(notice.contains("asks to pair") && notice.contains("React ✅ to let them in"), "\(notice)")
        let noticeEvent = try #require(ownerChat.received[1]["event_id"] as? String)
        #expect(model.requests.isEmpty)
        // The owner's ✅: Alice is a contact with the chat-only preset, told so, and answered next time.
        try await owner.react("✅", to: noticeEvent, in: ownerChat.room)
        try await ownerChat.wait(for: 3, "the owner's confirmation")
        #expect(ownerChat.texts[2].hasPrefix("Let in:") && ownerChat.texts[2].contains("messaging 1"))
        try await aliceChat.wait(for: 2, "the approval")
        #expect(aliceChat.texts[1].hasPrefix("The owner approved you"), "\(aliceChat.texts)")
        try await alice.send("what's new?", to: aliceChat.room)
        try await aliceChat.wait(for: 3, "the answer")
        #expect(aliceChat.texts[2] == "Hello Alice.")
        #expect(model.requests.count == 1)
        // A later ❌ on the decided notice (Synapse refuses the same reaction twice) does nothing and says so.
        try await owner.react("❌", to: noticeEvent, in: ownerChat.room)
        try await ownerChat.wait(for: 4, "the answer to a replay")
        #expect(ownerChat.texts[3].hasPrefix("Not done"), "\(ownerChat.texts)")
        let (status, _) = await server.stop()
        #expect(status == 0)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
        await synapse.stop()
    }
}
