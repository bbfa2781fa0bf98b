import Foundation
import MoatTestSupport
import MoatVault
import Testing

@testable import MoatChannels

/// How the Matrix adapter cuts a long reply: every event's body, as the homeserver receives it (JSON), far
/// below Matrix's 64 KiB event limit, and nothing lost or broken at a cut.
@Suite struct MatrixAdapterTests {
    /// The body's size on the wire, measured by a real JSON encoder (not the adapter's own count).
    static func encodedSize(_ piece: String) throws -> Int {
        try JSONEncoder().encode(["body": piece]).count - #"{"body":""}"#.utf8.count
    }

    @Test("a long reply is cut into events whose JSON body fits the limit, at line breaks, with nothing lost")
    func splitsAtLines() throws {
        let line = "The garage door is closed; the lights are off. ✓ 🚪"
        let text = Array(repeating: line, count: 2000).joined(separator: "\n")  // about 110 KB
        let pieces = MatrixAdapter.pieces(text)
        #expect(pieces.count > 1)
        for piece in pieces { #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes) }
        #expect(pieces.joined(separator: "\n") == text)
        #expect(pieces.allSatisfy { $0.hasSuffix("🚪") })
    }

    @Test("characters JSON escapes (quotes, backslashes, slashes, control characters) count as their escaped size")
    func escapedCharacters() async throws {
        // Cutting 5 × 40,000 characters: at the lowest priority, off the threads other tests share.
        let cut = await atLowestPriority {
            ["\"", "\\", "/", "\u{01}", "\u{7f}"].map { character in
                (character, MatrixAdapter.pieces(String(repeating: character, count: 40_000)))
            }
        }
        for (character, pieces) in cut {
            let text = String(repeating: character, count: 40_000)
            #expect(pieces.count >= 2, "\(character.unicodeScalars.first!.value)")
            for piece in pieces { #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes) }
            #expect(pieces.joined() == text)
        }
    }

    @Test("one word longer than the limit is cut between whole characters, never inside an emoji")
    func longWord() throws {
        let text = String(repeating: "👩‍👩‍👧‍👦", count: 2000)  // 25 UTF-8 bytes each, no space
        let pieces = MatrixAdapter.pieces(text)
        #expect(pieces.count == 2)
        #expect(pieces.joined() == text)
        for piece in pieces {
            #expect(piece.allSatisfy { $0 == "👩‍👩‍👧‍👦" })
            #expect(try Self.encodedSize(piece) <= MatrixAdapter.maximumPieceBytes)
        }
        #expect(MatrixAdapter.pieces("short") == ["short"])
        #expect(MatrixAdapter.pieces("  \n ").isEmpty)
    }
}

/// What the Matrix adapter hands the framework: messages as they are, and answers to its own approval
/// prompts as the exact approval's reference — only from the prompt's room, only ✅/❌ (👍/👎) or
/// approve/deny, and only for prompts it remembers. Whether the sender is the owner is the router's.
@Suite struct MatrixAdapterInboundTests {
    /// Records what is delivered (no router: the adapter's mapping alone).
    final class Inbox: ChannelInbox, @unchecked Sendable {
        private let lock = NSLock()
        private var messages: [ChannelMessage] = []
        var delivered: [ChannelMessage] { lock.withLock { messages } }

        func savedCursor(channel: String) async throws -> String? { nil }
        func deliver(_ message: ChannelMessage) async throws -> DeliveryOutcome {
            lock.withLock { messages.append(message) }
            return .accepted
        }
        func advance(channel: String, to cursor: String) async throws {}
    }

    static func adapter() throws -> (MatrixAdapter, TemporaryDirectory) {
        let home = TemporaryDirectory("moat-matrix-adapter")
        let vault = try PreparedVault.copy(to: VaultPaths(stateDirectory: home.path))
        let settings = MatrixSettings(
            homeserverURL: "http://127.0.0.1:9", userID: "@moat:localhost",
            credential: .accessToken(secret: "MATRIX_TOKEN"))
        return (MatrixAdapter(client: try MatrixClient(settings: settings, vault: vault)), home)
    }

    static let prompt = ApprovalPrompt(
        approvalID: "ap1", summary: "read_file notes.txt", level: 2, domain: "files", reason: nil)

    static func reaction(_ key: String, on target: String, in room: String = "!owner", id: String = "$r")
        -> MatrixInbound
    {
        .reaction(MatrixReaction(roomID: room, eventID: id, sender: "@olivia:localhost", relatesTo: target, key: key))
    }

    static func reply(_ text: String, to target: String?, in room: String = "!owner") -> MatrixInbound {
        .message(
            MatrixMessage(
                roomID: room, eventID: "$m", sender: "@olivia:localhost", text: text, inReplyTo: target,
                sentAt: 1_780_000_000_000))
    }

    @Test("a message is handed in as it is: the user id, the room, the event id as key, no cursor of its own")
    func message() async throws {
        let (adapter, home) = try Self.adapter()
        defer { _ = home }
        let inbox = Inbox()
        try await adapter.take(Self.reply("is the door closed?", to: nil), into: inbox)
        let message = try #require(inbox.delivered.first)
        #expect(message.channel == "matrix" && message.senderID == "@olivia:localhost")
        #expect(message.conversation == "!owner" && message.idempotencyKey == "$m" && message.cursor == nil)
        #expect(message.text == "is the door closed?")
        #expect(message.receivedAt == Date(timeIntervalSince1970: 1_780_000_000))
    }

    /// What an adapter that sent ``prompt`` as event `$prompt` into `!owner` hands in for `events`.
    static func handed(_ events: [MatrixInbound]) async throws -> [ChannelMessage] {
        let (adapter, home) = try Self.adapter()
        defer { _ = home }
        adapter.prompts.remember(event: "$prompt", room: "!owner", prompt: Self.prompt)
        let inbox = Inbox()
        for event in events { try await adapter.take(event, into: inbox) }
        return inbox.delivered
    }

    @Test("✅/❌ on a prompt, or a reply approve/deny to it, in its room, becomes that approval's reference")
    func answers() async throws {
        let delivered = try await Self.handed([
            Self.reaction("✅", on: "$prompt"), Self.reaction("❌️", on: "$prompt"),
            Self.reaction("👍🏽", on: "$prompt"), Self.reply("Deny.", to: "$prompt"),
        ])
        #expect(delivered.map(\.text) == ["approve ap1", "deny ap1", "approve ap1", "deny ap1"])
        #expect(delivered.allSatisfy { $0.senderID == "@olivia:localhost" && $0.conversation == "!owner" })
    }

    @Test("other reactions, answers from another room, and answers to events that are no prompt decide nothing")
    func nonAnswers() async throws {
        let reactions = try await Self.handed([
            Self.reaction("👌", on: "$prompt"), Self.reaction("✅", on: "$prompt", in: "!stranger"),
            Self.reaction("✅", on: "$other"),
        ])
        #expect(reactions.isEmpty)
        // A reply that is not an answer, or answers no prompt of this run, is an ordinary message.
        let replies = try await Self.handed([
            Self.reply("yes please", to: "$prompt"), Self.reply("approve", to: "$other"),
            Self.reply("approve", to: "$prompt", in: "!stranger"),
        ])
        #expect(replies.map(\.text) == ["yes please", "approve", "approve"])
    }

    @Test("the prompt book keeps the last 64 prompts (older ones are read back from the homeserver): it stays bounded")
    func boundedPrompts() async throws {
        let (adapter, home) = try Self.adapter()
        defer { _ = home }
        for index in 0...MatrixAdapter.rememberedPrompts {
            let prompt = ApprovalPrompt(approvalID: "ap\(index)", summary: "", level: 2, domain: "files", reason: nil)
            adapter.prompts.remember(event: "$p\(index)", room: "!owner", prompt: prompt)
        }
        #expect(adapter.prompts.reference(answering: "$p0", in: "!owner", .approve) == nil)
        #expect(adapter.prompts.reference(answering: "$p1", in: "!owner", .approve) == "approve ap1")
        let last = MatrixAdapter.rememberedPrompts
        #expect(adapter.prompts.reference(answering: "$p\(last)", in: "!owner", .deny) == "deny ap\(last)")
    }
}
