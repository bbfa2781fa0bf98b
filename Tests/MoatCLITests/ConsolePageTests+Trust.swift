import Foundation
import MoatTestSupport
import Testing

extension ConsolePageTests {
    /// `moat trust show`'s line for `domain`.
    static func trustLine(_ domain: String, home: TemporaryDirectory) async throws -> String {
        let shown = try await MoatBinary.run(["trust", "show"], home: home.path)
        return String(shown.stdout.split(separator: "\n").first { $0.hasPrefix(domain + " ") } ?? "")
    }

    @Test(
        "the trust page lowers a domain with a reason, refuses a raise without evidence unless forced, and rolls a change back"
    )
    func trustPage() async throws {
        let model = try await ScriptedModelServer.start(replies: [])
        defer { Task { await model.stop() } }
        let (home, running, port) = try await Self.serve(model, password: "a long owner passphrase")
        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        let session = [("Cookie", cookie)]
        let browser = session + [("Origin", "http://127.0.0.1:\(port)")]
        func post(_ path: String, _ fields: [(String, String)]) async throws -> RawHTTP.Response {
            let response = try await Self.form(
                path, port: port, fields: [("csrf_token", csrf)] + fields, headers: browser)
            #expect(response.status == 303, "\(path): \(response.status) \(response.body)")
            return try await OwnerCommandTests.send(
                "GET", try #require(response.header("Location")), port: port, headers: session)
        }
        let page = try await OwnerCommandTests.send("GET", "/trust", port: port, headers: session)
        #expect(page.status == 200)
        for domain in ["messaging", "files", "web", "shell", "finance", "calendar", "email", "integrations", "system"] {
            #expect(page.body.contains(#"<tr id="domain-\#(domain)">"#), "\(domain)")
        }
        // `serve` set files to 2 with the reason "ask me".
        #expect(
            page.body.contains(#"<strong>2</strong> suggest"#) && page.body.contains(": ask me</td>"), "\(page.body)")

        // No token: refused, nothing changed.
        let refused = try await Self.form(
            "/trust/domain/files", port: port, fields: [("level", "0"), ("reason", "x")], headers: browser)
        #expect(refused.status == 403)
        await #expect(try Self.trustLine("files", home: home).contains("2 (suggest)"))
        // No reason, or a level out of range: nothing changed.
        let noReason = try await post("/trust/domain/files", [("level", "1"), ("reason", "")])
        #expect(noReason.body.contains("Nothing was done: "), "\(noReason.body)")
        let badLevel = try await post("/trust/domain/files", [("level", "7"), ("reason", "x")])
        #expect(badLevel.body.contains("Choose a level from 0 to 4; nothing was changed."))
        await #expect(try Self.trustLine("files", home: home).contains("2 (suggest)"))

        let lowered = try await post("/trust/domain/files", [("level", "1"), ("reason", "lowered <from> the console")])
        #expect(lowered.body.contains("files 2 → 1 (inform)."), "\(lowered.body)")
        #expect(lowered.body.contains("lowered &lt;from&gt; the console"))
        await #expect(try Self.trustLine("files", home: home).contains("1 (inform)"))

        // Raising web to 4 needs evidence (as the CLI): refused; with force it is recorded as forced.
        let raise = try await post("/trust/domain/web", [("level", "4"), ("reason", "I trust it")])
        #expect(raise.body.contains("Nothing was done: "), "\(raise.body)")
        await #expect(!(try Self.trustLine("web", home: home).contains("4 (full)")))
        let forced = try await post("/trust/domain/web", [("level", "4"), ("reason", "I trust it"), ("force", "on")])
        #expect(forced.body.contains("web 1 → 4 (full)."), "\(forced.body)")
        await #expect(try Self.trustLine("web", home: home).contains("4 (full)"))

        // Roll the lowering of files back: files is 2 again, as a new change.
        let changeRange = try #require(
            lowered.body.range(of: #"Change [0-9]+: files 2 → 1"#, options: .regularExpression))
        let changeID = String(lowered.body[changeRange].dropFirst("Change ".count).prefix { $0 != ":" })
        let rolled = try await post("/trust/rollback/\(changeID)", [("reason", "undo")])
        #expect(rolled.body.contains("rolled back change \(changeID): files 1 → 2 (suggest)."), "\(rolled.body)")
        await #expect(try Self.trustLine("files", home: home).contains("2 (suggest)"))
        #expect(rolled.body.contains(#"<table id="trust-history">"#))

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
