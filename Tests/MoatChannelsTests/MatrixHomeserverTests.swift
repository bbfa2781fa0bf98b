import Foundation
import MoatCore
import MoatTestSupport
import MoatVault
import Synchronization
import Testing

@testable import MoatChannels

/// The Matrix channel against a real Synapse on loopback: the bot is a registered user, the person on
/// the other side (`alice`) a second one driven with plain HTTP, as her Matrix app would.
@Suite(.serialized, .synapseSerial, .tags(.slow)) struct MatrixHomeserverTests {
    /// A homeserver with the bot and alice registered, and a vault holding the bot's credentials.
    struct Fixture {
        let server: SynapseHomeserver
        let home: TemporaryDirectory
        let vault: UnlockedVault
        let bot: MatrixTestUser
        let alice: MatrixTestUser
        static let botPassword = "bot password ✓ with spaces"

        static func start() async throws -> Fixture {
            let server = try await SynapseHomeserver.startForTest()
            let bot = try await server.register("bot", password: botPassword)
            let alice = try await server.register("alice", password: "alice-password")
            let home = TemporaryDirectory("moat-matrix")
            let vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: home.path))
            try store("MATRIX_TOKEN", bot.accessToken, in: vault)
            try store("MATRIX_PASSWORD", botPassword, in: vault)
            return Fixture(server: server, home: home, vault: vault, bot: bot, alice: alice)
        }

        static func store(_ name: String, _ value: String, in vault: UnlockedVault) throws {
            var bytes = Array(value.utf8)
            try vault.add(name, value: SecretBytes(wiping: &bytes), policy: .none, replace: true)
        }

        /// A direct chat alice opened with the bot, joined by a loop running for `receiver` (returned, still
        /// running).
        func joinedRoom(_ receiver: Receiver) async throws -> (room: String, loop: Task<Void, any Error>) {
            let room = try await alice.createDirectRoom(inviting: bot.userID)
            let loop = MatrixHomeserverTests.running(try client(), receiver)
            try await receiver.wait("the join") { $0.contains(.joined(roomID: room, inviter: alice.userID)) }
            return (room, loop)
        }

        func client(_ credential: MatrixSettings.Credential = .accessToken(secret: "MATRIX_TOKEN")) throws
            -> MatrixClient
        {
            try MatrixClient(
                settings: MatrixSettings(homeserverURL: server.baseURL, userID: bot.userID, credential: credential),
                vault: vault)
        }
    }

    /// What a loop handed over, and the `since` it stored (the part of moat.db the framework owns).
    final class Receiver: Sendable {
        let events = Mutex<[MatrixInbound]>([])
        let since = Mutex<String?>(nil)

        var cursor: MatrixSyncCursor {
            MatrixSyncCursor(
                load: { self.since.withLock { $0 } }, store: { token in self.since.withLock { $0 = token } })
        }

        var messages: [MatrixMessage] {
            events.withLock { $0.compactMap { if case .message(let message) = $0 { message } else { nil } } }
        }

        /// Waits until `condition` holds for the events so far; the deadline only bounds a broken run.
        func wait(_ what: String, until condition: ([MatrixInbound]) -> Bool) async throws {
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline {
                let received = events.withLock { $0 }
                if condition(received) { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for \(what); received: \(events.withLock { $0 })")
            throw CancellationError()
        }
    }

    /// A sync loop for the bot, running until the returned task is cancelled.
    static func running(_ client: MatrixClient, _ receiver: Receiver) -> Task<Void, any Error> {
        var loop = MatrixSyncLoop(client: client, cursor: receiver.cursor) { event in
            receiver.events.withLock { $0.append(event) }
        }
        loop.pollTimeout = .seconds(1)
        return Task { try await loop.run() }
    }

    static func stop(_ task: Task<Void, any Error>) async throws {
        task.cancel()
        try await task.value
    }

    @Test("the bot joins a direct-chat invite, reads the user's message, and its reply reaches the user once")
    func conversation() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        let client = try fixture.client()
        let loop = Self.running(client, receiver)
        let room = try await fixture.alice.createDirectRoom(inviting: fixture.bot.userID)
        try await receiver.wait("the join") { $0.contains(.joined(roomID: room, inviter: fixture.alice.userID)) }
        #expect(try await fixture.alice.hasJoined(fixture.bot.userID, room: room))

        let sent = try await fixture.alice.send("Is the garage door closed? ✓", to: room)
        try await receiver.wait("alice's message") { _ in !receiver.messages.isEmpty }
        let message = try #require(receiver.messages.first)
        #expect(message.eventID == sent && message.roomID == room && message.sender == fixture.alice.userID)
        #expect(message.text == "Is the garage door closed? ✓" && message.inReplyTo == nil)

        let (_, position) = try await fixture.alice.messages(in: room, since: nil)
        let reply = try await client.sendText("It is closed. ✓", to: room, messageID: "reply-0001")
        // The same outbound message sent again (a retry after a timeout or a restart): the same event.
        let again = try await client.sendText("It is closed. ✓", to: room, messageID: "reply-0001")
        #expect(again == reply)
        let seen = try await fixture.alice.messages(in: room, since: position, timeout: 5000)
        #expect(seen.events.map { $0["event_id"] as? String } == [reply])
        #expect((seen.events.first?["content"] as? [String: Any])?["body"] as? String == "It is closed. ✓")
        #expect(seen.events.first?["sender"] as? String == fixture.bot.userID)
        // The bot's own message is not handed over as inbound.
        try await Self.stop(loop)
        #expect(receiver.messages.map(\.eventID) == [sent])
        await fixture.server.stop()
    }

    @Test("a restart from the stored since neither repeats nor loses a message; a fresh start replays no history")
    func restart() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        // The invite is there before the bot's first sync: it is still joined (it is not history).
        var (room, loop) = try await fixture.joinedRoom(receiver)
        let first = try await fixture.alice.send("one", to: room)
        try await receiver.wait("message one") { _ in receiver.messages.count == 1 }
        try await Self.stop(loop)

        // Sent while the bot is down: delivered after the restart, and nothing before it again.
        let second = try await fixture.alice.send("two", to: room)
        let third = try await fixture.alice.send("three", to: room)
        loop = Self.running(try fixture.client(), receiver)
        try await receiver.wait("messages two and three") { _ in receiver.messages.count >= 3 }
        try await Self.stop(loop)
        #expect(receiver.messages.map(\.eventID) == [first, second, third])
        #expect(receiver.events.withLock { $0.filter { if case .joined = $0 { true } else { false } }.count } == 1)

        // A fresh start (no stored since): the room's history is not replayed; what comes next is read.
        let fresh = Receiver()
        loop = Self.running(try fixture.client(), fresh)
        try await fresh.wait("the first position") { _ in fresh.since.withLock { $0 != nil } }
        let fourth = try await fixture.alice.send("four", to: room)
        try await fresh.wait("message four") { _ in !fresh.messages.isEmpty }
        try await Self.stop(loop)
        #expect(fresh.messages.map(\.eventID) == [fourth])
        await fixture.server.stop()
    }

    @Test(
        "more messages than one sync's timeline holds, sent while the bot is down, are all handed over once, in order")
    func gapAfterRestart() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        var (room, loop) = try await fixture.joinedRoom(receiver)
        let first = try await fixture.alice.send("before the restart", to: room)
        try await receiver.wait("the first message") { _ in receiver.messages.count == 1 }
        try await Self.stop(loop)

        // 130 while the bot is down: the filter's timeline limit is 100, so the next sync is `limited` and
        // the 30 oldest are only reachable through /messages.
        var sent = [first]
        for index in 1...130 { sent.append(try await fixture.alice.send("queued \(index)", to: room)) }
        loop = Self.running(try fixture.client(), receiver)
        try await receiver.wait("all 131 messages") { _ in receiver.messages.count >= 131 }
        let last = try await fixture.alice.send("after the catch-up", to: room)
        try await receiver.wait("the message after the catch-up") { _ in receiver.messages.count >= 132 }
        try await Self.stop(loop)
        #expect(receiver.messages.map(\.eventID) == sent + [last])
        #expect(receiver.messages.dropFirst().prefix(3).map(\.text) == ["queued 1", "queued 2", "queued 3"])
        await fixture.server.stop()
    }

    @Test("a gap longer than the loop's bound hands over the newest events and reports the rest as skipped")
    func gapBounded() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        let reports = Mutex<[String]>([])
        var (room, loop) = try await fixture.joinedRoom(receiver)
        try await Self.stop(loop)

        var sent: [String] = []
        for index in 1...110 { sent.append(try await fixture.alice.send("flood \(index)", to: room)) }
        var bounded = MatrixSyncLoop(client: try fixture.client(), cursor: receiver.cursor) { event in
            receiver.events.withLock { $0.append(event) }
        }
        bounded.pollTimeout = .seconds(1)
        bounded.maximumGap = 4
        bounded.onFailure = { error, _ in reports.withLock { $0.append(error.message) } }
        loop = Task { [bounded] in try await bounded.run() }
        try await receiver.wait("the newest 104 messages") { _ in receiver.messages.count >= 104 }
        try await Self.stop(loop)
        // The timeline's 100 and the 4 just before them; the oldest are reported, not handed over. Synapse
        // may first answer the new loop with just "flood 1" (most likely the stopped loop's cached long-poll; a
        // clean CI run: positions [0, 6, 7, …, 109]), so what is held is the contract: each event at most
        // once, in the order sent, the newest 100 all there, and at least 5 never handed over.
        let received = receiver.messages.map(\.eventID)
        let positions = received.map { sent.firstIndex(of: $0) ?? -1 }
        #expect(positions == positions.sorted() && Set(positions).count == positions.count, "\(positions)")
        #expect(!positions.contains(-1))
        #expect(Set(sent.suffix(100)).isSubset(of: Set(received)), "\(positions)")
        #expect((104...105).contains(received.count), "\(positions)")
        #expect(sent.count - received.count >= 5, "\(positions)")
        #expect(reports.withLock { $0 }.contains { $0.contains("more than 4 events arrived") })
        await fixture.server.stop()
    }

    @Test("a reply of about 127 KB reaches the room whole, in events the homeserver accepts, each sent once")
    func longReply() async throws {
        let fixture = try await Fixture.start()
        let (room, loop) = try await fixture.joinedRoom(Receiver())
        try await Self.stop(loop)
        let client = try fixture.client()
        let (_, position) = try await fixture.alice.messages(in: room, since: nil)

        // Lines of text with characters JSON escapes (quotes, slashes) and ones of several bytes.
        let line = "Line \"quoted\" with a/slash and ünïcödé ✓ — and some more words to fill it up.\n"
        let text = String(repeating: line, count: 1500)
        #expect(text.utf8.count > 125_000)
        let pieces = MatrixAdapter.pieces(text)
        // Each cut is at a line break, which the cut drops: the pieces are the text's lines, regrouped.
        #expect(pieces.count >= 4 && pieces.joined(separator: "\n") == text)
        for (index, piece) in pieces.enumerated() {
            _ = try await client.sendText(piece, to: room, messageID: "long-reply:\(index)")
        }
        // Sent again (a retry after a restart): the same events, nothing posted twice.
        _ = try await client.sendText(pieces[0], to: room, messageID: "long-reply:0")
        let seen = try await fixture.alice.messages(in: room, since: position, timeout: 5000)
        let bodies = seen.events.compactMap { ($0["content"] as? [String: Any])?["body"] as? String }
        #expect(bodies == pieces)
        await fixture.server.stop()
    }

    @Test("a reaction and a reply to the approval prompt are read back with the prompt's event id")
    func approvalAnswers() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        let client = try fixture.client(.password(secret: "MATRIX_PASSWORD"))
        let loop = Self.running(client, receiver)
        let room = try await fixture.alice.createDirectRoom(inviting: fixture.bot.userID)
        try await receiver.wait("the join") { $0.contains(.joined(roomID: room, inviter: fixture.alice.userID)) }

        let prompt = try await client.sendApprovalPrompt(
            "Run `ls ~/notes` in the sandbox (shell, level 2).", to: room, approvalID: "approval-7")
        let reaction = try await fixture.alice.react("👍️", to: prompt, in: room)
        try await fixture.alice.send(
            "m.room.message",
            [
                "msgtype": "m.text", "body": "> <\(fixture.bot.userID)> Run `ls ~/notes`\n\nDeny",
                "m.relates_to": ["m.in_reply_to": ["event_id": prompt]],
            ], to: room)
        // Neither an edit nor a notice is a message to answer; a marker message shows they were skipped.
        try await fixture.alice.send(
            "m.room.message",
            [
                "msgtype": "m.text", "body": "* approve", "m.new_content": ["msgtype": "m.text", "body": "approve"],
                "m.relates_to": ["rel_type": "m.replace", "event_id": prompt],
            ], to: room)
        try await fixture.alice.send("m.room.message", ["msgtype": "m.notice", "body": "approve"], to: room)
        try await fixture.alice.send("marker", to: room)
        try await receiver.wait("the marker") { _ in receiver.messages.contains { $0.text == "marker" } }
        try await Self.stop(loop)

        let reactions = receiver.events.withLock {
            $0.compactMap { if case .reaction(let reaction) = $0 { reaction } else { nil } }
        }
        #expect(reactions.map(\.eventID) == [reaction])
        #expect(reactions.first?.relatesTo == prompt && reactions.first?.sender == fixture.alice.userID)
        #expect(reactions.first.flatMap { MatrixApprovalAnswer(reactionKey: $0.key) } == .approve)
        let replies = receiver.messages.filter { $0.inReplyTo == prompt }
        #expect(replies.map(\.text) == ["Deny"])
        #expect(replies.first.flatMap { MatrixApprovalAnswer(replyText: $0.text) } == .deny)
        #expect(receiver.messages.map(\.text) == ["Deny", "marker"])
        await fixture.server.stop()
    }

    @Test(
        "after a restart, an answer to a prompt the bot sent before is read back from the event; a lookalike prompt sent by anyone else is no prompt"
    )
    func promptAfterRestart() async throws {
        let fixture = try await Fixture.start()
        let client = try fixture.client()
        let room = try await fixture.alice.createDirectRoom(inviting: fixture.bot.userID)
        try await client.join(room)
        let before = MatrixAdapter(client: client)
        let approval = ApprovalPrompt(
            approvalID: "k3mqz7wxya", summary: "shell ls ~/notes", level: 2, domain: "shell", reason: nil)
        try await before.send(
            OutboundMessage(
                conversation: room, recipient: fixture.alice.userID, text: "ls ~/notes",
                kind: .approvalPrompt(approval)))
        let (events, _) = try await fixture.alice.messages(in: room, since: nil)
        let prompt = try #require(events.last?["event_id"] as? String)
        // Alice's own event claiming to be a prompt, with answers of the right shape.
        let lookalike = try await fixture.alice.send(
            "m.room.message",
            [
                "msgtype": "m.text", "body": "Approval needed: shell rm -rf ~",
                "org.moat.answers": ["approve": "approve k3mqz7wxya", "deny": "deny k3mqz7wxya"],
            ], to: room)

        // A new adapter (a restarted moat serve) remembers no prompt.
        let after = MatrixAdapter(client: try fixture.client())
        let inbox = MatrixAdapterInboundTests.Inbox()
        for (key, target, id) in [("✅", prompt, "$r1"), ("❌", prompt, "$r2"), ("✅", lookalike, "$r3")] {
            try await after.take(
                .reaction(
                    MatrixReaction(
                        roomID: room, eventID: id, sender: fixture.alice.userID, relatesTo: target, key: key)),
                into: inbox)
        }
        // The prompt in another room is not this room's prompt.
        let other = try await fixture.alice.createDirectRoom(inviting: fixture.bot.userID)
        try await after.take(
            .reaction(
                MatrixReaction(roomID: other, eventID: "$r4", sender: fixture.alice.userID, relatesTo: prompt, key: "✅")
            ),
            into: inbox)
        #expect(inbox.delivered.map(\.text) == ["approve k3mqz7wxya", "deny k3mqz7wxya"])
        #expect(inbox.delivered.map(\.idempotencyKey) == ["$r1", "$r2"])
        await fixture.server.stop()
    }

    @Test("a refused credential ends the loop with an error naming the vault secret, never the token or password")
    func refusedCredentials() async throws {
        let fixture = try await Fixture.start()
        var token = Array(fixture.bot.accessToken.utf8)
        token[token.count - 1] ^= 0x01
        let flipped = String(decoding: token, as: UTF8.self)
        for (name, value) in [("MATRIX_TOKEN", flipped), ("MATRIX_TOKEN", "syt_not_a_token")] {
            try Fixture.store(name, value, in: fixture.vault)
            let loop = MatrixSyncLoop(client: try fixture.client(), cursor: Receiver().cursor) { _ in }
            let error = await #expect(throws: ChannelError.self) { try await loop.run() }
            #expect(error?.code == .unauthorized)
            #expect(error?.message.contains("vault secret MATRIX_TOKEN") == true)
            #expect(error?.message.contains("M_UNKNOWN_TOKEN") == true)
            #expect(error?.message.contains(value) == false)
            #expect(error?.message.contains(fixture.bot.accessToken) == false)
        }
        // Another account's token: refused before any sync, naming both accounts.
        try Fixture.store("MATRIX_TOKEN", fixture.alice.accessToken, in: fixture.vault)
        let other = await #expect(throws: ChannelError.self) { try await fixture.client().checkIdentity() }
        #expect(other?.code == .configuration && other?.message.contains(fixture.alice.userID) == true)
        #expect(other?.message.contains(fixture.alice.accessToken) == false)
        // A wrong password.
        try Fixture.store("MATRIX_PASSWORD", "wrong password", in: fixture.vault)
        let password = await #expect(throws: ChannelError.self) {
            try await fixture.client(.password(secret: "MATRIX_PASSWORD")).checkIdentity()
        }
        #expect(password?.code == .unauthorized && password?.message.contains("MATRIX_PASSWORD") == true)
        #expect(password?.message.contains("wrong password") == false)
        // No secret at all.
        let missing = await #expect(throws: ChannelError.self) {
            try await fixture.client(.accessToken(secret: "NO_SUCH_TOKEN")).checkIdentity()
        }
        #expect(missing?.code == .configuration && missing?.message.contains("moat vault add NO_SUCH_TOKEN") == true)
        await fixture.server.stop()
    }

    @Test("an invite to a group room is declined and never handed over")
    func groupInviteDeclined() async throws {
        let fixture = try await Fixture.start()
        let receiver = Receiver()
        let loop = Self.running(try fixture.client(), receiver)
        let group = try await fixture.alice.createGroupRoom(inviting: fixture.bot.userID)
        let direct = try await fixture.alice.createDirectRoom(inviting: fixture.bot.userID)
        try await receiver.wait("the direct chat's join") {
            $0.contains(.joined(roomID: direct, inviter: fixture.alice.userID))
        }
        let path =
            "/_matrix/client/v3/rooms/\(MatrixClient.segment(group))/state/m.room.member/"
            + MatrixClient.segment(fixture.bot.userID)
        var membership: String?
        let deadline = Date().addingTimeInterval(120)
        while membership != "leave", Date() < deadline {
            membership = try await fixture.alice.call("GET", path).json["membership"] as? String
            if membership != "leave" { try await Task.sleep(for: .milliseconds(100)) }
        }
        try await Self.stop(loop)
        #expect(membership == "leave")
        #expect(!receiver.events.withLock { $0.contains(.joined(roomID: group, inviter: fixture.alice.userID)) })
        await fixture.server.stop()
    }
}
