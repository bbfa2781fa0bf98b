public import MoatCore

/// What the gateway did with one tool call the model asked for.
public enum CallDecision: String, Sendable, Hashable, CaseIterable {
    /// The tool does not exist or its arguments were rejected; the model was told what was wrong.
    case invalid
    /// Effective level 0: refused, the model was told so.
    case refused
    /// Effective level 1: described to the user, not run.
    case described
    /// Effective level 2: held as a pending approval for the owner.
    case pending
    /// Effective level 3: ran, and the owner was told.
    case ranAndReported = "ran-reported"
    /// Effective level 4: ran.
    case ran
    /// Not considered: the turn reached a budget first.
    case skipped
}

/// One tool call of a turn and what happened to it (no arguments, no output: metadata only).
public struct CallReport: Sendable, Hashable {
    /// The id of the stored tool-call row (`agent_tool_calls.id`); empty for a call that named no tool.
    public let id: String
    public let tool: String
    public let decision: CallDecision
    /// The effective level, when the call reached the trust decision.
    public let level: TrustLevel?
    /// Why, in words (the trust decision's explanation, or what was wrong with the call).
    public let explanation: String
    /// `success`, `failed`, `refused` (the audit append failed) for calls that were to run; empty otherwise.
    public let outcome: String
}

/// A level-2 call waiting for the owner, with what held it at level 2.
public struct PendingAction: Sendable, Hashable {
    public let approvalID: String
    public let tool: String
    public let domain: TrustDomain
    /// One line saying what will happen (the tool's summary).
    public let summary: String
    /// The trust decision's explanation (which of domain trust, the principal's ceiling or taint held it).
    public let explanation: String
    /// Why the conversation is tainted, when taint is one of the limits (empty otherwise).
    public let taintReasons: [String]
}

/// A budget that stopped a turn, with the message the user gets.
public struct BudgetStop: Sendable, Hashable {
    public enum Limit: String, Sendable, Hashable, CaseIterable {
        case toolCalls = "tool_calls"
        case rounds
        case wallTime = "wall_time"
        case dailyTokens = "daily_tokens"
        /// Every provider the turn may use reached its `daily_token_limit`.
        case providerTokens = "provider_tokens"
        /// No provider of the route may answer this sender (`allowed_principals`).
        case noProvider = "no_provider"
    }

    public let limit: Limit
    /// What stopped and how to go on, for the user.
    public let message: String
}

/// The result of one turn (a message handled, or an approval decided and the conversation continued).
public struct TurnOutcome: Sendable, Hashable {
    public let conversationID: String
    public let turnID: String
    /// The text for the user: the model's final answer, or a budget's message.
    public let reply: String
    /// Set when a budget ended the turn.
    public let stoppedBy: BudgetStop?
    /// Calls held for the owner's approval in this turn.
    public let pending: [PendingAction]
    /// Summaries of level-1 calls, for the user.
    public let described: [String]
    /// Every tool call of the turn, in order.
    public let calls: [CallReport]
    /// Model rounds the turn took.
    public let rounds: Int
    /// The provider that answered the turn's last round (nil when no round ran).
    public internal(set) var provider: String? = nil
    /// The providers that failed with an outage before ``provider`` answered, in order.
    public internal(set) var fallbacks: [String] = []
}
