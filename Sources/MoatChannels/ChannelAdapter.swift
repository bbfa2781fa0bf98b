public import Foundation

/// One messaging platform (Telegram, Matrix, …) as a service in the one `moat serve` process.
///
/// An adapter does only its platform's wire: it reads the platform's events from the saved cursor on,
/// turns each into a ``ChannelMessage`` for ``ChannelInbox/deliver(_:)``, and sends what the framework
/// gives it (``send(_:)``). Everything else — who the sender is (owner, contact, unknown), pairing, the
/// agent, approvals, where the cursor is kept, reconnecting with backoff — is the framework's
/// (``ChannelSupervisor``, the inbox behind it). Platform credentials come from the vault, never from
/// `config.yaml` or the environment.
public protocol ChannelAdapter: Sendable {
    /// The channel's name (`telegram`, `matrix`): 1–32 of `a-z 0-9 - _`, the `CHANNEL` of contacts and of
    /// `moat pairing`, and the key of its saved cursor. Never `owner` and never starting with `webhook`.
    var channel: String { get }

    /// Reads the platform until the task is cancelled (return then) or the connection fails (throw:
    /// the supervisor waits with exponential backoff and jitter and calls `run` again).
    ///
    /// Start from `try await inbox.savedCursor(channel:)` (nil on first start) and hand every message in,
    /// in the platform's order, to ``ChannelInbox/deliver(_:)``, awaiting each: it returns once the
    /// message is durably handled and its ``ChannelMessage/cursor`` saved. Events that carry no message
    /// (an edit, a join) still move the cursor: ``ChannelInbox/advance(channel:to:)``. When `deliver`
    /// throws, stop and throw: the next `run` starts again from the saved cursor, and the idempotency
    /// key makes a message seen twice count once.
    func run(inbox: any ChannelInbox) async throws

    /// Sends one message to the platform: a reply, a notice, a pairing code or an approval prompt.
    ///
    /// ``OutboundMessage/text`` is always a complete plain-text rendering; an adapter may render
    /// ``OutboundMessage/Kind/approvalPrompt(_:)`` richer (an inline keyboard, reactions) as long as a tap
    /// comes back as a ``ChannelMessage`` whose text is the prompt's ``ApprovalPrompt/approveReference``
    /// or ``ApprovalPrompt/denyReference``. Long texts are the adapter's to split. Throws when the
    /// platform refused or could not be reached (after the adapter's own retries, e.g. Telegram's
    /// `retry_after`).
    func send(_ message: OutboundMessage) async throws
}

/// Where an adapter hands its platform's messages in: the framework's side of ``ChannelAdapter``.
public protocol ChannelInbox: Sendable {
    /// The cursor saved for `channel` (a Telegram `offset`, a Matrix `since` token), or nil on first start.
    func savedCursor(channel: String) async throws -> String?

    /// Hands one message in and returns once it is durably handled: recorded and accepted by the agent
    /// (the turn then runs on and its reply comes back through ``ChannelAdapter/send(_:)``), answered with
    /// a pairing code, or refused for good (a duplicate, a rate limit, an unknown sender over the pairing
    /// caps). Only then is ``ChannelMessage/cursor`` saved. Throws when the message could not be taken in
    /// (moat.db unwritable): the adapter stops, and the message comes again from the saved cursor.
    @discardableResult
    func deliver(_ message: ChannelMessage) async throws -> DeliveryOutcome

    /// Saves `cursor` for `channel` after platform events that carried no message.
    func advance(channel: String, to cursor: String) async throws

    /// Tells that `channel`'s platform answered just now (a long poll came back, a webhook was
    /// registered), for the owner's view of which channels are connected.
    func reached(channel: String)
}

extension ChannelInbox {
    public func reached(channel: String) {}
}

/// What became of one delivered message (for logs and tests; the adapter needs nothing from it).
public enum DeliveryOutcome: Sendable, Hashable {
    /// The agent accepted it (owner or contact); the reply follows through ``ChannelAdapter/send(_:)``.
    case accepted
    /// An owner command (`approve ID`, `deny ID`) from the channel's bound owner account, carried out.
    case ownerCommand
    /// The owner's account on this channel is now bound (the sender typed the code `moat channel bind`
    /// showed).
    case ownerBound
    /// An unknown sender was answered with a pairing code (a new one, or the one still pending).
    case pairingCode
    /// Not handled, for the reason given (already seen, rate limited, pairing caps reached, …); nothing
    /// reached the model.
    case refused(String)
}

/// A reference to a file the platform holds (a Telegram `file_id`, a Matrix `mxc://` URI): the bytes stay
/// on the platform until something asks for them.
public struct AttachmentReference: Sendable, Hashable {
    /// The platform's id of the file.
    public var id: String
    /// The media type the platform gave, if any.
    public var mediaType: String?
    /// The file name the sender gave, if any (untrusted).
    public var name: String?
    /// The size the platform gave, if any.
    public var size: Int?

    public init(id: String, mediaType: String? = nil, name: String? = nil, size: Int? = nil) {
        self.id = id
        self.mediaType = mediaType
        self.name = name
        self.size = size
    }
}

/// One message as an adapter hands it in. Every field is the platform's and untrusted; the framework
/// decides who the sender is.
public struct ChannelMessage: Sendable, Hashable {
    /// The adapter's ``ChannelAdapter/channel``.
    public var channel: String
    /// The sender's stable id on the platform (a Telegram user id, a Matrix user id) — never a display name.
    public var senderID: String
    /// The platform's conversation (a Telegram chat id, a Matrix room id): where replies go.
    public var conversation: String
    /// The text (a button tap arrives as the reference text it carries, e.g. `approve ID`).
    public var text: String
    /// Files sent with the message, as references.
    public var attachments: [AttachmentReference]
    /// The platform's unique id of this event (`update_id`, an event id): a second message with the same
    /// key on the same channel is not handled again.
    public var idempotencyKey: String
    public var receivedAt: Date
    /// The position to save once this message is handled (a Telegram `update_id + 1`, a Matrix
    /// `next_batch` on the batch's last event), or nil when the platform's cursor does not move here.
    public var cursor: String?

    public init(
        channel: String,
        senderID: String,
        conversation: String,
        text: String,
        attachments: [AttachmentReference] = [],
        idempotencyKey: String,
        receivedAt: Date = Date(),
        cursor: String? = nil
    ) {
        self.channel = channel
        self.senderID = senderID
        self.conversation = conversation
        self.text = text
        self.attachments = attachments
        self.idempotencyKey = idempotencyKey
        self.receivedAt = receivedAt
        self.cursor = cursor
    }
}

/// One message the framework asks an adapter to send.
public struct OutboundMessage: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The agent's reply to the message with idempotency key `inReplyTo`.
        case reply(inReplyTo: String?)
        /// A notice for the owner (a level-3 action ran, someone asked to pair, a budget stopped a turn).
        case notice
        /// A pairing code (or why none was given) for an unknown sender.
        case pairing
        /// A level-2 action waiting for the owner: render Approve/Deny if the platform can.
        case approvalPrompt(ApprovalPrompt)
        /// An unknown sender asks to pair (a notice for the owner): render the choices of
        /// ``PairingPrompt/Choice`` if the platform can, each coming back as ``PairingPrompt/text(_:)``.
        case pairingRequest(PairingPrompt)
    }

    /// The platform's conversation to send into (``ChannelMessage/conversation``, or the owner's bound one).
    public var conversation: String
    /// The platform user the text is for.
    public var recipient: String
    /// The whole message as plain text (already scrubbed of vault values).
    public var text: String
    public var kind: Kind

    public init(conversation: String, recipient: String, text: String, kind: Kind) {
        self.conversation = conversation
        self.recipient = recipient
        self.text = text
        self.kind = kind
    }
}

/// A level-2 action waiting for the owner, sent to the owner's bound account.
public struct ApprovalPrompt: Sendable, Hashable {
    /// The approval (`moat approvals show ID`).
    public var approvalID: String
    /// What it will do, e.g. `shell: ls -la ~/notes` (cut to a line, scrubbed).
    public var summary: String
    /// The level that holds it for approval, and the domain.
    public var level: Int
    public var domain: String
    /// Why the level is what it is (a taint's cause), if the owner should know.
    public var reason: String?
    /// The text a tap on Approve must come back as: `approve ID`.
    public var approveReference: String
    /// The text a tap on Deny must come back as: `deny ID`.
    public var denyReference: String

    public init(approvalID: String, summary: String, level: Int, domain: String, reason: String?) {
        self.approvalID = approvalID
        self.summary = summary
        self.level = level
        self.domain = domain
        self.reason = reason
        self.approveReference = "approve " + approvalID
        self.denyReference = "deny " + approvalID
    }
}
