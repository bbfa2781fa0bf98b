import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatCore
import MoatStore
import MoatTestSupport
import Testing

@Suite struct AuditChainTests {
    @Test("an untouched log verifies, entries are gap-free and link to the genesis value")
    func intact() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(25)
        #expect(try fixture.verify() == .intact(entries: 25, lastCheckpoint: nil))
        let entries = try AuditReader.tail(fixture.database, count: 100)
        #expect(entries.map(\.sequence) == Array(1...25))
        #expect(entries.first?.previousHash == AuditChain.genesis)
        for (previous, entry) in zip(entries, entries.dropFirst()) {
            #expect(entry.previousHash == previous.hash)
            #expect(AuditChain.recompute(entry) == entry.hash)
        }
        #expect(try fixture.verify().summary == "✓ chain intact: 25 entries verified, no checkpoint yet")
    }

    @Test("the documented worked example hashes to the documented value")
    func workedExample() {
        let hash = AuditChain.hash(
            sequence: 1,
            time: "2026-11-23T20:52:00.123Z",
            actor: "owner",
            action: "vault.add",
            target: "OPENAI_KEY",
            sourceIP: "127.0.0.1",
            userAgent: "moat-cli",
            outcome: "success",
            metadata: #"{"allow_hosts":["api.openai.com"]}"#,
            previousHash: AuditChain.genesis
        )
        // Docs/Audit.md shows this input byte by byte; an outside verifier must reproduce this value.
        #expect(hash == AuditChainTests.documentedExampleHash)
    }

    static let documentedExampleHash = "72b4c81ae9c6a536358309c4f67506f9932fd62424bd286e759b8c71978de8cf"

    @Test(
        "editing any field of any entry with plain SQL is detected at that entry",
        arguments: [
            "time", "actor", "action", "target", "source_ip", "user_agent", "outcome", "metadata",
        ])
    func editedField(_ column: String) async throws {
        let fixture = try AuditFixture()
        try await fixture.append(10)
        try fixture.tamper("UPDATE audit_entries SET \(column) = \(column) || 'x' WHERE seq = 6")
        let report = try fixture.verify()
        #expect(report.brokenAt == 6)
        #expect(report.summary.contains("edited"))
    }

    @Test("an edit that also recomputes that entry's hash breaks the link of the next entry")
    func editedAndRehashed() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(10)
        let entry = try #require(try AuditReader.tail(fixture.database, count: 10).first { $0.sequence == 4 })
        let newHash = AuditChain.hash(
            sequence: 4, time: entry.time, actor: "owner", action: entry.action, target: entry.target,
            sourceIP: entry.sourceIP, userAgent: entry.userAgent, outcome: entry.outcome, metadata: entry.metadata,
            previousHash: entry.previousHash
        )
        try fixture.tamper("UPDATE audit_entries SET actor = 'owner', hash = ? WHERE seq = 4", [newHash])
        #expect(try fixture.verify().brokenAt == 5)
    }

    @Test("deleting, swapping and inserting entries are detected")
    func structuralTampering() async throws {
        var fixture = try AuditFixture()
        try await fixture.append(10)
        try fixture.tamper("DELETE FROM audit_entries WHERE seq = 3")
        let report = try fixture.verify()
        #expect(report.brokenAt == 3)
        #expect(report.summary.contains("missing"))

        fixture = try AuditFixture()
        try await fixture.append(10)
        // Swap the contents of entries 2 and 7 (keeping their sequence numbers).
        try fixture.tamper(
            """
            UPDATE audit_entries SET target = CASE seq WHEN 2 THEN 'item-6' WHEN 7 THEN 'item-1' END,
              hash = (SELECT hash FROM audit_entries a WHERE a.seq = CASE audit_entries.seq WHEN 2 THEN 7 ELSE 2 END),
              prev_hash = (SELECT prev_hash FROM audit_entries a WHERE a.seq = CASE audit_entries.seq WHEN 2 THEN 7 ELSE 2 END)
            WHERE seq IN (2, 7)
            """
        )
        #expect(try fixture.verify().brokenAt == 2)

        fixture = try AuditFixture()
        try await fixture.append(10)
        try fixture.tamper(
            """
            INSERT INTO audit_entries SELECT 11, time, 'owner', 'vault.rm', 'X', '', '', 'success', '{}', hash, hash
            FROM audit_entries WHERE seq = 10
            """
        )
        #expect(try fixture.verify().brokenAt == 11)

        fixture = try AuditFixture()
        try await fixture.append(10)
        try fixture.tamper("UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 5")
        #expect(try fixture.verify().brokenAt != nil)
    }

    @Test("the append-only triggers stop Moat's own code from updating or deleting entries")
    func triggers() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(2)
        #expect(throws: DatabaseError.self) {
            try fixture.database.pool.write { db in try db.execute(sql: "UPDATE audit_entries SET actor = 'x'") }
        }
        #expect(throws: DatabaseError.self) {
            try fixture.database.pool.write { db in try db.execute(sql: "DELETE FROM audit_entries") }
        }
    }
}

@Suite struct AuditOutsideVerifierTests {
    @Test("an independent verifier written from Docs/Audit.md (tools/audit_chain_check.py) agrees with ours")
    func pythonVerifier() async throws {
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
        try #require(python, "python3 runs the outside verifier")
        let fixture = try AuditFixture()
        try await fixture.append(50)
        try await fixture.log.append(
            AuditEvent(actor: "owner", action: "vault.add", metadata: ["ünïcode": "✓ \"q\"\n"])
        )
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../tools/audit_chain_check.py").standardized.path
        let database = fixture.temp.file("moat.db")
        func run() async throws -> String {
            try await offCooperativePool {
                let pipe = Pipe()
                let process = try ChildProcess(
                    "/usr/bin/python3", [script, database], standardOutput: .pipe(pipe), standardError: .descriptor(2))
                let text = String(decoding: pipe.fileHandleForReading.readAll(), as: UTF8.self)
                process.waitUntilExit()
                return text
            }
        }
        #expect(try await run() == "ok 51\n")
        try fixture.tamper("UPDATE audit_entries SET outcome = 'failure' WHERE seq = 17")
        #expect(try await run() == "broken at 17: contents do not match the hash\n")
    }
}
