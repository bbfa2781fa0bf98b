import Foundation
import MoatTestSupport
import Testing

/// The owner's console pages through the real `moat serve`: a page needs the browser session (303 to
/// the login page otherwise, an API token opens none), a form acts only with the session's CSRF token
/// from this origin, a hostile model's arguments are shown escaped, and approving from the page runs the
/// held call exactly as the CLI and the API do.
@Suite(.serialized) struct ConsolePageTests {
    /// Markup to break out of text and of an attribute, and a right-to-left override to disguise the name.
    static let hostilePath = #"<script>alert(1)</script>"><img src=x onerror=alert(2)>"# + "\u{202E}txt.exe"

    /// A browser's form post: `application/x-www-form-urlencoded`, same origin unless `headers` say otherwise.
    static func form(
        _ path: String, port: Int, fields: [(String, String)], headers: [(String, String)]
    ) throws -> RawHTTP.Response {
        let body = fields.map { name, value in
            name + "=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }.joined(separator: "&")
        var text = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
        return try RawHTTP.send(text + "Connection: close\r\n\r\n" + body, port: port)
    }

    /// `moat serve` on a home whose `local` provider is `model`, with `files` at `suggest` (so reading a
    /// file is held for approval) and an owner set up with `password`; returns once the admin socket is up.
    static func serve(
        _ model: ScriptedModelServer, password: String
    ) throws -> (home: TemporaryDirectory, running: RunningServer, port: Int) {
        let home = try ChatCommandTests.home(model)
        #expect(
            try MoatBinary.run(["trust", "set", "files", "suggest", "--reason", "ask me"], home: home.path).status == 0)
        let setup = try MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: password + "\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let running = try RunningServer(arguments: [], home: home.path)
        let port = try #require(running.port)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: home.file("moat.sock")) && Date() < deadline { usleep(20_000) }
        return (home, running, port)
    }

    @Test(
        "console pages need the session, forms need its CSRF token, hostile arguments are escaped, approve runs the call"
    )
    func consoleApprovals() async throws {
        let hostile = #"{"path":"\#(Self.hostilePath.replacingOccurrences(of: "\"", with: "\\\""))"}"#
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", hostile),
            .text("It waits for your approval."),
            .text("Understood, I will not read it."),
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits again."),
            .text("notes.txt says: groceries."),
        ])
        defer { Task { await server.stop() } }
        let (home, running, port) = try Self.serve(server, password: "a long owner passphrase")
        // Created through the running server's admin socket.
        let admin = [("Authorization", "Bearer " + (try ApprovalAPITests.token("admin", "admin", home: home.path)))]
        let origin = "http://127.0.0.1:\(port)"
        func get(_ path: String, _ headers: [(String, String)] = []) throws -> RawHTTP.Response {
            try OwnerCommandTests.send("GET", path, port: port, headers: headers)
        }

        let chat = try MoatBinary.run(["chat", "--message", "read the odd file"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let hostileID = try ApprovalAPITests.pendingID(chat)

        // Without a session every page sends the browser to the login page; an API token opens none.
        for path in ["/", "/approvals", "/settings"] {
            for headers in [[], admin, [("Cookie", "moat_session=forged")]] {
                let response = try get(path, headers)
                #expect(response.status == 303, "\(path)")
                #expect(response.header("Location") == "/login", "\(path)")
                #expect(!response.body.contains("read_file"))
            }
        }
        let refusedPost = try Self.form(
            "/approvals/\(hostileID)/approve", port: port, fields: [("csrf_token", "x")],
            headers: admin + [("Origin", origin)])
        #expect(refusedPost.status == 303 && refusedPost.header("Location") == "/login")

        let login = try OwnerCommandTests.send(
            "POST", "/api/auth/login", port: port, headers: [("Origin", origin)],
            json: #"{"username":"owner","password":"a long owner passphrase"}"#)
        try #require(login.status == 200, "\(login.body)")
        let cookie = String(login.header("Set-Cookie")?.split(separator: ";").first ?? "")
        let csrf = try #require(login.json["csrf_token"] as? String)
        let session = [("Cookie", cookie)]

        // The overview: server-rendered, strict CSP, no inline script, never cached.
        let overview = try get("/", session)
        #expect(overview.status == 200, "\(overview.body)")
        let policy = try #require(overview.header("Content-Security-Policy"))
        #expect(
            !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval")
                && policy.contains("default-src 'self'"))
        #expect(overview.header("Cache-Control") == "no-store")
        #expect(overview.body.contains(#"id="pending-count">1<"#), "\(overview.body)")
        #expect(overview.body.contains(#"id="messages-today">1<"#))
        #expect(overview.body.contains("<svg class=\"chart\""))
        #expect(overview.body.contains("Logged in as <strong id=\"owner-name\">owner</strong>"))
        #expect(!overview.body.contains("<script>") && !overview.body.contains("style="))
        #expect(!overview.body.contains(csrf), "a page must never hold the CSRF token")

        // The hostile arguments are shown escaped, never as markup.
        let page = try get("/approvals", session)
        #expect(page.status == 200)
        #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(page.body)")
        #expect(page.body.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
        #expect(!page.body.contains("<script>alert") && !page.body.contains("<img"))
        // The held call keeps the override (the API answers it as stored); the page never shows it.
        let stored = try OwnerCommandTests.send("GET", "/api/approvals/\(hostileID)", port: port, headers: admin)
        #expect(stored.body.contains("\u{202E}txt.exe") || stored.body.contains("\\u202e"), "\(stored.body)")
        #expect(page.body.contains("txt.exe") && !page.body.contains("\u{202E}"), "a bidi override reached the page")
        #expect(page.body.contains(#"id="approve-\#(hostileID)""#))
        // Why it was held: the text `moat approvals show` prints after "held:".
        #expect(page.body.contains(#"<dd class="why">level 2, set by the files trust level"#), "\(page.body)")
        #expect(!page.body.contains(csrf))

        // Forms: no token, a wrong one, a cross-site one — refused, nothing decided.
        let attempts: [([(String, String)], [(String, String)])] = [
            ([], session + [("Origin", origin)]),
            ([("csrf_token", "")], session + [("Origin", origin)]),
            (
                [("csrf_token", String(csrf.dropLast()) + (csrf.hasSuffix("A") ? "B" : "A"))],
                session + [("Origin", origin)]
            ),
            ([("csrf_token", csrf)], session + [("Sec-Fetch-Site", "cross-site")]),
            ([("csrf_token", csrf)], session),
        ]
        for (fields, headers) in attempts {
            let refused = try Self.form("/approvals/\(hostileID)/approve", port: port, fields: fields, headers: headers)
            #expect(refused.status == 403, "\(fields) \(headers): \(refused.status)")
        }
        #expect(try get("/approvals", session).body.contains(#"id="approve-\#(hostileID)""#))
        #expect(server.requests.count == 2, "a refused form reached the model")

        // Deny the hostile call with the token; it moves to the history.
        let denied = try Self.form(
            "/approvals/\(hostileID)/deny", port: port, fields: [("csrf_token", csrf), ("reason", "odd file")],
            headers: session + [("Origin", origin)])
        #expect(denied.status == 303, "\(denied.body)")
        #expect(denied.header("Location")?.hasPrefix("/approvals?result=denied") == true)
        let afterDeny = try get(try #require(denied.header("Location")), session)
        #expect(afterDeny.body.contains("Denied \(hostileID)."))
        #expect(!afterDeny.body.contains(#"id="approve-\#(hostileID)""#))
        #expect(afterDeny.body.contains("<td>denied</td>"))

        // Approve a second held call from the page: exactly that call runs and the conversation goes on.
        let second = try MoatBinary.run(["chat", "--message", "what is in notes.txt?"], home: home.path)
        let secondID = try ApprovalAPITests.pendingID(second)
        #expect(server.requests.allSatisfy { !$0.body.contains("groceries") })
        let approved = try Self.form(
            "/approvals/\(secondID)/approve", port: port, fields: [("csrf_token", csrf)],
            headers: session + [("Origin", origin)])
        #expect(approved.status == 303)
        #expect(server.requests.last?.body.contains("groceries") == true)
        let afterApprove = try get(try #require(approved.header("Location")), session)
        #expect(afterApprove.body.contains("Approved \(secondID)"))
        let rounds = server.requests.count
        let again = try Self.form(
            "/approvals/\(secondID)/approve", port: port, fields: [("csrf_token", csrf)],
            headers: session + [("Origin", origin)])
        #expect(again.header("Location")?.contains("result=failed") == true)
        #expect(server.requests.count == rounds, "a second approval ran the call again")

        // The assets: same origin, content-hashed path, long immutable cache.
        let stylePath = try #require(
            overview.body.range(of: #"/assets/moat\.[0-9a-f]{16}\.css"#, options: .regularExpression))
        let style = try get(String(overview.body[stylePath]))
        #expect(style.status == 200 && style.header("Content-Type")?.hasPrefix("text/css") == true)
        #expect(style.header("Cache-Control") == "public, max-age=31536000, immutable")
        #expect(try get("/assets/moat.0000000000000000.css").status == 404)

        let (status, log) = running.stop()
        #expect(status == 0, "\(log)")
        #expect(try MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
