import Foundation
import MoatTestSupport
import Testing

/// Pairing approved by a tap in the owner's Telegram chat, through the real `moat serve`.
@Suite struct TelegramPairingServeTests {
    typealias T = TelegramServeTests

    @Test(
        "moat serve: a stranger gets a code, the owner's notice has Let in/Deny, the owner's tap lets them in and they are answered"
    )
    func pairingByTap() async throws {
        let model = try await ScriptedModelServer.start(replies: [.text("Hello Alice.")])
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        let home = try await T.home(model: model, telegram: telegram, token: telegram.token)
        let (server, bindCode) = try await ChannelServeHome.servedForApprovals(home: home, channel: "telegram")
        telegram.sendPrivateMessage(from: T.owner, text: bindCode)
        try await T.eventually { T.texts(telegram, to: T.owner).count == 1 }
        // Alice writes: a code for her, and a notice with the three buttons for the owner.
        telegram.sendPrivateMessage(from: T.alice, text: "hi, may I talk to your assistant?")
        try await T.eventually { telegram.sentMessages.contains { $0.chatID == T.owner.id && $0.markup != nil } }
        let code = try #require(T.texts(telegram, to: T.alice).first.flatMap(T.code(in:)))
        let notice = try #require(telegram.sentMessages.last { $0.chatID == T.owner.id && $0.markup != nil })
        let markup = try #require(notice.markup)
        let range = try #require(markup.range(of: #"pair:chat:[0-9a-f]{32}"#, options: .regularExpression))
        let data = String(markup[range])
        #expect(markup.contains("Let in (suggest)") && markup.contains("Deny"))
        #expect(!markup.contains(code) && !markup.contains(code.replacingOccurrences(of: "-", with: "")))
        #expect(model.requests.isEmpty)
        // Mallory forges the tap under her own code message: refused, Alice is not let in.
        telegram.sendPrivateMessage(from: T.mallory, text: "hello")
        try await T.eventually { T.texts(telegram, to: T.mallory).count == 1 }
        let hers = try #require(telegram.sentMessages.last { $0.chatID == T.mallory.id })
        telegram.tap(by: T.mallory, messageID: hers.id, data: data)
        try await T.eventually { T.texts(telegram, to: T.mallory).count == 2 }
        #expect(T.texts(telegram, to: T.mallory).last == "Only the owner's bound account can let someone in.")
        // The owner taps "Let in (chat only)": Alice is told, and her next message is answered.
        telegram.tap(by: T.owner, messageID: notice.id, data: data)
        try await T.eventually { T.texts(telegram, to: T.alice).count == 2 }
        #expect(T.texts(telegram, to: T.alice).last?.hasPrefix("The owner approved you") == true)
        try await T.eventually { telegram.sentMessages.first { $0.id == notice.id }?.markup == nil }
        telegram.sendPrivateMessage(from: T.alice, text: "what's new?")
        try await T.eventually { T.texts(telegram, to: T.alice).count == 3 }
        #expect(T.texts(telegram, to: T.alice).last == "Hello Alice.")
        #expect(model.requests.count == 1)
        // The contact has the chat-only preset; the approval is audited as the owner on telegram.
        let contacts = try await MoatBinary.run(["contact", "list"], home: home.path)
        #expect(contacts.stdout.contains(String(T.alice.id)), "\(contacts.stdout)")
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(audit.stdout.contains("pairing.approve") && audit.stdout.contains("owner@telegram"), "\(audit.stdout)")
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(code) && !log.contains(code.replacingOccurrences(of: "-", with: "")))
    }
}
