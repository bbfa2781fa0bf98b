import Foundation
import MoatCore

/// One turn as `moat chat` and `POST /api/chat` show it.
public struct TurnView: Sendable, Equatable, Codable {
    public let conversation: String
    public let reply: String
    /// What stopped the turn early, when a budget did.
    public let stoppedBy: String?
    /// Calls waiting for the owner: id, tool, what it would do and why it waits.
    public let pending: [Pending]
    /// Level-1 calls, described and not run.
    public let described: [String]
    /// Each tool call: tool, decision, level.
    public let calls: [Call]
    /// The provider that answered (`providers.NAME`); nil when no model round ran.
    public let provider: String?
    /// Providers that were down and passed over before ``provider`` answered.
    public let fallbacks: [String]?

    public struct Pending: Sendable, Equatable, Codable {
        public let approvalID: String
        public let tool: String
        public let summary: String
        public let reason: String

        enum CodingKeys: String, CodingKey {
            case approvalID = "approval_id"
            case tool, summary, reason
        }

        public init(approvalID: String, tool: String, summary: String, reason: String) {
            self.approvalID = approvalID
            self.tool = tool
            self.summary = summary
            self.reason = reason
        }

        /// A held call, with why it waits (the decision's explanation, then each taint reason).
        init(_ action: PendingAction) {
            self.init(
                approvalID: action.approvalID, tool: action.tool, summary: action.summary,
                reason: ([action.explanation] + action.taintReasons.map { "tainted: " + $0 }).joined(separator: "; "))
        }
    }

    enum CodingKeys: String, CodingKey {
        case conversation, reply, pending, described, calls, provider, fallbacks
        case stoppedBy = "stopped_by"
    }

    public struct Call: Sendable, Equatable, Codable {
        public let tool: String
        public let decision: String
        public let level: Int?
        public let outcome: String
    }

    public init(_ outcome: TurnOutcome) {
        conversation = outcome.conversationID
        reply = outcome.reply
        stoppedBy = outcome.stoppedBy?.message
        pending = outcome.pending.map(Pending.init)
        described = outcome.described
        provider = outcome.provider
        fallbacks = outcome.fallbacks.isEmpty ? nil : outcome.fallbacks
        calls = outcome.calls.map {
            Call(tool: $0.tool, decision: $0.decision.rawValue, level: $0.level?.rawValue, outcome: $0.outcome)
        }
    }
}
