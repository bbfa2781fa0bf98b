import Crypto
import Foundation
import GRDB
import MoatCore
import MoatPolicy
import Testing

/// A database-only attacker: plain SQL against `moat.db`, without the vault's MAC key.
@Suite struct TamperTests {
    let request = ActionRequest(tool: "shell.run", arguments: "{\"cmd\":\"ls\"}", destination: "workspace")

    @Test("an INSERTed trust change does not raise the level, and is audited as policy.tamper")
    func forgedTrustInsert() async throws {
        let fixture = try PolicyFixture()
        try fixture.sql(
            """
            INSERT INTO policy_trust_changes (id, domain, from_level, to_level, kind, actor, reason, evidence,
              rollback_of, created_at, prev_mac, mac)
            VALUES (1, 'shell', 0, 4, 'force', 'owner', 'x', '{}', NULL, 1, '', ?)
            """,
            [String(repeating: "ab", count: 32)]
        )
        #expect(try await fixture.engine.trust(.shell).level == TrustLevel.none)
        #expect(try await fixture.engine.trust(.shell).tampered)
        #expect(try await fixture.engine.history(.shell).isEmpty)
        #expect(try fixture.auditTargets("policy.tamper") == ["trust_change:1"])
        // Reported once, not on every read.
        _ = try await fixture.engine.trust()
        #expect(try fixture.auditTargets("policy.tamper").count == 1)
    }

    @Test("an UPDATEd trust level (triggers dropped first) is ignored: the domain falls back, never up")
    func forgedTrustUpdate() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.files, to: .suggest, reason: "a")
        fixture.advance(1)
        try await fixture.engine.setTrust(.files, to: .inform, reason: "b")
        try fixture.sql("DROP TRIGGER policy_trust_changes_no_update")
        try fixture.sql("UPDATE policy_trust_changes SET to_level = 4 WHERE id = 2")
        let state = try await fixture.engine.trust(.files)
        #expect(state.level == .inform)
        #expect(state.tampered)
    }

    @Test("deleting a lowering from the middle of the history cannot bring the old, higher level back")
    func deletedMiddleRow() async throws {
        let fixture = try PolicyFixture(settings: PolicySettings())
        try await fixture.engine.setTrust(.web, to: .fullAutonomy, reason: "a", force: true)
        fixture.advance(1)
        try await fixture.engine.setTrust(.web, to: .none, reason: "b")
        fixture.advance(1)
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "c")
        try fixture.sql("DROP TRIGGER policy_trust_changes_no_delete")
        try fixture.sql("DELETE FROM policy_trust_changes WHERE id = 2")
        let state = try await fixture.engine.trust(.web)
        #expect(state.level <= .inform)
        #expect(state.tampered)
        // A new genuine change by the owner re-anchors the history.
        fixture.advance(1)
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "repair")
        #expect(try await fixture.engine.trust(.web).level == .suggest)
    }

    @Test("an INSERTed approval decision does not approve: the action cannot run")
    func forgedApproval() async throws {
        let fixture = try PolicyFixture()
        let pending = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        try fixture.sql(
            """
            INSERT INTO policy_approval_decisions (approval_id, seq, decision, actor, reason, domain, request_hash,
              decided_at, mac) VALUES (?, 1, 'approved', 'owner', '', 'shell', ?, 1, ?)
            """,
            [pending.id, pending.requestHash, String(repeating: "00", count: 32)]
        )
        #expect(try await fixture.engine.approval(pending.id).status == .pending)
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: request) }
        #expect(try fixture.auditTargets("policy.tamper") == ["decision:\(pending.id)"])
    }

    @Test("swapping the request of an approved action makes the approval void")
    func swappedRequest() async throws {
        let fixture = try PolicyFixture()
        let pending = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        try await fixture.engine.approve(pending.id)
        try fixture.sql("UPDATE policy_approvals SET arguments = '{\"cmd\":\"rm -rf ~\"}' WHERE id = ?", [pending.id])
        let evil = ActionRequest(tool: "shell.run", arguments: "{\"cmd\":\"rm -rf ~\"}", destination: "workspace")
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: evil) }
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: request) }
        // Recomputing the hash does not help either: the MAC covers it.
        let evilHash = evil.hash(domain: .shell)
        try fixture.sql("UPDATE policy_approvals SET request_hash = ? WHERE id = ?", [evilHash, pending.id])
        try fixture.sql(
            "UPDATE policy_approval_decisions SET request_hash = ? WHERE approval_id = ?", [evilHash, pending.id])
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: evil) }
    }

    @Test("INSERTed owner approvals do not count as evidence for raising trust")
    func forgedEvidence() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "a")
        fixture.advance(1)
        try await fixture.approveMany(1, in: .web)
        for index in 0..<20 {
            let id = "forged\(index)"
            try fixture.sql(
                """
                INSERT INTO policy_approvals (id, principal, domain, tool, arguments, destination, request_hash,
                  created_at, expires_at, mac) VALUES (?, 'owner', 'web', 't', '{}', '', 'h', 9999999999999,
                  9999999999999, 'm')
                """, [id])
            try fixture.sql(
                """
                INSERT INTO policy_approval_decisions (approval_id, seq, decision, actor, reason, domain, request_hash,
                  decided_at, mac) VALUES (?, ?, 'approved', 'owner', '', 'web', 'h', 9999999999999, 'm')
                """, [id, 100 + index])
        }
        #expect(try await fixture.engine.evidence(.web).approvals.count == 1)
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.setTrust(.web, to: .fullAutonomy, reason: "evidence!")
        }
    }

    @Test("an INSERTed contact is not a contact; an UPDATEd ceiling voids the grant")
    func forgedContact() async throws {
        let fixture = try PolicyFixture()
        try fixture.sql(
            """
            INSERT INTO policy_contacts (id, channel, sender_id, ceilings, added_by, added_at, mac)
            VALUES ('evil', 'telegram', '666', 'shell=4', 'owner', 1, 'deadbeef')
            """)
        #expect(try await fixture.engine.principal(channel: "telegram", senderID: "666") == nil)
        let grant = try await fixture.engine.addContact(channel: "telegram", senderID: "42")
        #expect(try await fixture.engine.principal(channel: "telegram", senderID: "42") == grant.principal)
        try fixture.sql("UPDATE policy_contacts SET ceilings = 'shell=4' WHERE id = ?", [grant.id])
        #expect(try await fixture.engine.principal(channel: "telegram", senderID: "42") == nil)
        #expect(Set(try fixture.auditTargets("policy.tamper")) == ["contact:evil", "contact:\(grant.id)"])
    }

    @Test(
        "a planted contact row blocks nothing: the owner can still add that sender, and only the genuine grant counts")
    func plantedRowDoesNotBlock() async throws {
        let fixture = try PolicyFixture()
        try fixture.sql(
            """
            INSERT INTO policy_contacts (id, channel, sender_id, ceilings, added_by, added_at, mac)
            VALUES ('evil', 'telegram', '666', 'shell=4', 'owner', 1, 'deadbeef')
            """)
        let grant = try await fixture.engine.addContact(channel: "telegram", senderID: "666")
        #expect(try await fixture.engine.principal(channel: "telegram", senderID: "666") == grant.principal)
        // A second genuine grant for the same sender is refused.
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.addContact(channel: "telegram", senderID: "666")
        }
    }

    @Test("senders are matched byte for byte: a look-alike handle (Kelvin sign, decomposed accent) is not the contact")
    func lookAlikeSenders() async throws {
        let fixture = try PolicyFixture()
        let kevin = try await fixture.engine.addContact(
            channel: "webhook:chat", senderID: "Kevin", ceilings: [.web: .actAndReport])
        let jose = try await fixture.engine.addContact(channel: "webhook:chat", senderID: "Jos\u{E9}")
        #expect(try await fixture.engine.principal(channel: "webhook:chat", senderID: "Kevin") == kevin.principal)
        #expect(try await fixture.engine.principal(channel: "webhook:chat", senderID: "\u{212A}evin") == nil)
        #expect(try await fixture.engine.principal(channel: "webhook:chat", senderID: "Jose\u{301}") == nil)
        #expect(try await fixture.engine.principal(channel: "webhook:chat", senderID: "Jos\u{E9}") == jose.principal)
    }

    @Test("taint is cleared only by a genuine clear row; a forged clear keeps the conversation tainted")
    func taintClear() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.taint("conv-1", reason: "read web content")
        #expect(try await fixture.engine.taint(of: "conv-1").isTainted)
        try fixture.sql(
            "INSERT INTO policy_taint (conversation, event, reason, created_at, mac) VALUES ('conv-1', 'clear', '', 1, 'x')"
        )
        #expect(try await fixture.engine.taint(of: "conv-1").isTainted)
        try await fixture.engine.clearTaint("conv-1")
        #expect(!(try await fixture.engine.taint(of: "conv-1").isTainted))
    }
}
