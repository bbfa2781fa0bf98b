import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatTestSupport
import Synchronization
import Testing

@Suite struct AuditAppendTests {
    @Test("sensitive metadata keys are redacted at any depth, with a keyed fingerprint that matches for equal values")
    func redaction() async throws {
        let fixture = try AuditFixture()
        let entry = try await fixture.log.append(
            AuditEvent(
                actor: "owner",
                action: "auth.login.failure",
                metadata: [
                    "password": "hunter2hunter2",
                    "request": ["headers": ["X-Api-Key": "abc123", "Accept": "json"], "note": "fine"],
                    "attempts": [["sessionId": "s1"], ["SESSION_ID": "s1"]],
                    "count": 3,
                ]
            )
        )
        #expect(!entry.metadata.contains("hunter2"))
        #expect(!entry.metadata.contains("abc123"))
        #expect(!entry.metadata.contains("\"s1\""))
        #expect(entry.metadata.contains("\"Accept\":\"json\""))
        #expect(entry.metadata.contains("\"count\":3"))
        let fingerprints = entry.metadata.matches(of: /\[REDACTED\] hmac:([0-9a-f]{16})/).map { String($0.1) }
        #expect(fingerprints.count == 4)
        // The two session ids were equal, so their fingerprints are equal; the others differ.
        #expect(Set(fingerprints).count == 3)
        // Same value in another entry: same fingerprint; the key is needed to make one.
        let again = try await fixture.log.append(
            AuditEvent(actor: "owner", action: "auth.login.failure", metadata: ["password": "hunter2hunter2"])
        )
        // Canonical order is attempts (2), count, password, request: the password's is the third.
        #expect(again.metadata.contains(fingerprints[2]))
        #expect(fingerprints[0] == fingerprints[1])
    }

    @Test("a vault secret value in any string field is scrubbed before it is written")
    func scrubbing() async throws {
        let fixture = try AuditFixture()
        let secret = AuditFixture.secretValue
        let entry = try await fixture.log.append(
            AuditEvent(
                actor: "owner",
                action: "tool.http.request",
                target: "https://api.example/?k=\(secret)",
                userAgent: "curl \(secret)",
                outcome: "failure: \(secret)",
                metadata: ["note": "the key was \(secret)", "list": ["x \(secret)"]]
            )
        )
        let stored = try await fixture.database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT target || user_agent || outcome || metadata FROM audit_entries")
        }
        #expect(stored?.contains(secret) == false)
        #expect(entry.target.contains("[secret:OPENAI_KEY]"))
        #expect(entry.metadata.contains("[secret:OPENAI_KEY]"))
        let raw =
            try Data(contentsOf: URL(fileURLWithPath: fixture.temp.file("moat.db")))
            + ((try? Data(contentsOf: URL(fileURLWithPath: fixture.temp.file("moat.db-wal")))) ?? Data())
        #expect(raw.range(of: Data(secret.utf8)) == nil)
    }

    @Test("a malformed action or oversized metadata is refused and nothing is written")
    func invalidEvents() async throws {
        let fixture = try AuditFixture()
        await #expect(throws: AuditError.self) {
            try await fixture.log.append(AuditEvent(actor: "x", action: "NoDots"))
        }
        await #expect(throws: AuditError.self) {
            try await fixture.log.append(
                AuditEvent(actor: "x", action: "a.b", metadata: ["blob": .string(String(repeating: "x", count: 20000))])
            )
        }
        #expect(try AuditReader.count(fixture.database) == 0)
    }

    @Test("fail-closed: with the disk full, the privileged action is refused and never runs")
    func failClosedDiskFull() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(1)
        // Cap the database at its current size: SQLite then reports SQLITE_FULL, as on a full disk.
        try await fixture.database.pool.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 1
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(pages)")
        }
        let ran = Mutex(false)
        let padding = String(repeating: "p", count: 500)
        await #expect(throws: AuditError.self) {
            for index in 0..<200 {
                try await fixture.log.performAfterAudit(
                    AuditEvent(
                        actor: "owner", action: "vault.rm", target: "\(index)", metadata: ["pad": .string(padding)])
                ) {
                    if index == 199 { ran.withLock { $0 = true } }
                }
            }
        }
        let error = await #expect(throws: AuditError.self) {
            try await fixture.log.performAfterAudit(
                AuditEvent(actor: "owner", action: "vault.rm", metadata: ["pad": .string(padding)])
            ) { ran.withLock { $0 = true } }
        }
        #expect(error?.code == .appendFailed)
        #expect(error?.message.contains("was not carried out") == true)
        #expect(ran.withLock { $0 } == false)
        #expect(try fixture.verify().brokenAt == nil)
    }

    @Test("fail-closed: with moat.db read-only, the append is refused and the action never runs")
    func failClosedReadOnly() async throws {
        let fixture = try AuditFixture()
        try await fixture.append(1)
        try await fixture.database.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = ON") }
        let ran = Mutex(false)
        await #expect(throws: AuditError.self) {
            try await fixture.log.performAfterAudit(AuditEvent(actor: "owner", action: "trust.set")) {
                ran.withLock { $0 = true }
            }
        }
        #expect(ran.withLock { $0 } == false)
        #expect(try AuditReader.count(fixture.database) == 1)
    }

    @Test("8 tasks × 1,000 concurrent appends make one linear chain of 8,000 entries that verifies")
    func concurrentAppends() async throws {
        let fixture = try AuditFixture()
        let log = fixture.log
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<1000 {
                        try await log.append(
                            AuditEvent(actor: "task-\(task)", action: "test.concurrent", target: "\(index)"))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try fixture.verify() == .intact(entries: 8000, lastCheckpoint: 8000))
        let perActor = try await fixture.database.pool.read { db in
            try Int.fetchAll(db, sql: "SELECT count(*) FROM audit_entries GROUP BY actor")
        }
        #expect(perActor == Array(repeating: 1000, count: 8))
    }

    @Test("appends made withNextCommit chain in order with durable ones, and leave the writer at synchronous=FULL")
    func deferredDurability() async throws {
        let fixture = try AuditFixture()
        let log = fixture.log
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask {
                    for index in 0..<100 {
                        let event = AuditEvent(actor: "task-\(task)", action: "test.deferred", target: "\(index)")
                        if index.isMultiple(of: 2) {
                            try await log.append(
                                event: { (_: Void) in event }, durability: .withNextCommit, writing: { _ in })
                        } else {
                            try await log.append(event)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try fixture.verify() == .intact(entries: 400, lastCheckpoint: nil))
        // Every other commit of moat.db (the pool's, another module's) relies on FULL.
        let mode = try await fixture.database.pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        #expect(mode == 2)
    }

    @Test("a part made withNextCommit whose rows fail keeps nothing, throws, and the writer is back at FULL")
    func deferredFailure() async throws {
        struct Refused: Error {}
        let fixture = try AuditFixture()
        try await fixture.append(1)
        await #expect(throws: (any Error).self) {
            try await fixture.log.append(
                event: { (_: Void) in AuditEvent(actor: "system", action: "test.refused") },
                durability: .withNextCommit,
                writing: { db in try db.execute(sql: "INSERT INTO audit_entries_probe_missing VALUES (1)") })
        }
        await #expect(throws: Refused.self) {
            try await fixture.log.append(
                event: { (_: Void) in AuditEvent(actor: "system", action: "test.refused") },
                durability: .withNextCommit,
                writing: { _ in throw Refused() })
        }
        try await fixture.append(1)
        #expect(try fixture.verify() == .intact(entries: 2, lastCheckpoint: nil))
        let mode = try await fixture.database.pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        #expect(mode == 2)
    }

    @Test("two logs on the same file (server and CLI) still produce one chain")
    func twoWriters() async throws {
        let fixture = try AuditFixture()
        let second = try MoatDatabase(path: fixture.temp.file("moat.db"), migrations: AuditFixture.migrations)
        let other = AuditLog(database: second, keys: fixture.keys, origin: fixture.log.origin)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fixture.append(200) }
            group.addTask { for _ in 0..<200 { try await other.append(AuditEvent(actor: "cli", action: "test.cli")) } }
            try await group.waitForAll()
        }
        #expect(try fixture.verify() == .intact(entries: 400, lastCheckpoint: nil))
    }

    @Test(
        "a paged export (the console's download) is byte for byte the whole export, for page sizes that do and do not divide it, and leaves out what is appended while it runs"
    )
    func pagedExport() async throws {
        let fixture = try AuditFixture()
        for index in 0..<23 {
            let action = index % 3 == 0 ? "vault.add" : "auth.login.success"
            try await fixture.log.append(AuditEvent(actor: "owner", action: action, target: "entry \(index)"))
        }
        for format in AuditExportFormat.allCases {
            for filter in [AuditReader.Filter(), AuditReader.Filter(action: "vault.*")] {
                var whole = ""
                try format.export(fixture.database, filter: filter) { whole += $0 + "\n" }
                for size in [1, 4, 8, 23, 500] {
                    var pages = format.pages(of: fixture.database, filter: filter, pageSize: size)
                    var text = ""
                    var count = 0
                    while let page = try await pages.next() {
                        text += page
                        count += 1
                    }
                    #expect(text == whole, "\(format) page size \(size)")
                    #expect(count <= 23 / size + 2)
                }
            }
        }
        // Entries appended after the first page wait for the next export.
        var pages = AuditExportFormat.jsonl.pages(of: fixture.database, filter: .init(), pageSize: 5)
        var text = try #require(try await pages.next())
        try await fixture.log.append(AuditEvent(actor: "owner", action: "vault.rm", target: "later"))
        while let page = try await pages.next() { text += page }
        #expect(text.split(separator: "\n").count == 23 && !text.contains("later"))
    }

    @Test("CSV export neutralises formula cells and quotes; JSONL lines are JSON objects; filters apply")
    func export() async throws {
        let fixture = try AuditFixture()
        try await fixture.log.append(AuditEvent(actor: "owner", action: "vault.add", target: "=HYPERLINK(\"x\")"))
        try await fixture.log.append(AuditEvent(actor: "@evil", action: "vault.rm", target: "+1,2"))
        try await fixture.log.append(AuditEvent(actor: "owner", action: "auth.login.failure", target: "-3"))
        var csv: [String] = []
        try AuditReader.forEach(fixture.database, filter: .init(action: "vault.*")) {
            csv.append(AuditExportFormat.csv.line($0))
        }
        #expect(csv.count == 2)
        #expect(csv[0].contains(#""'=HYPERLINK(""x"")""#))
        #expect(csv[1].contains("'@evil"))
        #expect(csv[1].contains(#""'+1,2""#))
        var jsonl: [String] = []
        try AuditReader.forEach(fixture.database, filter: .init(actor: "owner")) {
            jsonl.append(AuditExportFormat.jsonl.line($0))
        }
        #expect(jsonl.count == 2)
        for line in jsonl {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["metadata"] is [String: Any])
        }
        var none = 0
        try AuditReader.forEach(fixture.database, filter: .init(since: "2999-01-01")) { _ in none += 1 }
        #expect(none == 0)
    }
}

@Suite(.tags(.slow)) struct AuditCrashTests {
    @Test(
        "a child appending in a loop, SIGKILLed at random times: every acknowledged entry survives, the file is sound")
    func killedWriter() async throws {
        let temp = TemporaryDirectory()
        let path = temp.file("moat.db")
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        var acknowledged: Int64 = 0
        for round in 0..<12 {
            let child = try WatchedProcess(MoatBinary.helperPath, ["audit-append-loop", path, key])
            // Rounds 1, 2, 4, 5, … first wait for one or two appends of their own (an event, so a loaded
            // machine only makes the wait longer); round 0 (which also creates and migrates the database)
            // and every third round are killed at a random time from the start.
            let appends = round % 3
            let progressed = await child.waitForLines { $0.count >= appends }
            try await Task.sleep(for: .microseconds(UInt32.random(in: 50_000...(round == 0 ? 600_000 : 250_000))))
            let (lines, stderr) = await child.kill()
            #expect(progressed, "round \(round): the helper did not complete \(appends) appends: \(stderr)")
            let acks = lines.compactMap { line -> Int64? in
                line.hasPrefix("ack ") ? Int64(line.dropFirst(4)) : nil
            }
            if let last = acks.last { acknowledged = max(acknowledged, last) }
            // Verifying every signature of a growing log is seconds of CPU in a debug build: on a thread of its
            // own, not a cooperative one.
            let (count, problems, brokenAt) = try await atLowestPriority {
                let database = try MoatDatabase(path: path, migrations: AuditFixture.migrations)
                defer { try? database.close() }
                let publicKey = try Curve25519.Signing.PrivateKey(rawRepresentation: Data(hexString: key)).publicKey
                return (
                    try AuditReader.count(database), try database.integrityProblems(),
                    try AuditVerifier.verify(database, publicKey: publicKey).brokenAt
                )
            }
            #expect(count >= acknowledged, "round \(round): acknowledged \(acknowledged), found \(count)")
            #expect(problems.isEmpty)
            #expect(brokenAt == nil)
        }
        // Holds whatever the load: the rounds that waited saw acknowledged appends.
        #expect(acknowledged > 0)
    }
}

extension Data {
    init(hexString: String) {
        var bytes: [UInt8] = []
        var index = hexString.startIndex
        while index < hexString.endIndex {
            let next = hexString.index(index, offsetBy: 2)
            bytes.append(UInt8(hexString[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes)
    }
}
