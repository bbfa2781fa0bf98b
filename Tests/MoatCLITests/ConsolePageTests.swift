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

    /// Every console page that needs no id.
    static let pagePaths = [
        "/", "/approvals", "/conversations", "/contacts", "/trust", "/audit", "/vault", "/settings",
    ]

    /// A browser's form post: `application/x-www-form-urlencoded`, same origin unless `headers` say otherwise.
    static func form(
        _ path: String, port: Int, fields: [(String, String)], headers: [(String, String)]
    ) async throws -> RawHTTP.Response {
        let body = fields.map { name, value in
            name + "=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }.joined(separator: "&")
        var text = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
        return try await RawHTTP.send(text + "Connection: close\r\n\r\n" + body, port: port)
    }

    /// `moat serve` on a home whose `local` provider is `model`, with `files` at `suggest` (so reading a
    /// file is held for approval) and an owner set up with `password`; returns once the admin socket is up.
    static func serve(
        _ model: ScriptedModelServer, password: String
    ) async throws -> (home: TemporaryDirectory, running: RunningServer, port: Int) {
        try await serve(home: try ChatCommandTests.home(model), password: password)
    }

    /// `moat serve` on `home` (a served home), set up as `serve(_:password:)` describes.
    static func serve(
        home: TemporaryDirectory, password: String
    ) async throws -> (home: TemporaryDirectory, running: RunningServer, port: Int) {
        #expect(
            try await MoatBinary.run(["trust", "set", "files", "suggest", "--reason", "ask me"], home: home.path).status
                == 0)
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: password + "\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let running = try await RunningServer.start(arguments: [], home: home.path)
        let port = try #require(running.port)
        await waitForFile(home.file("moat.sock"), within: 60)
        return (home, running, port)
    }

    /// Logs in as `owner` through the API as the browser script does; the `name=value` cookie and the
    /// session's CSRF token.
    static func login(port: Int, password: String) async throws -> (cookie: String, csrf: String) {
        let login = try await OwnerCommandTests.send(
            "POST", "/api/auth/login", port: port, headers: [("Origin", "http://127.0.0.1:\(port)")],
            json: #"{"username":"owner","password":"\#(password)"}"#)
        try #require(login.status == 200, "\(login.body)")
        let cookie = String(login.header("Set-Cookie")?.split(separator: ";").first ?? "")
        return (cookie, try #require(login.json["csrf_token"] as? String))
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
        let (home, running, port) = try await Self.serve(server, password: "a long owner passphrase")
        // Created through the running server's admin socket.
        let admin = await [
            ("Authorization", "Bearer " + (try ApprovalAPITests.token("admin", "admin", home: home.path)))
        ]
        let origin = "http://127.0.0.1:\(port)"
        func get(_ path: String, _ headers: [(String, String)] = []) async throws -> RawHTTP.Response {
            try await OwnerCommandTests.send("GET", path, port: port, headers: headers)
        }

        let chat = try await MoatBinary.run(["chat", "--message", "read the odd file"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let hostileID = try ApprovalAPITests.pendingID(chat)

        // Without a session every page sends the browser to the login page; an API token opens none.
        for path in Self.pagePaths {
            for headers in [[], admin, [("Cookie", "moat_session=forged")]] {
                let response = try await get(path, headers)
                #expect(response.status == 303, "\(path)")
                #expect(response.header("Location") == "/login", "\(path)")
                #expect(!response.body.contains("read_file"))
            }
        }
        let refusedPost = try await Self.form(
            "/approvals/\(hostileID)/approve", port: port, fields: [("csrf_token", "x")],
            headers: admin + [("Origin", origin)])
        #expect(refusedPost.status == 303 && refusedPost.header("Location") == "/login")

        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")
        let session = [("Cookie", cookie)]

        // The overview: server-rendered, strict CSP, no inline script, never cached.
        let overview = try await get("/", session)
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
        let page = try await get("/approvals", session)
        #expect(page.status == 200)
        #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(page.body)")
        #expect(page.body.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"))
        #expect(!page.body.contains("<script>alert") && !page.body.contains("<img"))
        // The held call keeps the override (the API answers it as stored); the page never shows it.
        let stored = try await OwnerCommandTests.send("GET", "/api/approvals/\(hostileID)", port: port, headers: admin)
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
            let refused = try await Self.form(
                "/approvals/\(hostileID)/approve", port: port, fields: fields, headers: headers)
            #expect(refused.status == 403, "\(fields) \(headers): \(refused.status)")
        }
        #expect(try await get("/approvals", session).body.contains(#"id="approve-\#(hostileID)""#))
        #expect(server.requests.count == 2, "a refused form reached the model")

        // Deny the hostile call with the token; it moves to the history.
        let denied = try await Self.form(
            "/approvals/\(hostileID)/deny", port: port, fields: [("csrf_token", csrf), ("reason", "odd file")],
            headers: session + [("Origin", origin)])
        #expect(denied.status == 303, "\(denied.body)")
        #expect(denied.header("Location")?.hasPrefix("/approvals?result=denied") == true)
        let afterDeny = try await get(try #require(denied.header("Location")), session)
        #expect(afterDeny.body.contains("Denied \(hostileID)."))
        #expect(!afterDeny.body.contains(#"id="approve-\#(hostileID)""#))
        #expect(afterDeny.body.contains("<td>denied</td>"))

        // Approve a second held call from the page: exactly that call runs and the conversation goes on.
        let second = try await MoatBinary.run(["chat", "--message", "what is in notes.txt?"], home: home.path)
        let secondID = try ApprovalAPITests.pendingID(second)
        #expect(server.requests.allSatisfy { !$0.body.contains("groceries") })
        let approved = try await Self.form(
            "/approvals/\(secondID)/approve", port: port, fields: [("csrf_token", csrf)],
            headers: session + [("Origin", origin)])
        #expect(approved.status == 303)
        #expect(server.requests.last?.body.contains("groceries") == true)
        let afterApprove = try await get(try #require(approved.header("Location")), session)
        #expect(afterApprove.body.contains("Approved \(secondID)"))
        let rounds = server.requests.count
        let again = try await Self.form(
            "/approvals/\(secondID)/approve", port: port, fields: [("csrf_token", csrf)],
            headers: session + [("Origin", origin)])
        #expect(again.header("Location")?.contains("result=failed") == true)
        #expect(server.requests.count == rounds, "a second approval ran the call again")

        // The assets: same origin, content-hashed path, long immutable cache.
        let stylePath = try #require(
            overview.body.range(of: #"/assets/moat\.[0-9a-f]{16}\.css"#, options: .regularExpression))
        let style = try await get(String(overview.body[stylePath]))
        #expect(style.status == 200 && style.header("Content-Type")?.hasPrefix("text/css") == true)
        #expect(style.header("Cache-Control") == "public, max-age=31536000, immutable")
        #expect(try await get("/assets/moat.0000000000000000.css").status == 404)

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }

    static let canSwitchUser =
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")

    /// `method path` sent by curl running as `nobody` (uid 65534), with `headers` read from a file (a
    /// session cookie never goes into a command line); the status and everything curl received.
    static func curlAsNobody(
        _ method: String, _ path: String, port: Int, headers: [String]
    ) async throws -> (status: Int, text: String) {
        let folder = TemporaryDirectory("moat-curl")
        let file = folder.file("headers")
        try headers.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        TemporaryDirectory.chmod(folder.path, 0o755)
        TemporaryDirectory.chmod(file, 0o644)
        let request = method == "HEAD" ? ["-I"] : ["-i", "-X", method]
        let (exit, output) = try await HostCommand.run(
            "/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-H", "@" + file]
                + request + ["http://127.0.0.1:\(port)\(path)"])
        #expect(exit == 0, "curl as nobody failed: \(output)")
        let fields = output.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0, output)
    }

    @Test(
        "a page opens with the cookie alone only to the server's own user: another local user replaying it gets no page",
        .enabled(if: canSwitchUser, "needs root, /usr/bin/setpriv and /usr/bin/curl to send as uid 65534")
    )
    func cookieReadNeedsOwnUser() async throws {
        let server = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#), .text("It waits for your approval."),
        ])
        defer { Task { await server.stop() } }
        let (home, running, port) = try await Self.serve(server, password: "a long owner passphrase")
        let origin = "http://127.0.0.1:\(port)"
        let chat = try await MoatBinary.run(["chat", "--message", "read my notes"], home: home.path)
        let pendingID = try ApprovalAPITests.pendingID(chat)
        let (cookie, csrf) = try await Self.login(port: port, password: "a long owner passphrase")

        // This process runs as the server's user: the cookie alone reads every page.
        for path in Self.pagePaths {
            let page = try await OwnerCommandTests.send("GET", path, port: port, headers: [("Cookie", cookie)])
            #expect(page.status == 200, "\(path): \(page.status)")
            #expect(page.body.contains(#"<strong id="owner-name">owner</strong>"#), "\(path)")
        }
        #expect(
            try await OwnerCommandTests.send("GET", "/approvals", port: port, headers: [("Cookie", cookie)]).body
                .contains(
                    pendingID))

        // Another local user with the same cookie: no page, whatever else it claims.
        let claims: [[String]] = [
            [], ["X-Forwarded-Proto: https"], ["Sec-Fetch-Site: same-origin", "Origin: \(origin)"],
        ]
        for path in Self.pagePaths {
            for extra in claims {
                let stolen = try await Self.curlAsNobody(
                    "GET", path, port: port, headers: ["Host: 127.0.0.1:\(port)", "Cookie: \(cookie)"] + extra)
                #expect(stolen.status == 403, "\(path) \(extra): \(stolen.text)")
                #expect(!stolen.text.contains("owner-name") && !stolen.text.contains(pendingID))
                #expect(!stolen.text.contains("<html") && !stolen.text.contains("read_file"))
            }
        }
        // HEAD opens no page either (the pages answer GET only).
        let head = try await Self.curlAsNobody(
            "HEAD", "/approvals", port: port, headers: ["Host: 127.0.0.1:\(port)", "Cookie: \(cookie)"])
        #expect(head.status == 405 && !head.text.contains("owner-name"), "\(head.text)")
        let refusal = try await Self.curlAsNobody(
            "GET", "/", port: port, headers: ["Host: 127.0.0.1:\(port)", "Cookie: \(cookie)"])
        #expect(refusal.text.contains("does not run as the user running moat serve"), "\(refusal.text)")
        // Nor can it act: a form without the CSRF token is refused and the approval stays pending.
        let form = try await Self.curlAsNobody(
            "POST", "/approvals/\(pendingID)/approve", port: port,
            headers: ["Host: 127.0.0.1:\(port)", "Cookie: \(cookie)", "Origin: \(origin)"])
        #expect(form.status == 403, "\(form.text)")
        #expect(server.requests.count == 2, "a refused form ran the held call")

        // The API needs the CSRF header for reads too, whoever sends the cookie.
        let apiRead = try await Self.curlAsNobody(
            "GET", "/api/approvals", port: port, headers: ["Host: 127.0.0.1:\(port)", "Cookie: \(cookie)"])
        #expect(apiRead.status == 403 && !apiRead.text.contains(pendingID), "\(apiRead.text)")
        let ownRead = try await OwnerCommandTests.send(
            "GET", "/api/approvals", port: port, headers: [("Cookie", cookie)])
        #expect(ownRead.status == 403 && !ownRead.body.contains(pendingID))
        let withToken = try await OwnerCommandTests.send(
            "GET", "/api/approvals", port: port, headers: [("Cookie", cookie), ("X-CSRF-Token", csrf)])
        #expect(withToken.status == 200 && withToken.body.contains(pendingID), "\(withToken.body)")

        let (status, log) = await running.stop()
        #expect(status == 0, "\(log)")
    }
}
