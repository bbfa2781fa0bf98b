import Foundation
import GRDB
import MoatTestSupport
import Testing

extension ConsolePageTests {
    /// The `(seq, actor, action, outcome)` of each row of the audit page's table, top to bottom.
    static func auditRows(_ body: String) -> [(seq: Int, actor: String, action: String, outcome: String)] {
        let pattern =
            #/<tr id="entry-([0-9]+)"><td>[0-9]+</td><td>[^<]*</td><td>([^<]*)</td><td><code class="action">([^<]*)</code></td><td>[^<]*</td><td>([^<]*)</td>/#
        return body.matches(of: pattern).map { (Int($0.1)!, String($0.2), String($0.3), String($0.4)) }
    }

    @Test(
        "the audit page lists newest first, filters by actor, action, outcome and time, refuses a bad filter and says why, and exports only the filtered entries as the CLI does, never a secret"
    )
    func auditPageFiltersAndExports() async throws {
        let model = try await ScriptedModelServer.start(replies: [])
        defer { Task { await model.stop() } }
        let (home, running, port) = try await Self.serve(model, password: "a long owner passphrase")
        let value = "sk-audit-export-" + UUID().uuidString
        try value.write(toFile: home.file("value"), atomically: true, encoding: .utf8)
        for name in ["FIRST_KEY", "SECOND_KEY"] {
            let added = try await MoatBinary.run(
                ["vault", "add", name, "--from-file", home.file("value"), "--allow-tool", "http_request"],
                home: home.path)
            #expect(added.status == 0, "\(added.stderr)")
        }
        unlink(home.file("value"))
        // The server's vault watcher records the adds' new revision (`vault.write`, by `system`) within its
        // interval: wait for that entry, so the log the listings below are compared on no longer grows.
        let settled = Date().addingTimeInterval(60)
        while Date() < settled {
            let tail = try await MoatBinary.run(["audit", "tail", "-n", "20"], home: home.path).stdout
            let vaultActions = tail.split(separator: "\n").compactMap { line in
                ["vault.add", "vault.write"].first { line.contains("  \($0)  ") }
            }
            if vaultActions.last == "vault.write" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        let session = [("Cookie", cookie)]
        func get(_ path: String) async throws -> RawHTTP.Response {
            try await OwnerCommandTests.send("GET", path, port: port, headers: session)
        }
        #expect(try await OwnerCommandTests.send("GET", "/audit", port: port).status == 303)

        let all = try await get("/audit")
        #expect(all.status == 200)
        #expect(all.body.contains(#"aria-current="page">Audit<"#))
        #expect(!all.body.contains(csrf) && !all.body.contains(value))
        let everything = Self.auditRows(all.body)
        #expect(everything.count >= 5, "\(all.body)")
        #expect(everything.map(\.seq) == everything.map(\.seq).sorted(by: >), "newest first")
        #expect(Set(everything.map(\.action)).isSuperset(of: ["gateway.start", "vault.add"]))

        // Each filter narrows the list to what it names.
        let vault = Self.auditRows(try await get("/audit?action=vault.add").body)
        #expect(vault.count == 2 && vault.allSatisfy { $0.action == "vault.add" }, "\(vault)")
        let prefix = Self.auditRows(try await get("/audit?action=vault.*").body)
        #expect(!prefix.isEmpty && prefix.allSatisfy { $0.action.hasPrefix("vault.") })
        let system = Self.auditRows(try await get("/audit?actor=system").body)
        #expect(!system.isEmpty && system.allSatisfy { $0.actor == "system" } && system.count < everything.count)
        let succeeded = Self.auditRows(try await get("/audit?outcome=success&actor=owner").body)
        #expect(succeeded.map(\.seq) == everything.filter { $0.outcome == "success" && $0.actor == "owner" }.map(\.seq))
        #expect(!succeeded.isEmpty)
        #expect(Self.auditRows(try await get("/audit?outcome=nonesuch").body).isEmpty)
        let future = try await get("/audit?since=2999-01-01")
        #expect(
            future.status == 200 && Self.auditRows(future.body).isEmpty && future.body.contains("No entry matches."))
        let past = Self.auditRows(try await get("/audit?until=2000-01-01T00:00:00Z").body)
        #expect(past.isEmpty)

        // A malformed filter filters nothing and says why (the list is the whole log), with 400.
        for (query, says) in [
            ("since=yesterday", "“since” must be a date"), ("until=2026-13", "“until” must be a date"),
            ("action=vault.add%3B%20DROP", "“action” must be an action"), ("outcome=%3Cb%3E", "“outcome” must be"),
            ("actor=owner%07", "“actor” must be"), ("limit=100000", "“limit” must be a number from 1 to 200"),
            ("limit=0", "“limit” must be"), ("before=-3", "“before” must be an entry number"),
        ] {
            let bad = try await get("/audit?" + query)
            #expect(bad.status == 400, "\(query)")
            #expect(bad.body.contains(says) && bad.body.contains("the list below is not filtered"), "\(query)")
            #expect(Self.auditRows(bad.body).count >= everything.count, "\(query)")
            #expect(!bad.body.contains("<b>"))
        }

        // Pages of a bounded size, newest first, and the next page goes on below the last one shown.
        let first = try await get("/audit?limit=2")
        let firstRows = Self.auditRows(first.body)
        #expect(firstRows.map(\.seq) == Array(everything.prefix(2).map(\.seq)))
        let older = try #require(
            first.body.firstMatch(of: #/href="(/audit\?limit=2&amp;before=[0-9]+)" id="audit-older"/#))
        let next = Self.auditRows(try await get(String(older.1).replacingOccurrences(of: "&amp;", with: "&")).body)
        #expect(next.map(\.seq) == Array(everything.dropFirst(2).prefix(2).map(\.seq)))

        // Exports: the filter's entries only, byte for byte what `moat audit export` writes, no secret.
        let csv = try await get("/audit/export?format=csv&action=vault.*")
        #expect(csv.status == 200)
        #expect(csv.header("Content-Disposition") == #"attachment; filename="moat-audit.csv""#)
        #expect(csv.header("Content-Type")?.hasPrefix("text/csv") == true)
        let cli = try await MoatBinary.run(
            ["audit", "export", "--format", "csv", "--action", "vault.*"], home: home.path)
        #expect(cli.status == 0)
        #expect(csv.body == cli.stdout)
        let lines = csv.body.split(separator: "\n")
        #expect(lines.first == "seq,time,actor,action,target,source_ip,user_agent,outcome,metadata,prev_hash,hash")
        #expect(lines.count == prefix.count + 1)
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",")[3].hasPrefix("vault.") })
        let owned = try await get("/audit/export?format=csv&actor=owner&outcome=success")
        let ownedCLI = try await MoatBinary.run(
            ["audit", "export", "--format", "csv", "--actor", "owner", "--outcome", "success"], home: home.path)
        #expect(owned.body == ownedCLI.stdout && owned.body.split(separator: "\n").count == succeeded.count + 1)
        let jsonl = try await get("/audit/export?format=jsonl&actor=system")
        #expect(jsonl.status == 200)
        #expect(jsonl.header("Content-Disposition") == #"attachment; filename="moat-audit.jsonl""#)
        let objects = try jsonl.body.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.count == system.count && objects.allSatisfy { $0["actor"] as? String == "system" })
        let whole = try await get("/audit/export?format=jsonl")
        #expect(!csv.body.contains(value) && !whole.body.contains(value) && !whole.body.contains("sk-audit-export"))
        let badFormat = try await get("/audit/export?format=xml")
        #expect(
            badFormat.status == 400 && badFormat.body.contains("format must be csv or jsonl; nothing was exported."))
        let badExport = try await get("/audit/export?format=csv&since=soon")
        #expect(badExport.status == 400 && badExport.body.contains("“since” must be"))
        #expect(!badExport.body.contains("seq,time,actor"))

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(!log.contains(value))
    }

    @Test(
        "verify on the audit page reports an intact log and the first broken entry after a byte of moat.db is flipped; the downloaded checkpoint verifies with the CLI; both forms need the CSRF token"
    )
    func auditPageVerifiesAndCheckpoints() async throws {
        let model = try await ScriptedModelServer.start(replies: [])
        defer { Task { await model.stop() } }
        let (home, running, port) = try await Self.serve(model, password: "a long owner passphrase")
        var (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        func post(_ path: String, _ fields: [(String, String)], port: Int) async throws -> RawHTTP.Response {
            try await Self.form(
                path, port: port, fields: fields,
                headers: [("Cookie", cookie), ("Origin", "http://127.0.0.1:\(port)")])
        }
        func entries() async throws -> String {
            try await MoatBinary.run(["audit", "export", "--format", "csv"], home: home.path).stdout
        }

        // Without the token (or with a wrong one): 403, and nothing is verified or signed.
        let before = try await entries()
        for fields in [[], [("csrf_token", "")], [("csrf_token", String(csrf.reversed()))]] {
            #expect(try await post("/audit/verify", fields, port: port).status == 403)
            #expect(try await post("/audit/checkpoint", fields, port: port).status == 403)
        }
        #expect(try await entries() == before)

        let verified = try await post("/audit/verify", [("csrf_token", csrf)], port: port)
        #expect(verified.status == 303)
        let shown = try await OwnerCommandTests.send(
            "GET", try #require(verified.header("Location")), port: port, headers: [("Cookie", cookie)])
        #expect(shown.body.contains("✓ chain intact: "), "\(shown.body)")
        #expect(shown.body.contains(#"<span id="last-verify" class="status-pass">intact</span>"#))

        let download = try await post("/audit/checkpoint", [("csrf_token", csrf)], port: port)
        #expect(download.status == 200)
        #expect(download.header("Content-Disposition")?.hasPrefix("attachment; filename=\"moat-checkpoint-") == true)
        let kept = try home.write("kept-checkpoint.txt", download.body)
        #expect(download.body.hasPrefix("moat/"), "\(download.body)")

        var (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        let good = try await MoatBinary.run(["audit", "verify", "--checkpoint", kept], home: home.path)
        #expect(good.status == 0, "\(good.stdout) \(good.stderr)")
        #expect(good.stdout.contains("✓ chain intact"))

        // Flip one byte of an entry in moat.db (the server is stopped): `system` → `systen`.
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        let flipped = try await queue.write { db -> Int64 in
            try db.execute(sql: "DROP TRIGGER audit_entries_no_update")
            let seq = try #require(
                try Int64.fetchOne(db, sql: "SELECT min(seq) FROM audit_entries WHERE actor = 'system'"))
            try db.execute(sql: "UPDATE audit_entries SET actor = 'systen' WHERE seq = ?", arguments: [seq])
            return seq
        }
        try queue.close()

        let again = try await RunningServer.start(arguments: [], home: home.path)
        let port2 = try #require(again.port)
        await waitForFile(home.file("moat.sock"), within: 60)
        (cookie, csrf) = try await Self.login(port: port2, password: "a long owner passphrase")
        let broken = try await post("/audit/verify", [("csrf_token", csrf)], port: port2)
        #expect(broken.status == 303)
        let page = try await OwnerCommandTests.send(
            "GET", try #require(broken.header("Location")), port: port2, headers: [("Cookie", cookie)])
        #expect(
            page.body.contains("✗ chain broken at entry \(flipped): its contents do not match its hash (edited)"),
            "\(page.body)")
        #expect(page.body.contains(#"<span id="last-verify" class="status-fail">broken</span>"#))
        (status, log) = await again.stop()
        #expect(status == 0, "\(log)")
        let cliBroken = try await MoatBinary.run(["audit", "verify", "--checkpoint", kept], home: home.path)
        #expect(cliBroken.status == 1 && cliBroken.stdout.contains("✗ chain broken at entry \(flipped)"))
    }
}
