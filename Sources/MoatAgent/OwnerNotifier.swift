/// Something the owner is told about while it happens.
public struct OwnerNotice: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// Someone who is not a contact wrote; nothing reached the model.
        case unknownSender = "unknown-sender"
        /// A call waits for the owner's approval.
        case approvalPending = "approval-pending"
        /// A level-3 call ran ("act and report").
        case actionTaken = "action-taken"
        /// A budget ended a turn early (a looping or runaway model, or the day's tokens).
        case budgetReached = "budget-reached"
        /// A provider reached its daily token limit (`providers.NAME.daily_token_limit`); told once per
        /// provider and UTC day.
        case providerLimit = "provider-limit"
        /// A turn stopped because no provider of its route may answer its sender.
        case noProvider = "no-provider"
    }

    public let kind: Kind
    /// The conversation, or empty for an unknown sender.
    public let conversationID: String
    /// The approval to decide, for ``Kind/approvalPending``.
    public let approvalID: String?
    /// One printable line for the owner; never a message's text, a tool's output or a secret.
    public let text: String
    /// The line as the owner's own bound accounts get it, when it holds more than ``text`` may (a pairing
    /// code): never written to the server's log. Nil: ``text`` for everyone.
    public let ownerAccountText: String?

    public init(
        kind: Kind, conversationID: String, approvalID: String? = nil, text: String, ownerAccountText: String? = nil
    ) {
        self.kind = kind
        self.conversationID = conversationID
        self.approvalID = approvalID
        self.text = text
        self.ownerAccountText = ownerAccountText
    }
}

/// Where the pipeline tells the owner things (the dashboard's live events, the owner's chat).
/// Implementations must return quickly and must not fail the turn: a notice that cannot be delivered is
/// still in the audit log.
public protocol OwnerNotifier: Sendable {
    func notify(_ notice: OwnerNotice) async
}
