import Foundation
public import MoatAgent
import MoatCore

/// The agent's owner operations: `moat chat` and deciding approvals, which resume the held call and the
/// conversation (``Agent/approve(_:actor:onText:)``). Without them (no agent in this process), approvals
/// are decided by ``PolicyOperations`` alone.
public struct AgentOperations: Sendable {
    let agent: Agent

    public init(agent: Agent) {
        self.agent = agent
    }

    /// Runs one agent operation; nil for an operation of another table. `events` watches a streamed
    /// chat's turn (`chat.stream`).
    func perform(
        _ operation: AdminOperation, events: (@Sendable (TurnEvent) async -> Void)? = nil
    ) async throws -> AdminResult? {
        switch operation {
        case .chat(let message, let conversation, let provider),
            .chatStream(let message, let conversation, let provider):
            let inbound = InboundMessage.fromOwner(message, conversation: conversation, provider: provider)
            return .chatTurn(TurnView(try await agent.handle(inbound, events: events)))
        case .approvalsApprove(let id):
            return try await resumed(id, approved: true) { () async throws(AgentError) in try await agent.approve(id) }
        case .approvalsDeny(let id, let reason):
            return try await resumed(id, approved: false) { () async throws(AgentError) in
                try await agent.deny(id, reason: reason)
            }
        default:
            return nil
        }
    }

    /// An approval list or view with, for each call the agent holds, why it waits (``Agent/holdReason(approvalID:)``).
    func annotated(_ result: AdminResult) async -> AdminResult {
        func annotate(_ view: ApprovalView) async -> ApprovalView {
            var view = view
            view.heldBecause = await agent.holdReason(approvalID: view.id)
            return view
        }
        switch result {
        case .approvals(let views, let all):
            var annotated: [ApprovalView] = []
            for view in views { annotated.append(await annotate(view)) }
            return .approvals(annotated, all: all)
        case .approval(let view):
            return .approval(await annotate(view))
        default:
            return result
        }
    }

    /// The decision through the agent; nil (the policy engine decides alone) for an approval that holds
    /// no agent call, such as one a test or an earlier release made.
    private func resumed(
        _ id: String, approved: Bool, _ decide: () async throws(AgentError) -> TurnOutcome
    ) async throws -> AdminResult? {
        do {
            return .approvalResumed(id: id, approved: approved, TurnView(try await decide()))
        } catch  where error.code == .notFound {
            return nil
        }
    }
}
