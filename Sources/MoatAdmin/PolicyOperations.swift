import Foundation
public import MoatPolicy

/// The owner's policy commands (`moat trust …`, `moat approvals …`) as admin operations: run by the
/// server for requests on the admin socket, or in the command's own process when no server runs, with
/// the same checks, results and audit entries either way (like ``OwnerOperations``).
public struct PolicyOperations: Sendable {
    let engine: PolicyEngine

    public init(engine: PolicyEngine) {
        self.engine = engine
    }

    /// Runs one trust or approval operation; nil for an operation of another table.
    func perform(_ operation: AdminOperation) async throws -> AdminResult? {
        switch operation {
        case .trustShow:
            return .trust(try await engine.trust().map(DomainTrustView.init))
        case .trustSet(let domain, let level, let reason, let force):
            return .trustChanged(
                TrustChangeView(try await engine.setTrust(domain, to: level, reason: reason, force: force)))
        case .trustHistory(let domain):
            return .trustHistory(try await engine.history(domain).map(TrustChangeView.init))
        case .trustRollback(let id, let reason, let force):
            return .trustRolledBack(
                TrustChangeView(try await engine.rollback(id, reason: reason, force: force)), of: id)
        case .approvalsList(let all):
            return .approvals(try await engine.approvals(pendingOnly: !all).map(ApprovalView.init), all: all)
        case .approvalsShow(let id):
            return .approval(ApprovalView(try await engine.approval(id)))
        case .approvalsApprove(let id):
            return .approved(id: try await engine.approve(id).id)
        case .approvalsDeny(let id, let reason):
            return .denied(id: try await engine.deny(id, reason: reason).id)
        case .contactAdd(let channel, let sender, let ceilings):
            return .contactAdded(
                ContactView(try await engine.addContact(channel: channel, senderID: sender, ceilings: ceilings)))
        case .contactList:
            return .contacts(try await engine.contacts().map(ContactView.init))
        case .contactRemove(let id):
            try await engine.removeContact(id)
            return .contactRemoved(id: id)
        default:
            return nil
        }
    }
}
