public import MoatChannels
import MoatCore
public import MoatPolicy
import Synchronization

/// Tells the owner through their bound channel accounts as well as through `next` (the server's log):
/// a held call becomes an approval prompt (what it will do, its domain and level, why — the notice's text
/// carries the trust decision's explanation and the taint's cause — and the `approve ID` / `deny ID`
/// references a tap must come back as); every other notice is sent as text.
///
/// The router is attached after the agent is made (the agent needs the notifier, the router the agent);
/// before that, and with no bound account, only `next` is told.
public final class ChannelOwnerNotifier: OwnerNotifier {
    let next: any OwnerNotifier
    let policy: PolicyEngine
    private let router = Mutex<ChannelRouter?>(nil)

    public init(next: any OwnerNotifier, policy: PolicyEngine) {
        self.next = next
        self.policy = policy
    }

    /// Sends notices through `router` from now on.
    public func attach(_ router: ChannelRouter) {
        self.router.withLock { $0 = router }
    }

    /// A new pairing request: `logText` (no code) to `next`, `ownerText` (with the code) to the owner's bound
    /// accounts as a pairing request, which they can answer with a tap (``PairingPrompt``).
    public func notifyPairing(_ pending: PendingCode, logText: String, ownerText: String) async {
        await next.notify(OwnerNotice(kind: .unknownSender, conversationID: "", text: logText))
        guard let router = router.withLock({ $0 }) else { return }
        await router.notifyOwner(
            PrintableText.excerpt(ownerText, limit: 1000), kind: .pairingRequest(PairingPrompt(pending)))
    }

    public func notify(_ notice: OwnerNotice) async {
        await next.notify(notice)
        guard let router = router.withLock({ $0 }) else { return }
        let text = PrintableText.excerpt(notice.ownerAccountText ?? notice.text, limit: 1000)
        guard notice.kind == .approvalPending, let id = notice.approvalID,
            let approval = try? await policy.approval(id)
        else {
            await router.notifyOwner(text)
            return
        }
        let summary = PrintableText.excerpt(approval.request.tool + " " + approval.request.destination, limit: 200)
        let prompt = ApprovalPrompt(
            approvalID: id, summary: summary, level: TrustLevel.suggest.rawValue, domain: approval.domain.rawValue,
            reason: text)
        await router.notifyOwner(
            text + "\nReply \"\(prompt.approveReference)\" or \"\(prompt.denyReference)\".", prompt: prompt)
    }
}
