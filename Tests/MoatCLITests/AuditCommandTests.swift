import Foundation
import GRDB
import MoatTestSupport
import Testing

/// `moat audit` through the real binary, on state a real `moat serve` created.
@Suite(.serialized) struct AuditCommandTests {
    @Test("serve records start, config and stop; verify proves the chain intact with the shutdown checkpoint")
    func verifyAfterServe() async throws {
        let home = try await ServedHome.copy()
        let tail = try await MoatBinary.run(["audit", "tail", "-n", "50"], home: home.path)
        #expect(tail.status == 0)
        for action in ["gateway.start", "config.loaded", "gateway.stop"] {
            #expect(tail.stdout.contains(action), "missing \(action) in:\n\(tail.stdout)")
        }
        let verify = try await MoatBinary.run(["audit", "verify"], home: home.path)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.hasPrefix("✓ chain intact: "))
        #expect(verify.stdout.contains("last checkpoint at entry"))
        // The verify run itself is recorded.
        #expect(
            try await MoatBinary.run(["audit", "tail", "-n", "1"], home: home.path).stdout.contains("audit.verify"))
    }

    @Test("the audit commands read no setting: a broken config file stops trust, not audit verify")
    func auditWithoutConfig() async throws {
        let home = try await ServedHome.copy()
        _ = try home.write("config.yaml", "gateway:\n  prot: 1\n")
        let trust = try await MoatBinary.run(["trust", "show"], home: home.path)
        #expect(trust.status == 78, "\(trust.stderr)")
        let verify = try await MoatBinary.run(["audit", "verify"], home: home.path)
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(try await MoatBinary.run(["audit", "tail", "-n", "1"], home: home.path).status == 0)
    }

    @Test("a kept checkpoint catches a truncated tail that the chain alone cannot see")
    func keptCheckpointCatchesTruncation() async throws {
        let home = try await ServedHome.copy()
        let checkpoint = try await MoatBinary.run(["audit", "checkpoint"], home: home.path)
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        let lines = checkpoint.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("moat/"))
        #expect(lines[4].hasPrefix("— moat-audit "))
        let kept = try home.write("kept-checkpoint.txt", checkpoint.stdout)
        #expect(try await MoatBinary.run(["audit", "verify", "--checkpoint", kept], home: home.path).status == 0)

        // An attacker with write access to moat.db (not the vault) drops the last entries and the
        // stored checkpoints.
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        try await queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entries_no_delete")
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_entries") ?? 0
            try db.execute(sql: "DELETE FROM audit_entries WHERE seq > ?", arguments: [count - 2])
            try db.execute(sql: "DELETE FROM audit_checkpoints")
        }
        try queue.close()
        let plain = try await MoatBinary.run(["audit", "verify"], home: home.path)
        #expect(plain.status == 0)
        let withKept = try await MoatBinary.run(["audit", "verify", "--checkpoint", kept], home: home.path)
        #expect(withKept.status == 1)
        #expect(withKept.stdout.contains("✗ chain broken at entry"))
        // The plain verify above appended a new entry where the deleted ones were, so the kept
        // checkpoint sees either a shorter log or a different entry at its count.
        #expect(withKept.stdout.contains("kept checkpoint"))
    }

    @Test("an edited entry is named by verify, and a forged checkpoint file is refused")
    func editedEntryAndForgedCheckpoint() async throws {
        let home = try await ServedHome.copy()
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        try await queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_entries_no_update")
            try db.execute(sql: "UPDATE audit_entries SET outcome = 'failure' WHERE seq = 2")
        }
        try queue.close()
        let verify = try await MoatBinary.run(["audit", "verify"], home: home.path)
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("✗ chain broken at entry 2: its contents do not match its hash (edited)"))

        let forged = try home.write("forged.txt", "moat/x\n5\nAAAA\n\n— moat-audit AAAA\n")
        let result = try await MoatBinary.run(["audit", "verify", "--checkpoint", forged], home: home.path)
        #expect(result.status != 0)
        #expect(result.stderr.contains("checkpoint rejected"))
    }

    @Test("export writes CSV with a header and JSON lines, filtered by action")
    func export() async throws {
        let home = try await ServedHome.copy()
        let csv = try await MoatBinary.run(["audit", "export", "--format", "csv"], home: home.path)
        #expect(csv.status == 0)
        #expect(
            csv.stdout.hasPrefix("seq,time,actor,action,target,source_ip,user_agent,outcome,metadata,prev_hash,hash\n"))
        let jsonl = try await MoatBinary.run(
            ["audit", "export", "--format", "jsonl", "--action", "gateway.*"], home: home.path)
        #expect(jsonl.status == 0)
        let lines = jsonl.stdout.split(separator: "\n")
        #expect(lines.count >= 2)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect((object?["action"] as? String)?.hasPrefix("gateway.") == true)
        }
        let bad = try await MoatBinary.run(
            ["audit", "export", "--format", "csv", "--since", "yesterday"], home: home.path)
        #expect(bad.status == 64)
    }

    @Test("vault changes from the CLI are recorded by name before they happen, never with the value")
    func vaultChangesAudited() async throws {
        let home = try await ServedHome.copy()
        let value = "tok-9f8e7d6c5b4a39281706"
        let added = try await MoatBinary.run(
            ["vault", "add", "DEPLOY_TOKEN", "--allow-tool", "http", "--allow-host", "api.example.com"],
            home: home.path,
            stdin: value + "\n"
        )
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try await MoatBinary.run(["vault", "rm", "DEPLOY_TOKEN"], home: home.path).status == 0)
        let tail = try await MoatBinary.run(["audit", "tail", "-n", "5"], home: home.path)
        #expect(tail.stdout.contains("vault.add  DEPLOY_TOKEN"), "\(tail.stdout)")
        #expect(tail.stdout.contains("vault.rm  DEPLOY_TOKEN"))
        #expect(tail.stdout.contains("api.example.com"))
        let export = try await MoatBinary.run(["audit", "export", "--format", "jsonl"], home: home.path)
        #expect(!export.stdout.contains(value))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    @Test("a refused bind is recorded in an existing installation's log")
    func bindRefusalAudited() async throws {
        let home = try await ServedHome.copy()
        let refused = try await MoatBinary.run(["serve", "--host", "0.0.0.0"], home: home.path)
        #expect(refused.status == 78)
        let tail = try await MoatBinary.run(["audit", "tail", "-n", "1"], home: home.path)
        #expect(tail.stdout.contains("gateway.bind.refused  0.0.0.0  denied"), "\(tail.stdout)")
    }

    @Test("audit commands on a home with no state say how to create it")
    func noState() async throws {
        let temp = TemporaryDirectory()
        let result = try await MoatBinary.run(["audit", "verify"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("moat serve"))
    }
}
