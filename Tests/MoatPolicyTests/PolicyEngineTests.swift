import Foundation
import MoatCore
import MoatPolicy
import Testing

@Suite struct TrustChangeTests {
    @Test("defaults are restrictive: every domain at inform or lower")
    func defaults() async throws {
        let fixture = try PolicyFixture()
        for state in try await fixture.engine.trust() {
            #expect(state.level <= .inform)
            #expect(state.lastChange == nil)
        }
    }

    @Test("raising to 3 without evidence is refused, and changes nothing")
    func evidenceRequired() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "try suggestions")
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.setTrust(.web, to: .actAndReport, reason: "faster")
        }
        #expect(try await fixture.engine.trust(.web).level == .suggest)
        #expect(try await fixture.engine.history(.web).count == 1)
    }

    @Test("ten owner approvals with no denial are evidence enough to raise to 3; the evidence is recorded")
    func evidenceSuffices() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "try suggestions")
        fixture.advance(1)
        try await fixture.approveMany(9, in: .web)
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.setTrust(.web, to: .actAndReport, reason: "nine is not ten")
        }
        try await fixture.approveMany(1, in: .web)
        let change = try await fixture.engine.setTrust(.web, to: .actAndReport, reason: "it has been right 10 times")
        #expect(change.kind == .set)
        #expect(change.evidence.contains("\"approved\":10"))
        #expect(try await fixture.engine.trust(.web).level == .actAndReport)
    }

    @Test("a denial since the last change blocks raising; --force with a reason raises and is recorded as forced")
    func forced() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.files, to: .suggest, reason: "start")
        fixture.advance(1)
        try await fixture.approveMany(12, in: .files)
        let pending = try await fixture.engine.requestApproval(
            ActionRequest(tool: "rm", arguments: "{}", destination: "/tmp"), domain: .files, principal: .owner)
        try await fixture.engine.deny(pending.id, reason: "no")
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.setTrust(.files, to: .fullAutonomy, reason: "go")
        }
        await #expect(throws: PolicyError.self) {
            try await fixture.engine.setTrust(.files, to: .fullAutonomy, reason: "  ", force: true)
        }
        let change = try await fixture.engine.setTrust(
            .files, to: .fullAutonomy, reason: "I accept the risk", force: true)
        #expect(change.kind == .force)
        #expect(change.evidence.contains("\"forced\":true"))
        #expect(try fixture.auditTargets("trust.change") == ["files", "files"])
    }

    @Test("two denials in a row lower the domain by one level, recorded with the denials as evidence")
    func autoLower() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.email, to: .suggest, reason: "try")
        fixture.advance(1)
        var ids: [String] = []
        for index in 0..<2 {
            let pending = try await fixture.engine.requestApproval(
                ActionRequest(tool: "send", arguments: "{\"n\":\(index)}", destination: "bob@example.com"),
                domain: .email, principal: .owner)
            fixture.advance(1)
            try await fixture.engine.deny(pending.id, reason: "wrong recipient")
            ids.append(pending.id)
            if index == 0 { #expect(try await fixture.engine.trust(.email).level == .suggest) }
        }
        let state = try await fixture.engine.trust(.email)
        #expect(state.level == .inform)
        #expect(state.lastChange?.kind == .lower)
        #expect(state.lastChange?.actor == "system")
        #expect(state.lastChange?.evidence.contains(ids[1]) == true)
    }

    @Test("an approval between two denials resets the run: no lowering")
    func denialsNotInARow() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.email, to: .suggest, reason: "try")
        fixture.advance(1)
        for (index, approve) in [false, true, false].enumerated() {
            let pending = try await fixture.engine.requestApproval(
                ActionRequest(tool: "send", arguments: "{\"n\":\(index)}", destination: ""), domain: .email,
                principal: .owner)
            fixture.advance(1)
            if approve {
                try await fixture.engine.approve(pending.id)
            } else {
                try await fixture.engine.deny(pending.id)
            }
        }
        #expect(try await fixture.engine.trust(.email).level == .suggest)
    }

    @Test("a sandbox violation lowers the domain to inform")
    func sandboxViolation() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.shell, to: .fullAutonomy, reason: "test box", force: true)
        let change = try await fixture.engine.recordSandboxViolation(.shell, detail: "blocked syscall ptrace")
        #expect(change?.to == .inform)
        #expect(try await fixture.engine.trust(.shell).level == .inform)
        #expect(try await fixture.engine.recordSandboxViolation(.shell, detail: "again") == nil)
    }

    @Test("rollback is a recorded change back to the earlier level; an unknown id is refused")
    func rollback() async throws {
        let fixture = try PolicyFixture()
        let first = try await fixture.engine.setTrust(.calendar, to: .suggest, reason: "a")
        fixture.advance(1)
        let second = try await fixture.engine.setTrust(.calendar, to: .none, reason: "b")
        fixture.advance(1)
        let undo = try await fixture.engine.rollback(second.id)
        #expect(undo.kind == .rollback)
        #expect(undo.rollbackOf == second.id)
        #expect(try await fixture.engine.trust(.calendar).level == .suggest)
        #expect(try await fixture.engine.history(.calendar).map(\.id) == [first.id, second.id, undo.id])
        await #expect(throws: PolicyError.self) { try await fixture.engine.rollback(999) }
        // Rolling back to 3 or 4 needs evidence like any raise.
        let forced = try await fixture.engine.setTrust(.calendar, to: .fullAutonomy, reason: "c", force: true)
        fixture.advance(1)
        let lowered = try await fixture.engine.setTrust(.calendar, to: .inform, reason: "d")
        await #expect(throws: PolicyError.self) { try await fixture.engine.rollback(lowered.id) }
        _ = forced
    }

    @Test("setting the same level, or an empty reason, is refused")
    func badInput() async throws {
        let fixture = try PolicyFixture()
        await #expect(throws: PolicyError.self) { try await fixture.engine.setTrust(.web, to: .inform, reason: "same") }
        await #expect(throws: PolicyError.self) { try await fixture.engine.setTrust(.web, to: .suggest, reason: "") }
        #expect(try await fixture.engine.history().isEmpty)
    }

    @Test("history rows cannot be updated or deleted by Moat's own SQL")
    func appendOnly() async throws {
        let fixture = try PolicyFixture()
        try await fixture.engine.setTrust(.web, to: .suggest, reason: "a")
        #expect(throws: (any Error).self) { try fixture.sql("UPDATE policy_trust_changes SET reason = 'x'") }
        #expect(throws: (any Error).self) { try fixture.sql("DELETE FROM policy_trust_changes") }
    }
}

@Suite struct ApprovalTests {
    let request = ActionRequest(tool: "shell.run", arguments: "{\"cmd\":\"ls\"}", destination: "workspace")

    @Test("an approval is bound to the exact request and runs once")
    func singleUse() async throws {
        let fixture = try PolicyFixture()
        let pending = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        #expect(pending.status == .pending)
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: request) }
        try await fixture.engine.approve(pending.id)
        let changed = ActionRequest(tool: "shell.run", arguments: "{\"cmd\":\"ls -a\"}", destination: "workspace")
        do {
            _ = try await fixture.engine.consume(pending.id, request: changed)
            Issue.record("a different request used the approval")
        } catch let error as PolicyError {
            #expect(error.code == .requestMismatch)
        }
        let used = try await fixture.engine.consume(pending.id, request: request)
        guard case .used = used.status else {
            Issue.record("not marked used")
            return
        }
        do {
            _ = try await fixture.engine.consume(pending.id, request: request)
            Issue.record("used twice")
        } catch let error as PolicyError {
            #expect(error.code == .alreadyUsed)
        }
        #expect(
            try fixture.auditActions().filter { $0.hasPrefix("approval.") } == [
                "approval.request", "approval.approve", "approval.use",
            ])
    }

    @Test("an expired approval cannot be approved or used; the default lifetime is one hour")
    func expiry() async throws {
        let fixture = try PolicyFixture()
        let pending = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        #expect(pending.expiresAt - pending.createdAt == 3_600_000)
        fixture.advance(3600)
        do {
            try await fixture.engine.approve(pending.id)
            Issue.record("expired approval approved")
        } catch let error as PolicyError {
            #expect(error.code == .expired)
        }
        #expect(try await fixture.engine.approval(pending.id).status == .expired)
        let second = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        try await fixture.engine.approve(second.id)
        fixture.advance(3601)
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(second.id, request: request) }
    }

    @Test("a decision is final: approve after deny, deny after approve and unknown ids are refused")
    func decidedOnce() async throws {
        let fixture = try PolicyFixture()
        let pending = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        try await fixture.engine.deny(pending.id, reason: "not now")
        await #expect(throws: PolicyError.self) { try await fixture.engine.approve(pending.id) }
        await #expect(throws: PolicyError.self) { try await fixture.engine.consume(pending.id, request: request) }
        let other = try await fixture.engine.requestApproval(request, domain: .shell, principal: .owner)
        try await fixture.engine.approve(other.id)
        await #expect(throws: PolicyError.self) { try await fixture.engine.deny(other.id) }
        await #expect(throws: PolicyError.self) { try await fixture.engine.approve("nosuchid") }
        #expect(try await fixture.engine.approvals(pendingOnly: true).isEmpty)
        #expect(try await fixture.engine.approvals().count == 2)
    }
}
