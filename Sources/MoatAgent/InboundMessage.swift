public import Foundation
import MoatCore

/// One message arriving on a channel, as the channel adapter hands it to the pipeline.
///
/// `channel` is set by the entry point, never by the sender: only the owner's authenticated entry
/// points (`moat chat` through the admin socket, `POST /api/chat`) use ``ownerChannel``; every other
/// channel's senders are contacts the owner added (`PolicyEngine.principal(channel:senderID:)`) or
/// unknown, and refused.
public struct InboundMessage: Sendable, Hashable {
    /// The channel of the owner's own entry points: its messages come from the owner.
    public static let ownerChannel = "owner"

    /// `owner`, `webhook:NAME`, `telegram`, …
    public var channel: String
    /// The sender's id on that channel (ignored on ``ownerChannel``).
    public var senderID: String
    /// The conversation the message belongs to, as the channel names it. A conversation belongs to the
    /// principal and channel that started it; another sender naming it is refused.
    public var conversation: String
    /// The text (untrusted: it is scanned by the injection flagger and never logged or audited).
    public var text: String
    /// Chosen by the sender or the channel; a second message with the same key is refused unanswered.
    public var idempotencyKey: String
    public var receivedAt: Date
    /// The provider the owner chose for a new conversation (`moat chat --provider`); only the owner's
    /// entry points set it, and it is refused for an existing conversation that was opened without it.
    public var provider: String?

    public init(
        channel: String,
        senderID: String,
        conversation: String,
        text: String,
        idempotencyKey: String,
        receivedAt: Date = Date()
    ) {
        self.channel = channel
        self.senderID = senderID
        self.conversation = conversation
        self.text = text
        self.idempotencyKey = idempotencyKey
        self.receivedAt = receivedAt
    }
}

extension InboundMessage {
    /// A message from the owner's own entry points (`moat chat`, `POST /api/chat`): in `conversation`, or a
    /// new one, with a fresh idempotency key (the owner's entry points do not retry on their own).
    public static func fromOwner(_ text: String, conversation: String?, provider: String? = nil) -> InboundMessage {
        var message = InboundMessage(
            channel: ownerChannel, senderID: "owner", conversation: conversation ?? "owner-" + randomID(), text: text,
            idempotencyKey: "owner-" + randomID())
        message.provider = provider
        return message
    }

    /// 16 random hex digits.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Hex.encode(bytes)
    }
}
