public import MoatCore

/// What a running turn shows, in order, to an owner watching it live (`moat chat`, `POST /api/chat`
/// with `Accept: text/event-stream`).
///
/// Every text in an event went through the vault's scrub, as the reply does: a model that echoes a
/// secret's value shows `[secret:NAME]`, in whichever piece the value would have fallen.
public enum TurnEvent: Sendable, Hashable {
    /// A piece of the model's text in model round `round` (1-based). The pieces of the last round add up
    /// to the reply; a round that ends in tool calls may have text of its own before them.
    case text(String, round: Int)
    /// The model asked for a tool call; the gateway has not decided it yet.
    case toolProposed(ProposedCall)
    /// The gateway's decision on a call: the effective level and what limited it.
    case toolDecided(DecidedCall)
    /// What became of a call (ran, failed, refused, described, held, invalid or skipped).
    case toolFinished(FinishedCall)
    /// A call is held for the owner's approval (`moat approvals approve ID`).
    case approvalPending(PendingAction)
    /// A budget ended the turn; its message is the reply.
    case budgetReached(BudgetStop)
    /// The turn is over: the last event, with the outcome ``Agent/handle(_:events:)`` returns.
    case finished(TurnOutcome)
}

/// A tool call as the model asked for it.
public struct ProposedCall: Sendable, Hashable {
    /// The call's position in the turn (1-based), shared by its later events.
    public let index: Int
    public let round: Int
    /// The tool's name as the model wrote it (printable, at most 64 characters).
    public let tool: String
    /// The tool's domain; nil when no tool has that name.
    public let domain: TrustDomain?
    /// The arguments as the model wrote them: scrubbed, control characters removed, at most 200 characters.
    public let arguments: String
}

/// The trust decision on one call.
public struct DecidedCall: Sendable, Hashable {
    public let index: Int
    public let tool: String
    public let decision: CallDecision
    /// The domain's trust level before the principal's ceiling and the taint cap.
    public let domainLevel: TrustLevel
    /// The effective level: min(domain trust, principal ceiling, taint cap).
    public let level: TrustLevel
    /// Which of `domain` (its trust), `principal` (its ceiling), `taint` (the cap) set the effective level.
    public let limitedBy: [String]
    public let explanation: String
    /// Why the conversation is tainted, when the taint cap is one of the limits (empty otherwise).
    public let taintReasons: [String]
}

/// What became of one call.
public struct FinishedCall: Sendable, Hashable {
    public let index: Int
    public let report: CallReport
}
