import Crypto
import MoatCore
import MoatStore
import Testing

@testable import MoatPolicy

/// The MAC of each policy record under a known key, pinned: every row already in a `moat.db` carries a
/// MAC over exactly these fields in this order, so a change here would make them all fail as tampered.
/// The expected values were computed independently of this code, from the released field lists.
@Suite struct RowMACTests {
    let rows = RowAuthenticator(key: SymmetricKey(data: (0..<32).map { UInt8($0) }))
    static let requestHash = String(repeating: "cd", count: 32)

    @Test("a trust change's MAC covers the change and the previous row's MAC, as released")
    func trustChange() {
        let set = TrustChange(
            id: 7, domain: .web, from: .inform, to: .suggest, kind: .set, actor: "owner",
            reason: "compatibility fixture", evidence: "{}", rollbackOf: nil, createdAt: 1_765_000_000_000)
        #expect(
            rows.mac(TrustChangeRow(change: set, prev: String(repeating: "ab", count: 32)))
                == "251297760068fd02daab98b212b594dd0acfe23b007a85763650bc51b4708a1e")
        let rollback = TrustChange(
            id: 8, domain: .web, from: .suggest, to: .inform, kind: .rollback, actor: "owner", reason: "undo",
            evidence: "{}", rollbackOf: 7, createdAt: 1_765_000_000_001)
        #expect(
            rows.mac(TrustChangeRow(change: rollback, prev: ""))
                == "65447f6a75c0be3249b5e71d2d61738493171283cd980fd2b6fd3d81a429ef1d")
    }

    @Test("an approval's, its decision's and its use's MACs are those of the released rows")
    func approval() {
        let record = ApprovalRecord(
            id: "abcdefghjk", principal: "owner", domain: .web,
            request: ActionRequest(
                tool: "fetch", arguments: #"{"url":"https://example.com"}"#, destination: "example.com"),
            requestHash: Self.requestHash, createdAt: 1_765_000_000_000, expiresAt: 1_765_000_900_000, status: .pending)
        #expect(rows.mac(record) == "596da8b9c750829fb98721f7da0259770ba0408981e1cceea6c9baa643dfc657")
        let decision = DecisionRow(
            approvalID: "abcdefghjk", seq: 3, approved: false, actor: "owner", reason: "not now", domain: .web,
            requestHash: Self.requestHash, decidedAt: 1_765_000_000_500)
        #expect(rows.mac(decision) == "56fb332241ed685f2e1da40f1538c0aa0374fc916c94b0e524c8d28ac9737aef")
        let use = ApprovalUseRow(approvalID: "abcdefghjk", requestHash: Self.requestHash, usedAt: 1_765_000_000_600)
        #expect(rows.mac(use) == "e0ddb6ba692951d6d03e957da76de4c74d067bba86767116fc43004b0288909d")
    }

    @Test("a contact grant's and a taint clear's MACs are those of the released rows")
    func contactAndTaint() {
        let grant = ContactGrant(
            id: "mnpqrstuvw", channel: "telegram", senderID: "12345", ceilings: [.messaging: .suggest, .web: .inform],
            addedBy: "owner", addedAt: 1_765_000_000_000)
        #expect(rows.mac(grant) == "69c69e77eb8531e346dc792663d1c13ba7a95d0d291e12378f9ace23ee51f6a5")
        let taint = TaintRow(
            conversation: "conv-1", event: .taint(reason: "read web content"), createdAt: 1_765_000_000_000)
        #expect(rows.mac(taint) == "8da94ca6ae09708851791ab4dbd007fd522043c6226b71c3a6c2aea43b5f55d4")
        let clear = TaintRow(conversation: "conv-1", event: .clear(id: 4), createdAt: 1_765_000_000_001)
        #expect(rows.mac(clear) == "0bf27af93887bc6bd281793010f6c8af5873f1f019300d1d97e4fc37fc94111d")
    }
}
