import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport
import MoatVault
import Testing

/// The rollback guard reads the newest recorded vault revision from the hash-chained table itself, so
/// nothing outside the chain (an index) can hide it.
@Suite struct VaultRollbackGuardTests {
    @Test("an index re-pointed through writable_schema cannot hide the newest recorded vault revision")
    func swappedIndex() async throws {
        let fixture = try AuditFixture()
        for generation in 1...3 {
            let revision = VaultRevision(
                generation: UInt64(generation), sha256: String(repeating: "\(generation)", count: 64))
            try await fixture.log.append(
                AuditEvent(
                    actor: "owner", action: "vault.add", target: "SECRET_\(generation)",
                    metadata: VaultRollbackGuard.metadata(revision)))
        }
        try await fixture.append(1)
        // The attack found in review: a partial index that leaves out entry 3 is given the b-tree of
        // Moat's own action index, then removed from the schema; the schema text is unchanged.
        try await fixture.database.pool.writeWithoutTransaction { db in
            try db.execute(sql: "CREATE INDEX evil ON audit_entries(action) WHERE seq < 3")
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(
                sql: """
                    UPDATE sqlite_master SET rootpage = (SELECT rootpage FROM sqlite_master WHERE name = 'evil')
                    WHERE name = 'audit_entries_action'
                    """)
            try db.execute(sql: "DELETE FROM sqlite_master WHERE name = 'evil'")
            try db.execute(sql: "PRAGMA writable_schema = OFF")
        }
        try fixture.database.close()
        let reopened = try MoatDatabase(path: fixture.temp.file("moat.db"), migrations: AuditFixture.migrations)
        // The swapped index is really in use: a lookup through it misses entry 3.
        let throughIndex = try await reopened.pool.read { db in
            try Int64.fetchOne(
                db,
                sql: """
                    SELECT max(seq) FROM audit_entries INDEXED BY audit_entries_action
                    WHERE action >= 'vault.' AND action < 'vault/'
                    """)
        }
        #expect(throughIndex == 2)
        let newest = try #require(try VaultRollbackGuard.newestRecorded(reopened))
        #expect(newest.sequence == 3)
        #expect(newest.revision.generation == 3)
    }
}
