import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport
import Testing

@Suite struct AuditCheckpointTests {
    @Test("a signed checkpoint is stored every N entries and verify reports the last one")
    func periodic() async throws {
        let fixture = try AuditFixture(checkpointInterval: 10)
        try await fixture.append(25)
        #expect(try fixture.verify() == .intact(entries: 25, lastCheckpoint: 20))
        #expect(try AuditReader.latestCheckpoint(fixture.database)?.count == 20)
        let onDemand = try await fixture.log.writeCheckpoint()
        #expect(onDemand.count == 25)
        #expect(try fixture.verify().summary == "✓ chain intact: 25 entries verified, last checkpoint at entry 25")
    }

    @Test("the note round-trips through its text form and is refused when any byte changes")
    func noteFormat() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(3)
        let checkpoint = try await fixture.log.writeCheckpoint()
        let note = checkpoint.note(publicKey: fixture.keys.verifyingKey)
        let lines = note.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("moat/"))
        #expect(lines[1] == "3")
        #expect(lines[3] == "")
        #expect(lines[4].hasPrefix("— moat-audit "))
        #expect(try AuditCheckpoint.parse(note, publicKey: fixture.keys.verifyingKey) == checkpoint)

        // Change the count, the hash, or flip a signature character: all refused.
        let forgedCount = note.replacingOccurrences(of: "\n3\n", with: "\n2\n")
        #expect(throws: AuditError.self) {
            try AuditCheckpoint.parse(forgedCount, publicKey: fixture.keys.verifyingKey)
        }
        var bytes = Array(note.utf8)
        let signatureStart = bytes.count - 10
        bytes[signatureStart] = bytes[signatureStart] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: AuditError.self) {
            try AuditCheckpoint.parse(String(decoding: bytes, as: UTF8.self), publicKey: fixture.keys.verifyingKey)
        }
        // Signed by another key: refused.
        let stranger = Curve25519.Signing.PrivateKey()
        #expect(throws: AuditError.self) { try AuditCheckpoint.parse(note, publicKey: stranger.publicKey) }
        #expect(throws: AuditError.self) { try AuditCheckpoint.parse("", publicKey: fixture.keys.verifyingKey) }
    }

    @Test("a tampered stored checkpoint signature is detected")
    func tamperedStoredSignature() async throws {
        let fixture = try AuditFixture(checkpointInterval: 5)
        try await fixture.append(12)
        try fixture.tamper("UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE count = 5")
        let report = try fixture.verify()
        #expect(report.brokenAt == 5)
        #expect(report.summary.contains("invalid signature"))
    }

    @Test("a consistent rewrite of the whole chain is caught by the stored and the kept checkpoints")
    func consistentRewrite() async throws {
        let fixture = try AuditFixture(checkpointInterval: 1000)
        try await fixture.append(8)
        let kept = try await fixture.log.writeCheckpoint()
        // The attacker rewrites entry 2 and recomputes every hash after it, so the chain alone is consistent.
        try fixture.tamper("UPDATE audit_entries SET actor = 'attacker' WHERE seq = 2")
        var previous = AuditChain.genesis
        for entry in try AuditReader.tail(fixture.database, count: 100) {
            let rehashed = AuditChain.hash(
                sequence: entry.sequence, time: entry.time, actor: entry.actor, action: entry.action,
                target: entry.target, sourceIP: entry.sourceIP, userAgent: entry.userAgent, outcome: entry.outcome,
                metadata: entry.metadata, previousHash: previous
            )
            try fixture.tamper(
                "UPDATE audit_entries SET prev_hash = ?, hash = ? WHERE seq = ?",
                [previous, rehashed, entry.sequence]
            )
            previous = rehashed
        }
        // The stored signed checkpoint at 8 no longer matches.
        #expect(try fixture.verify().summary.contains("does not match the chain"))
        // Even with the stored checkpoints deleted, the owner's kept copy catches it.
        try fixture.tamper("DELETE FROM audit_checkpoints")
        #expect(try fixture.verify() == .intact(entries: 8, lastCheckpoint: nil))
        let report = try fixture.verify(kept: kept)
        #expect(report.brokenAt == 8)
        #expect(report.summary.contains("differs from your kept checkpoint"))
    }

    @Test("truncating the tail past a kept checkpoint is detected")
    func truncatedTail() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(10)
        let kept = try await fixture.log.writeCheckpoint()
        try fixture.tamper("DELETE FROM audit_entries WHERE seq > 6")
        try fixture.tamper("DELETE FROM audit_checkpoints")
        #expect(try fixture.verify() == .intact(entries: 6, lastCheckpoint: nil))
        let report = try fixture.verify(kept: kept)
        #expect(report.brokenAt == 7)
        #expect(report.summary.contains("tail truncated"))
    }

    @Test("restoring an older copy of moat.db is detected with a kept checkpoint")
    func restoredOlderCopy() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(5)
        // Back up the database as it is now (an "older copy").
        let backup = fixture.temp.file("old.db")
        try await fixture.database.pool.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM INTO ?", arguments: [backup])
        }
        try await fixture.append(5)
        let kept = try await fixture.log.writeCheckpoint()
        try fixture.database.close()
        try FileManager.default.removeItem(atPath: fixture.temp.file("moat.db"))
        for suffix in ["-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: fixture.temp.file("moat.db" + suffix))
        }
        try FileManager.default.moveItem(atPath: backup, toPath: fixture.temp.file("moat.db"))
        let restored = try MoatDatabase(path: fixture.temp.file("moat.db"), migrations: AuditFixture.migrations)
        #expect(
            try AuditVerifier.verify(restored, publicKey: fixture.keys.verifyingKey)
                == .intact(entries: 5, lastCheckpoint: nil))
        let report = try AuditVerifier.verify(restored, publicKey: fixture.keys.verifyingKey, kept: kept)
        #expect(report.summary.contains("older database restored"))
    }
}
