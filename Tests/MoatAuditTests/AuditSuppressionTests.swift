import Foundation
import GRDB
import MoatAudit
import MoatStore
import Synchronization
import Testing

/// An append is confirmed by reading the row back in the same transaction: a trigger that drops or
/// rewrites chosen entries makes the append fail, so the action it was guarding does not happen.
@Suite struct AuditSuppressionTests {
    /// Adds `sql` (a trigger) to the open database, as an attacker with write access to moat.db would
    /// after Moat opened it.
    func plant(_ fixture: AuditFixture, _ sql: String) throws {
        try fixture.database.pool.writeWithoutTransaction { db in try db.execute(sql: sql) }
    }

    @Test("a BEFORE INSERT … RAISE(IGNORE) trigger makes the append fail instead of dropping the entry")
    func ignoredInsertFails() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(2)
        try plant(
            fixture,
            """
            CREATE TRIGGER hide BEFORE INSERT ON audit_entries WHEN NEW.action IN ('vault.add')
              BEGIN SELECT RAISE(IGNORE); END
            """
        )
        let error = await #expect(throws: AuditError.self) {
            try await fixture.log.append(AuditEvent(actor: "owner", action: "vault.add", target: "GITHUB_TOKEN"))
        }
        #expect(error?.code == .appendFailed)
        #expect(error?.message.contains("was not stored as written") == true)
        #expect(error?.message.contains("so it was not carried out") == true)
        let ran = Mutex(false)
        await #expect(throws: AuditError.self) {
            try await fixture.log.performAfterAudit(AuditEvent(actor: "owner", action: "vault.add")) {
                ran.withLock { $0 = true }
            }
        }
        #expect(!ran.withLock { $0 })
        #expect(throws: AuditError.self) { try fixture.log.appendNow(AuditEvent(actor: "owner", action: "vault.add")) }
        // Other actions still append, and the chain has no gap.
        try await fixture.append(1)
        #expect(try AuditReader.count(fixture.database) == 3)
        #expect(try fixture.verify().brokenAt == nil)
    }

    @Test("a trigger that rewrites the stored row, or adds one, makes the append fail")
    func rewrittenRowFails() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(1)
        try plant(
            fixture,
            """
            DROP TRIGGER audit_entries_no_update;
            CREATE TRIGGER soften AFTER INSERT ON audit_entries WHEN NEW.action = 'vault.rm'
              BEGIN UPDATE audit_entries SET target = '' WHERE seq = NEW.seq; END
            """
        )
        await #expect(throws: AuditError.self) {
            try await fixture.log.append(AuditEvent(actor: "owner", action: "vault.rm", target: "GITHUB_TOKEN"))
        }
        try plant(
            fixture,
            """
            CREATE TRIGGER pad AFTER INSERT ON audit_entries WHEN NEW.action = 'vault.seal'
              BEGIN INSERT INTO audit_entries SELECT seq + 1, time, actor, 'x', target, source_ip, user_agent,
                outcome, metadata, hash, hash FROM audit_entries WHERE seq = NEW.seq; END
            """
        )
        await #expect(throws: AuditError.self) {
            try await fixture.log.append(AuditEvent(actor: "owner", action: "vault.seal"))
        }
        #expect(try AuditReader.count(fixture.database) == 1)
    }
}
