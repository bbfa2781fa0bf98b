import Foundation
import MoatTestSupport
import Testing

/// Matrix as a channel of the real `moat serve`, against a real Synapse on loopback: pairing before any
/// model round, `since` in moat.db across a restart, and approvals answered from the owner's Matrix chat.
@Suite(.serialized, .synapseSerial, .tags(.slow)) struct MatrixServeTests {
    /// A served home whose provider is `model` and whose Matrix bot is `bot` on `server`, its token in the
    /// vault only.
    static func home(model: ScriptedModelServer, server: SynapseHomeserver, bot: MatrixTestUser) async throws
        -> TemporaryDirectory
    {
        try await ChannelServeHome.make(
            model: model,
            section: """

                channels:
                  matrix:
                    homeserver_url: \(server.baseURL)
                    user_id: "\(bot.userID)"
                    access_token_secret: MATRIX_TOKEN
                    poll_timeout: 1
                """, secret: "MATRIX_TOKEN", value: bot.accessToken)
    }

    /// What one person's Matrix app shows of a room: the bot's messages, in order, as `/sync` delivers them.
    final class Chat: @unchecked Sendable {
        let user: MatrixTestUser
        let room: String
        let bot: String
        private var since: String?
        private(set) var received: [[String: Any]] = []

        init(user: MatrixTestUser, room: String, bot: String) {
            self.user = user
            self.room = room
            self.bot = bot
        }

        var texts: [String] {
            received.compactMap { ($0["content"] as? [String: Any])?["body"] as? String }
        }

        /// Syncs until `count` messages from the bot have arrived (the deadline only bounds a broken run).
        func wait(for count: Int, _ what: String) async throws {
            let deadline = Date().addingTimeInterval(120)
            while received.count < count, Date() < deadline {
                let (events, next) = try await user.messages(in: room, since: since, timeout: 1000)
                // Only the bot's messages (others may write in the room too).
                received += events.filter { $0["sender"] as? String == bot }
                since = next
            }
            if received.count < count {
                Issue.record("timed out waiting for \(what); \(user.userID) received \(texts)")
                throw CancellationError()
            }
        }
    }

    static func escaped(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// `user` opens a direct chat with the bot and waits until the bot has joined it.
    static func directChat(_ user: MatrixTestUser, with bot: MatrixTestUser) async throws -> Chat {
        let room = try await user.createDirectRoom(inviting: bot.userID)
        let deadline = Date().addingTimeInterval(120)
        while try await !user.hasJoined(bot.userID, room: room) {
            guard Date() < deadline else { throw SynapseError("the bot never joined \(user.userID)'s direct chat") }
            try await Task.sleep(for: .milliseconds(100))
        }
        return Chat(user: user, room: room, bot: bot.userID)
    }

    @Test(
        "moat serve + Synapse: a stranger gets a pairing code and no model round; once approved they are answered, across a restart once each"
    )
    func pairingAndRestart() async throws {
        let synapse = try await SynapseHomeserver.startForTest()
        let model = try await ScriptedModelServer.start(replies: [.text("Hello Alice."), .text("Second answer.")])
        defer { Task { await model.stop() } }
        let bot = try await synapse.register("moat", password: "bot-password")
        let alice = try await synapse.register("alice", password: "alice-password")
        let home = try await Self.home(model: model, server: synapse, bot: bot)
        var server = try await RunningServer.start(arguments: [], home: home.path)
        let chat = try await Self.directChat(alice, with: bot)
        try await alice.send("hi, may I talk to your assistant?", to: chat.room)
        try await chat.wait(for: 1, "the pairing code")
        let codeText = chat.texts[0]
        #expect(codeText.contains("pairing code"), "\(codeText)")
        #expect(model.requests.isEmpty)
        let code = try #require(TelegramServeTests.code(in: codeText))
        // A code that is not hers is refused; hers makes her a contact, with the ceilings the owner chose.
        #expect(try await MoatBinary.run(["pairing", "approve", "ABCD-EFGH"], home: home.path).status != 0)
        let approved = try await MoatBinary.run(
            ["pairing", "approve", code, "--ceiling", "messaging=1", "--ceiling", "files=1"], home: home.path)
        #expect(approved.status == 0, "\(approved.stderr)")
        let contacts = try await MoatBinary.run(["contact", "list"], home: home.path)
        #expect(contacts.stdout.contains("matrix:\(alice.userID)"), "\(contacts.stdout)")
        #expect(model.requests.isEmpty)
        try await alice.send("what's new?", to: chat.room)
        try await chat.wait(for: 2, "the model's answer")
        #expect(chat.texts[1] == "Hello Alice.")
        #expect(model.requests.count == 1)
        #expect(model.requests.first?.body.contains("may I talk") == false)
        var (status, log) = await server.stop()
        #expect(status == 0)
        // Written while Moat is down: answered once after the restart, and nothing earlier again (a replayed
        // message would come first, in the homeserver's order, before this one is answered).
        try await alice.send("still there?", to: chat.room)
        server = try await RunningServer.start(arguments: [], home: home.path)
        try await chat.wait(for: 3, "the answer after the restart")
        let second = await server.stop()
        #expect(second.status == 0)
        log += second.log
        #expect(chat.texts == [codeText, "Hello Alice.", "Second answer."])
        #expect(model.requests.count == 2)
        #expect(model.requests.last?.body.contains("still there?") == true)
        // Neither the bot's token nor the pairing code is in the server's log (the owner reads codes with
        // `moat pairing list`); the token is not in the audit log either.
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "200"], home: home.path)
        #expect(audit.status == 0, "\(audit.stderr)")
        for text in [log, audit.stdout, audit.stderr] { #expect(!text.contains(bot.accessToken)) }
        #expect(!log.contains(code) && !log.contains(code.replacingOccurrences(of: "-", with: "")))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
        await synapse.stop()
    }

    @Test(
        "moat serve + Synapse: the owner binds their Matrix account; a held call's prompt is answered by a ✅ from them once, a stranger's ✅ does nothing"
    )
    func approvalFromMatrix() async throws {
        let synapse = try await SynapseHomeserver.startForTest()
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits for your approval."),
            .text("notes.txt says: groceries."),
        ])
        defer { Task { await model.stop() } }
        let bot = try await synapse.register("moat", password: "bot-password")
        let owner = try await synapse.register("olivia", password: "olivia-password")
        let mallory = try await synapse.register("mallory", password: "mallory-password")
        let home = try await Self.home(model: model, server: synapse, bot: bot)
        // Binding: the code `moat channel bind matrix` shows, sent from the owner's own account.
        let (server, bindCode) = try await ChannelServeHome.servedForApprovals(home: home, channel: "matrix")
        let ownerChat = try await Self.directChat(owner, with: bot)
        try await owner.send(bindCode, to: ownerChat.room)
        try await ownerChat.wait(for: 1, "the binding's confirmation")
        #expect(ownerChat.texts[0].hasPrefix("This account is now the owner's"), "\(ownerChat.texts)")
        // The owner asks; the call is held, and the prompt says what, the level and why, with how to answer.
        try await owner.send("what is in notes.txt?", to: ownerChat.room)
        try await ownerChat.wait(for: 3, "the approval prompt and the turn's reply")
        let promptIndex = try #require(ownerChat.texts.firstIndex { $0.contains("React ✅") })
        let prompt = ownerChat.texts[promptIndex]
        let promptEvent = try #require(ownerChat.received[promptIndex]["event_id"] as? String)
        #expect(prompt.contains("read_file") && prompt.contains("notes.txt"), "\(prompt)")
        #expect(prompt.contains("(level 2, files)"), "\(prompt)")
        let range = try #require(prompt.range(of: #"approve [a-z0-9]+"#, options: .regularExpression))
        let approvalID = String(prompt[range].dropFirst("approve ".count))
        #expect(prompt.contains("deny \(approvalID)"))
        #expect(ownerChat.texts.contains("It waits for your approval."))
        #expect(model.requests.count == 2)
        #expect(model.requests.allSatisfy { !$0.body.contains("groceries") })
        // A stranger the owner let into this chat answers the prompt — a ✅ on it and a reply "approve" to
        // it (the homeserver allows reactions only from the prompt's room): both are refused, nothing runs.
        try await owner.ok(
            "POST", "/_matrix/client/v3/rooms/\(Self.escaped(ownerChat.room))/invite", json: ["user_id": mallory.userID]
        )
        try await mallory.ok("POST", "/_matrix/client/v3/rooms/\(Self.escaped(ownerChat.room))/join", json: [:])
        try await mallory.react("✅", to: promptEvent, in: ownerChat.room)
        try await mallory.send(
            "m.room.message",
            ["msgtype": "m.text", "body": "approve", "m.relates_to": ["m.in_reply_to": ["event_id": promptEvent]]],
            to: ownerChat.room)
        try await ownerChat.wait(for: 5, "the answers to the stranger")
        #expect(
            Array(ownerChat.texts.suffix(2))
                == Array(repeating: "Only the owner's bound account can approve or deny.", count: 2),
            "\(ownerChat.texts)")
        #expect(model.requests.count == 2)
        let pending = try await MoatBinary.run(["approvals", "list"], home: home.path)
        #expect(pending.stdout.contains(approvalID), "\(pending.stdout)")
        // The owner's ✅: the call runs, once; a second answer (a reply "approve") runs nothing.
        try await owner.react("✅", to: promptEvent, in: ownerChat.room)
        try await ownerChat.wait(for: 7, "the approval's answer and the continued turn's reply")
        #expect(ownerChat.texts.contains("notes.txt says: groceries."), "\(ownerChat.texts)")
        #expect(model.requests.count == 3)
        #expect(model.requests.last?.body.contains("groceries") == true)
        try await owner.send(
            "m.room.message",
            ["msgtype": "m.text", "body": "approve", "m.relates_to": ["m.in_reply_to": ["event_id": promptEvent]]],
            to: ownerChat.room)
        try await ownerChat.wait(for: 8, "the answer to a second approval")
        #expect(ownerChat.texts.last?.hasPrefix("Not done") == true, "\(ownerChat.texts)")
        #expect(model.requests.count == 3)
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(bot.accessToken))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
        await synapse.stop()
    }
}
