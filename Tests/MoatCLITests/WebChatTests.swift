import Foundation
import MoatTestSupport
import Testing

/// The console's web chat through the real `moat serve`: `GET /api/chat/socket` upgraded to a
/// WebSocket with a single-use live token of purpose `chat`, talked to by a raw RFC 6455 client
/// (``WebSocketTestClient``), against the scripted model server streaming in small pieces.
@Suite(.serialized) struct WebChatTests {
    static let passphrase = "a long owner passphrase"

    /// A served home with an owner (password), running, and the model server behind it.
    struct Served {
        let home: TemporaryDirectory
        let running: RunningServer
        let port: Int
        var origin: String { "http://127.0.0.1:\(port)" }

        func send(_ method: String, _ path: String, _ headers: [(String, String)], json: String? = nil) async throws
            -> RawHTTP.Response
        {
            try await OwnerCommandTests.send(method, path, port: port, headers: headers, json: json)
        }

        /// A browser session: its cookie and CSRF token.
        func login() async throws -> Session {
            let login = try await send(
                "POST", "/api/auth/login", [("Origin", origin)],
                json: #"{"username":"owner","password":"\#(WebChatTests.passphrase)"}"#)
            try #require(login.status == 200, "\(login.body)")
            let cookie = String(login.header("Set-Cookie")?.split(separator: ";").first ?? "")
            return Session(cookie: cookie, csrf: try #require(login.json["csrf_token"] as? String))
        }

        /// `POST /api/chat/live-token` as the session's page sends it.
        func chatToken(_ session: Session, json: String? = nil) async throws -> String {
            let answer = try await send("POST", "/api/chat/live-token", session.headers(origin), json: json)
            try #require(answer.status == 200, "\(answer.body)")
            return try #require(answer.json["token"] as? String)
        }

        /// Opens the chat socket offering `token` (nil: no token) from `origin` (default: this gateway's).
        func open(token: String?, origin: String? = nil) async throws -> WebSocketTestClient {
            let protocols = ["moat.chat"] + (token.map { ["moat.token." + $0] } ?? [])
            return try WebSocketTestClient(
                port: port, path: "/api/chat/socket",
                headers: [
                    ("Origin", origin ?? self.origin), ("Sec-WebSocket-Protocol", protocols.joined(separator: ", ")),
                ]
            )
        }

        /// The HTTP status of a refused upgrade; fails the test when the upgrade is accepted.
        func refusal(token: String?, origin: String? = nil) async throws -> Int {
            do {
                let socket = try await open(token: token, origin: origin)
                socket.close()
                Issue.record("the upgrade was accepted")
                return 101
            } catch let refused as WebSocketTestClient.Refused {
                return refused.status
            }
        }
    }

    struct Session {
        let cookie: String
        let csrf: String

        func headers(_ origin: String) -> [(String, String)] {
            [("Cookie", cookie), ("X-CSRF-Token", csrf), ("Origin", origin)]
        }
    }

    static func serve(_ replies: [ScriptedModelServer.Reply], trust: String? = nil) async throws
        -> (Served, ScriptedModelServer)
    {
        var options = ScriptedModelServer.Options()
        options.textPieceLength = 3
        let model = try await ScriptedModelServer.start(replies: replies, options: options)
        let home = try await ChatCommandTests.home(model)
        if let trust {
            let set = try await MoatBinary.run(
                ["trust", "set", "files", trust, "--force", "--reason", "test"], home: home.path)
            try #require(set.status == 0, "\(set.stderr)")
        }
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home.path, stdin: passphrase + "\n")
        try #require(setup.status == 0, "\(setup.stderr)")
        let running = try await RunningServer.start(arguments: [], home: home.path)
        return (Served(home: home, running: running, port: try #require(running.port)), model)
    }

    static func message(_ text: String, conversation: String? = nil) -> String {
        var object: [String: Any] = ["type": "message", "text": text]
        if let conversation { object["conversation"] = conversation }
        return String(
            decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test(
        "a live chat token opens the socket once: the reply streams as delta frames, a held call shows its approval id, and the conversation goes on"
    )
    func streamedAnswer() async throws {
        let reply = "Hello from the model, streamed in small pieces."
        let (served, model) = try await Self.serve(
            [
                .text(reply), .toolCall("read_file", #"{"path":"notes.txt"}"#),
                .text("Reading notes.txt waits for you."),
            ],
            trust: "suggest")
        defer { Task { await model.stop() } }
        let session = try await served.login()
        let socket = try await served.open(token: try await served.chatToken(session))
        defer { socket.close() }
        #expect(socket.chosenProtocol == "moat.chat")
        #expect(try await socket.readJSON(until: ["ready"]).last?["type"] as? String == "ready")

        try socket.send(text: Self.message("hello"))
        let first = try await socket.readJSON(until: ["done", "error"])
        let done = try #require(first.last, "\(first.seen)")
        #expect(done["type"] as? String == "done", "\(first.seen)")
        let deltas = first.seen.filter { $0["type"] as? String == "delta" }
        // Streamed: more than one piece, adding up to the reply.
        #expect(deltas.count > 1)
        #expect(deltas.compactMap { $0["text"] as? String }.joined() == reply)
        let turn = try #require(done["turn"] as? [String: Any])
        #expect(turn["reply"] as? String == reply)
        let conversation = try #require(turn["conversation"] as? String)

        try socket.send(text: Self.message("what is in notes.txt?", conversation: conversation))
        let second = try await socket.readJSON(until: ["done", "error"])
        #expect(second.last?["type"] as? String == "done", "\(second.seen)")
        let approval = try #require(second.seen.first { $0["type"] as? String == "approval" }, "\(second.seen)")
        #expect((approval["approval_id"] as? String)?.isEmpty == false)
        #expect(approval["tool"] as? String == "read_file")
        #expect(second.seen.contains { $0["type"] as? String == "tool" && $0["stage"] as? String == "decided" })
        #expect((second.last?["turn"] as? [String: Any])?["conversation"] as? String == conversation)
        // The held call is the one the approvals API lists.
        let listed = try await served.send("GET", "/api/approvals", session.headers(served.origin))
        #expect(listed.body.contains(approval["approval_id"] as? String ?? "?"), "\(listed.body)")
        _ = await served.running.stop()
    }

    @Test(
        "the upgrade is refused without a token, with a used, expired, altered or other-purpose token, and from a foreign Origin; only a browser session mints a chat token"
    )
    func refusals() async throws {
        let (served, model) = try await Self.serve([.text("unused")])
        defer { Task { await model.stop() } }
        let session = try await served.login()

        #expect(try await served.refusal(token: nil) == 400)
        do {
            // No subprotocol at all.
            _ = try WebSocketTestClient(
                port: served.port, path: "/api/chat/socket", headers: [("Origin", served.origin)])
            Issue.record("the upgrade was accepted")
        } catch let refused as WebSocketTestClient.Refused {
            #expect(refused.status == 400)
        }

        // Used: one connection per token.
        let token = try await served.chatToken(session)
        try await served.open(token: token).close()
        #expect(try await served.refusal(token: token) == 400)

        // A foreign Origin is refused before the token is looked at: the same token still opens the socket.
        let fresh = try await served.chatToken(session)
        #expect(try await served.refusal(token: fresh, origin: "http://evil.example") == 400)
        #expect(try await served.refusal(token: fresh, origin: "null") == 400)
        try await served.open(token: fresh).close()

        // Altered: one character in the middle of the signature changed (the last one can differ only in
        // padding bits), or the signature cut off.
        let altered = try await served.chatToken(session)
        var characters = Array(altered)
        let middle = characters.count - 20
        characters[middle] = characters[middle] == "A" ? "Q" : "A"
        #expect(try await served.refusal(token: String(characters)) == 400)
        #expect(try await served.refusal(token: String(altered.prefix { $0 != "." })) == 400)
        try await served.open(token: altered).close()

        // Expired: a token asked for with a one-second lifetime, used after it.
        let short = try await served.chatToken(session, json: #"{"lifetime":1}"#)
        try await Task.sleep(for: .milliseconds(2500))
        #expect(try await served.refusal(token: short) == 400)

        // Other purposes: the event stream's and the generic WebSocket token open no chat.
        for purpose in ["events", "websocket"] {
            let other = try await served.send(
                "POST", "/api/auth/live-token", session.headers(served.origin), json: #"{"purpose":"\#(purpose)"}"#)
            try #require(other.status == 200, "\(other.body)")
            #expect(try await served.refusal(token: try #require(other.json["token"] as? String)) == 400)
        }
        // …and the generic route mints no chat token.
        let generic = try await served.send(
            "POST", "/api/auth/live-token", session.headers(served.origin), json: #"{"purpose":"chat"}"#)
        #expect(generic.status == 400, "\(generic.body)")

        // Minting: a session with its CSRF token, a same-origin browser; not an API token, not the cookie alone.
        let write = try await ApprovalAPITests.token("writer", "write", home: served.home.path)
        let byToken = try await served.send("POST", "/api/chat/live-token", [("Authorization", "Bearer " + write)])
        #expect(byToken.status == 403, "\(byToken.body)")
        let cookieOnly = try await served.send(
            "POST", "/api/chat/live-token", [("Cookie", session.cookie), ("Origin", served.origin)])
        #expect(cookieOnly.status == 403, "\(cookieOnly.body)")
        let crossSite = try await served.send(
            "POST", "/api/chat/live-token",
            [("Cookie", session.cookie), ("X-CSRF-Token", session.csrf), ("Origin", "http://evil.example")])
        #expect(crossSite.status == 403, "\(crossSite.body)")
        for lifetime in ["0", "301", "1.5", "\"60\""] {
            let bad = try await served.send(
                "POST", "/api/chat/live-token", session.headers(served.origin), json: #"{"lifetime":\#(lifetime)}"#)
            #expect(bad.status == 400, "\(lifetime): \(bad.body)")
        }
        // A plain GET (no upgrade) says how to connect.
        let plain = try await served.send("GET", "/api/chat/socket", [])
        #expect(plain.status == 426, "\(plain.body)")

        let log = await served.running.stop().log
        for reason in ["already used", "expired", "cross-origin", "wrong purpose", "offer the subprotocols"] {
            #expect(log.contains(reason), "\(reason)")
        }
        // No token text reaches the log.
        #expect(!log.contains(token) && !log.contains(fresh) && !log.contains(short))
    }

    @Test(
        "bad frames get an error frame and the socket stays open; a frame over 16 KiB gets one and the socket closes (1009)"
    )
    func badInput() async throws {
        let (served, model) = try await Self.serve([.text("Still here.")])
        defer { Task { await model.stop() } }
        let socket = try await served.open(token: try await served.chatToken(try await served.login()))
        defer { socket.close() }
        _ = try await socket.readJSON(until: ["ready"])
        let bad: [(String, String)] = [
            ("not json", "not a JSON object"),
            (#"["message"]"#, "not a JSON object"),
            (#"{"type":"message"}"#, "\"text\""),
            (#"{"type":"message","text":"   "}"#, "\"text\""),
            (#"{"type":"hello","text":"hi"}"#, "\"type\""),
            (#"{"type":"message","text":"hi","conversation":7}"#, "\"conversation\""),
            (#"{"type":"message","text":"hi","extra":true}"#, "unknown field \"extra\""),
        ]
        for (frame, words) in bad {
            try socket.send(text: frame)
            let error = try #require(try await socket.readJSON(until: ["error", "done"]).last)
            #expect(error["type"] as? String == "error" && error["status"] as? Int == 400, "\(frame)")
            #expect((error["error"] as? String)?.contains(words) == true, "\(frame): \(error)")
        }
        try socket.send(opcode: 0x2, payload: [1, 2, 3])
        #expect((try await socket.readJSON(until: ["error"]).last?["error"] as? String)?.contains("binary") == true)

        // Still open: a good message gets its answer.
        try socket.send(text: Self.message("are you there?"))
        let answer = try await socket.readJSON(until: ["done", "error"])
        #expect((answer.last?["turn"] as? [String: Any])?["reply"] as? String == "Still here.", "\(answer.seen)")

        try socket.send(text: Self.message(String(repeating: "x", count: 20_000)))
        let tooLarge = try #require(try await socket.readJSON(until: ["error"]).last)
        #expect((tooLarge["error"] as? String)?.contains("at most 16384") == true, "\(tooLarge)")
        #expect(try await socket.receive() == .close(code: 1009, reason: "message too large"))
        _ = await served.running.stop()
    }

    @Test("a logout closes the sockets its session opened (1008), not another session's; revoke-all closes the rest")
    func sessionEnds() async throws {
        let (served, model) = try await Self.serve([.text("Session B answers.")])
        defer { Task { await model.stop() } }
        let first = try await served.login()
        let second = try await served.login()
        let socketA = try await served.open(token: try await served.chatToken(first))
        let socketB = try await served.open(token: try await served.chatToken(second))
        defer {
            socketA.close()
            socketB.close()
        }
        _ = try await socketA.readJSON(until: ["ready"])
        _ = try await socketB.readJSON(until: ["ready"])

        let logout = try await served.send("POST", "/api/auth/logout", first.headers(served.origin))
        #expect(logout.status == 204 || logout.status == 200, "\(logout.body)")
        // Without sending anything, A is closed by the server's check of its session.
        var frame = try await socketA.receive()
        while case .text = frame { frame = try await socketA.receive() }
        #expect(frame == .close(code: 1008, reason: "the session ended: log in again"))

        try socketB.send(text: Self.message("still there?"))
        let answer = try await socketB.readJSON(until: ["done", "error"])
        #expect((answer.last?["turn"] as? [String: Any])?["reply"] as? String == "Session B answers.", "\(answer.seen)")

        let revoked = try await MoatBinary.run(["owner", "revoke-all"], home: served.home.path)
        #expect(revoked.status == 0, "\(revoked.stderr)")
        frame = try await socketB.receive()
        while case .text = frame { frame = try await socketB.receive() }
        #expect(frame == .close(code: 1008, reason: "the session ended: log in again"))
        _ = await served.running.stop()
    }
}

/// The `/chat` page in headless Chromium (Tests/Browser/chat_walk.py): its own client, Chromium's
/// WebSocket, against the real `moat serve`.
@Suite(.serialized, .tags(.slow)) struct WebChatBrowserTests {
    @Test(
        "the /chat page in headless Chromium: a streamed reply, a held call linked to /approvals, a reconnect — console clean"
    )
    func chatInBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: tool),
                "\(tool) is missing: run ./install.sh --deps (it installs the browser the tests use)")
        }
        let reply = "Hello from the model, in the browser."
        let model = try await ScriptedModelServer.start(replies: [
            .text(reply), .toolCall("read_file", #"{"path":"notes.txt"}"#), .text("It waits for your approval."),
        ])
        defer { Task { await model.stop() } }
        let (home, server, port) = try await ConsolePageTests.serve(model, password: BrowserTests.password)
        // Docs/screenshots is rewritten only on request (MOAT_SCREENSHOTS=update).
        let temp = TemporaryDirectory()
        let shots =
            ProcessInfo.processInfo.environment["MOAT_SCREENSHOTS"] == "update"
            ? BrowserTests.repository.appendingPathComponent("Docs/screenshots").path : temp.file("screenshots")
        let script = BrowserTests.repository.appendingPathComponent("Tests/Browser/chat_walk.py").path
        let (status, out, err) = try await BrowserTests.python(
            script, input: "http://127.0.0.1:\(port)\n\(BrowserTests.password)\n\(reply)\n\(shots)\n")
        #expect(!err.contains("No module named 'selenium'"), "python3-selenium is missing: run ./install.sh --deps")
        #expect(status == 0, "browser run failed: \(out) \(err)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "no JSON summary: \(out) \(err)")
        #expect((summary["steps"] as? [String])?.contains("console clean") == true)
        let png = try Data(contentsOf: URL(fileURLWithPath: shots + "/chat.png"))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "chat.png is not a PNG")
        let (stopped, log) = await server.stop()
        #expect(stopped == 0)
        // Two sockets: the first page and the reload, each with its own token.
        #expect(log.components(separatedBy: "chat socket opened").count - 1 == 2, "\(log)")
        _ = home
    }
}
