public import Foundation
import MoatCore
import Synchronization

/// Matrix as a channel of the framework (``ChannelAdapter``): the bot's direct chats on one homeserver.
///
/// **In.** ``MatrixSyncLoop`` long-polls `/sync` from the `since` the framework saved (the ``ChannelInbox``
/// cursor for `matrix`) and stores each batch's `next_batch` through ``ChannelInbox/advance(channel:to:)``
/// once every event of the batch was delivered: a crash in between hands the batch over again, and the
/// event ids (the idempotency keys) make a message seen twice count once. Direct-chat invites are joined,
/// whoever sends them (whether anyone is answered is pairing's decision); other invites are declined.
/// An `m.text` message becomes a ``ChannelMessage`` (sender: the Matrix user id; conversation: the room
/// id; key: the event id). An answer to an approval prompt this adapter sent — a ✅/❌ (or 👍/👎) reaction
/// on it, or a reply `approve`/`deny` to it — becomes a message whose text is the prompt's reference
/// (`approve ID` / `deny ID`), so the router alone decides whether the account is the owner's. A pairing
/// request sent to the owner is remembered the same way: ✅ on it comes back as `pairing REF chat` (the
/// chat-only preset), ❌ as `pairing REF deny`. When the
/// other member leaves a direct chat, the bot leaves it too.
///
/// **Out.** `m.text` messages, a long text split into events of at most ``maximumPieceBytes`` bytes of
/// JSON-escaped body (far below Matrix's 64 KiB event limit, which counts the whole signed event). An
/// approval prompt is one event with the answer instructions under it and what its answers stand for
/// (`org.moat.answers`); the prompts of this run are remembered (the last ``rememberedPrompts``), and an
/// answer to an older one — sent before a restart — is read back from the event, which counts only when
/// the bot itself sent it.
public struct MatrixAdapter: ChannelAdapter {
    public let channel = "matrix"
    /// The most bytes of JSON-escaped `body` one event carries.
    public static let maximumPieceBytes = 32 * 1024
    /// How many approval prompts of this run a reaction or a reply can answer.
    public static let rememberedPrompts = 64

    let client: MatrixClient
    /// Told what went wrong and was retried, or could not be done (the server's log; never a message's text).
    let report: @Sendable (String) -> Void
    /// Long-poll timeout of one `/sync`.
    let pollTimeout: Duration
    let prompts = PromptBook()

    public init(
        client: MatrixClient, pollTimeout: Duration = .seconds(30),
        report: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.client = client
        self.pollTimeout = pollTimeout
        self.report = report
    }

    // MARK: In

    public func run(inbox: any ChannelInbox) async throws {
        var loop = MatrixSyncLoop(
            client: client,
            cursor: MatrixSyncCursor(
                load: { [channel] in try await inbox.savedCursor(channel: channel) },
                store: { [channel] since in try await inbox.advance(channel: channel, to: since) }),
            handle: { inbound in try await take(inbound, into: inbox) })
        loop.pollTimeout = pollTimeout
        loop.onFailure = { [report] error, wait in
            report("the matrix channel: \(error.message); trying again in \(wait)")
        }
        try await loop.run()
    }

    /// One event, in the homeserver's order. Returns once it is durably handled.
    func take(_ inbound: MatrixInbound, into inbox: any ChannelInbox) async throws {
        switch inbound {
        case .message(let message):
            var text = message.text
            if let target = message.inReplyTo, let answer = MatrixApprovalAnswer(replyText: message.text),
                let reference = await reference(answering: target, in: message.roomID, answer)
            {
                text = reference
            }
            try await inbox.deliver(
                ChannelMessage(
                    channel: channel, senderID: message.sender, conversation: message.roomID, text: text,
                    idempotencyKey: message.eventID,
                    receivedAt: Date(timeIntervalSince1970: TimeInterval(message.sentAt) / 1000)))
        case .reaction(let reaction):
            guard let answer = MatrixApprovalAnswer(reactionKey: reaction.key),
                let reference = await reference(answering: reaction.relatesTo, in: reaction.roomID, answer)
            else { return }  // Any other reaction is nobody's business.
            try await inbox.deliver(
                ChannelMessage(
                    channel: channel, senderID: reaction.sender, conversation: reaction.roomID, text: reference,
                    idempotencyKey: reaction.eventID))
        case .joined:
            return  // Nothing to answer until the inviter writes.
        case .left(let roomID, let userID):
            guard userID != client.settings.userID else { return }
            do {
                try await client.leave(roomID)
            } catch {
                report("the matrix channel could not leave a direct chat its member left: \(error.message)")
            }
        }
    }

    /// The reference an answer on `target` in `room` stands for: from the prompts of this run, else read
    /// back from the event itself when the bot sent it (a prompt from before a restart). A homeserver that
    /// cannot be asked now is reported, and the answer is not one (typing `approve ID` still is).
    func reference(answering target: String, in room: String, _ answer: MatrixApprovalAnswer) async -> String? {
        if let known = prompts.reference(answering: target, in: room, answer) { return known }
        do {
            guard let answers = try await client.promptAnswers(event: target, in: room) else { return nil }
            prompts.remember(event: target, room: room, approve: answers.approve, deny: answers.deny)
            return answer == .approve ? answers.approve : answers.deny
        } catch {
            report(
                "the matrix channel could not read back the prompt an answer was given to (\(error.message)); the "
                    + "owner can type approve ID or deny ID instead")
            return nil
        }
    }

    // MARK: Out

    public func send(_ message: OutboundMessage) async throws {
        if case .approvalPrompt(let prompt) = message.kind {
            // What it will do and at which level first; the text carries why (the taint's cause).
            let text = PrintableText.excerpt(
                "Approval needed: \(prompt.summary) (level \(prompt.level), \(prompt.domain))\n" + message.text,
                limit: 4000)
            let event = try await client.sendApprovalPrompt(
                text, to: message.conversation, approvalID: prompt.approvalID)
            prompts.remember(event: event, room: message.conversation, prompt: prompt)
            return
        }
        if case .pairingRequest(let prompt) = message.kind {
            // ✅ lets the sender in with the chat-only preset; `pair CODE DOMAIN=LEVEL …` typed sets others.
            let event = try await client.sendText(
                PrintableText.excerpt(message.text, limit: 4000) + "\n\n" + Self.pairingInstructions,
                to: message.conversation, messageID: "pairing:" + prompt.reference,
                answers: PromptAnswers(approve: prompt.text(.chat), deny: prompt.text(.deny)))
            prompts.remember(
                event: event, room: message.conversation, approve: prompt.text(.chat), deny: prompt.text(.deny))
            return
        }
        // A reply's pieces get ids derived from the message it answers: sent again after a timeout, the
        // homeserver answers with the first event instead of a second copy.
        let base: String
        if case .reply(let key?) = message.kind {
            base = "reply:" + message.conversation + ":" + key
        } else {
            base = "out:" + UUID().uuidString
        }
        for (index, piece) in Self.pieces(message.text).enumerated() {
            try await client.sendText(piece, to: message.conversation, messageID: base + ":" + String(index))
        }
    }

    /// The text under a pairing request: how the owner answers it.
    static let pairingInstructions =
        "React ✅ to let them in (chat only: messaging 1, every other domain 0) or ❌ to deny; or reply "
        + "pair CODE with ceilings, e.g. pair CODE web=2 files=1, or deny CODE."

    /// `text` in pieces of at most ``maximumPieceBytes`` bytes once escaped as a JSON string.
    static func pieces(_ text: String) -> [String] {
        TextPieces.split(text, limit: maximumPieceBytes) { character in
            character.unicodeScalars.reduce(0) { size, scalar in
                switch scalar.value {
                case 0x22, 0x5C, 0x2F: size + 2  // `"`, `\` and `/` are escaped
                case 0..<0x20, 0x7F: size + 6  // `\u00XX`
                default: size + String(scalar).utf8.count
                }
            }
        }
    }
}

/// The approval prompts this run sent: event id → the approval and the room it was sent to.
final class PromptBook: Sendable {
    private struct Entry {
        let event: String
        let room: String
        let approve: String
        let deny: String
    }
    private let entries = Mutex<[Entry]>([])

    /// Remembers prompt `event` in `room`: an approving answer on it stands for the text `approve`, a denying
    /// one for `deny` (an approval's `approve ID` / `deny ID`, a pairing request's `pairing REF CHOICE`).
    func remember(event: String, room: String, approve: String, deny: String) {
        entries.withLock { entries in
            entries.removeAll { $0.event == event }
            entries.append(Entry(event: event, room: room, approve: approve, deny: deny))
            if entries.count > MatrixAdapter.rememberedPrompts { entries.removeFirst() }
        }
    }

    func remember(event: String, room: String, prompt: ApprovalPrompt) {
        remember(event: event, room: room, approve: prompt.approveReference, deny: prompt.denyReference)
    }

    /// The reference text (`approve ID` / `deny ID`) an answer on event `target` in `room` stands for, or nil
    /// when `target` is no prompt of this run sent to that room.
    func reference(answering target: String, in room: String, _ answer: MatrixApprovalAnswer) -> String? {
        entries.withLock { entries in
            guard let entry = entries.last(where: { $0.event == target && $0.room == room }) else { return nil }
            return answer == .approve ? entry.approve : entry.deny
        }
    }
}
