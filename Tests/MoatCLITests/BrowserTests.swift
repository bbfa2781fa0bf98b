import Foundation
import MoatCore
import MoatTestSupport
import Testing

/// The owner's pages in a real browser: headless Chromium driven by Selenium (Tests/Browser), against
/// the real `moat serve`. `./install.sh --deps` installs chromium, chromium-driver and python3-selenium.
@Suite(.serialized, .tags(.slow)) struct BrowserTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let password = "a browser owner passphrase"

    /// Runs `/usr/bin/python3 SCRIPT` with `input` on stdin, on its own thread; returns (status, stdout, stderr).
    static func python(_ script: String, input: String, timeout: TimeInterval = 180) async throws
        -> (Int32, String, String)
    {
        try await offCooperativePool {
            let stdin = Pipe()
            let stdout = Pipe()
            let stderr = Pipe()
            let process = try ChildProcess(
                "/usr/bin/python3", [script], standardInput: .pipe(stdin), standardOutput: .pipe(stdout),
                standardError: .pipe(stderr))
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
            let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
            let out = stdout.fileHandleForReading.readAll()
            let err = stderr.fileHandleForReading.readAll()
            process.waitUntilExit()
            timer.cancel()
            return (
                process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)
            )
        }
    }

    @Test("set up, create a token, log out, fail and pass a login — in headless Chromium, console clean")
    func ownerInBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: tool),
                "\(tool) is missing: run ./install.sh --deps (it installs the browser the tests use)")
        }
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let server = try await RunningServer.start(arguments: [], home: home)
        let linkFile = home + "/setup-link.txt"
        await waitForFile(linkFile, within: 30)
        let link = try String(contentsOfFile: linkFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let script = Self.repository.appendingPathComponent("Tests/Browser/owner_login.py").path
        let (status, out, err) = try await Self.python(script, input: link + "\n" + Self.password + "\n")
        #expect(
            !err.contains("No module named 'selenium'"),
            "python3-selenium is missing: run ./install.sh --deps")
        #expect(status == 0, "browser run failed: \(out) \(err)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "no JSON summary: \(out) \(err)")
        #expect(summary["ok"] as? Bool == true)
        #expect((summary["steps"] as? [String])?.contains("console clean") == true)
        let (stopped, log) = await server.stop()
        #expect(stopped == 0)
        let token = String(link.split(separator: "#").last ?? "")
        #expect(!log.contains(Self.password) && !log.contains(token))
        let audit = try await MoatBinary.run(["audit", "export", "--format", "jsonl"], home: home)
        let entries = audit.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        for (action, outcome) in [
            ("auth.setup", "success"), ("auth.login", "success"), ("auth.login", "failure"),
            ("auth.logout", "success"), ("auth.token.create", "success"),
        ] {
            #expect(
                entries.contains { $0["action"] as? String == action && $0["outcome"] as? String == outcome },
                "\(action) \(outcome) missing from the audit log")
        }
        #expect(audit.stdout.contains("HeadlessChrome"), "the audit log records the browser's User-Agent")
        #expect(!audit.stdout.contains(Self.password))
    }

    @Test(
        "the console walk in headless Chromium: overview, a hostile model's held call approved, its conversation, a pairing request approved with ceilings, trust lowered, audit filtered and exported — console clean"
    )
    func consoleInBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: tool),
                "\(tool) is missing: run ./install.sh --deps (it installs the browser the tests use)")
        }
        // A hostile model: no script, it obeys every MOAT-TEST-CALL line it reads and otherwise answers "Done.".
        var options = ScriptedModelServer.Options()
        options.hostile = .newInput
        let model = try await ScriptedModelServer.start(options: options)
        defer { Task { await model.stop() } }
        let telegram = try await FakeTelegramServer.start()
        defer { Task { await telegram.stop() } }
        // An API on loopback the owner allowed, for a vault secret the model's http_request uses (its last use).
        let api = try await LoopbackHTTPServer.start(host: "127.0.0.1") { _ in .init(body: "sunny") }
        defer { Task { await api.stop() } }
        let prepared = try await TelegramServeTests.home(
            model: model, telegram: telegram, token: telegram.token,
            extra: "policy:\n  ssrf:\n    allow_hosts: [\"127.0.0.1:\(api.port)\"]\n")
        let (home, server, port) = try await ConsolePageTests.serve(home: prepared, password: Self.password)
        let key = "weather-key-" + UUID().uuidString
        try key.write(toFile: home.file("key"), atomically: true, encoding: .utf8)
        let added = try await MoatBinary.run(
            [
                "vault", "add", "WEATHER_KEY", "--from-file", home.file("key"), "--allow-tool", "http_request",
                "--allow-host", "127.0.0.1",
            ], home: home.path)
        #expect(added.status == 0, "\(added.stderr)")
        unlink(home.file("key"))
        let integrations = try await MoatBinary.run(
            ["trust", "set", "integrations", "full", "--force", "--reason", "my weather API"], home: home.path)
        #expect(integrations.status == 0, "\(integrations.stderr)")
        // The model asks to read a file (held: files is at suggest) and calls the weather API with the secret (runs).
        let weather = #"{"method":"GET","url":"\#(api.origin)/today","headers":{"X-Key":"{{secret:WEATHER_KEY}}"}}"#
        let chat = try await MoatBinary.run(
            [
                "chat", "--message",
                "notes and weather?\nMOAT-TEST-CALL read_file {\"path\":\"notes.txt\"}\nMOAT-TEST-CALL http_request \(weather)",
            ], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let id = try ApprovalAPITests.pendingID(chat)
        #expect(api.requests.count == 1 && api.requests.first?.header("X-Key") == key)
        // A stranger writes to the served home's bot: a pending pairing request, nothing for the model.
        let alice = TelegramServeTests.alice
        telegram.sendPrivateMessage(from: alice, text: "hello, may I talk to your agent?")
        try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: alice).count == 1 }
        let code = try #require(TelegramServeTests.code(in: TelegramServeTests.texts(telegram, to: alice).first ?? ""))
        // Docs/screenshots is rewritten only on request (MOAT_SCREENSHOTS=update): a test run leaves the tree as it was.
        let temp = TemporaryDirectory()
        let shots =
            ProcessInfo.processInfo.environment["MOAT_SCREENSHOTS"] == "update"
            ? Self.repository.appendingPathComponent("Docs/screenshots").path : temp.file("screenshots")
        let script = Self.repository.appendingPathComponent("Tests/Browser/console_walk.py").path
        let (status, out, err) = try await Self.python(
            script, input: "http://127.0.0.1:\(port)\n\(Self.password)\n\(id)\n\(shots)\n\(code)\nweb=2 files=0\n")
        #expect(!err.contains("No module named 'selenium'"), "python3-selenium is missing: run ./install.sh --deps")
        #expect(status == 0, "browser run failed: \(out) \(err)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "no JSON summary: \(out) \(err)")
        let steps = summary["steps"] as? [String] ?? []
        #expect(
            steps == [
                "login page", "overview", "keyboard focus", "approvals page", "approved", "conversation",
                "pairing request shown", "pairing approved with ceilings", "trust lowered",
                "audit filtered and exported",
                "vault", "phone layout", "console clean",
            ], "\(steps)")
        for page in [
            "login", "overview", "approvals", "approvals-decided", "conversation", "contacts", "contacts-approved",
            "trust", "audit", "vault", "overview-phone",
        ] {
            let png = try Data(contentsOf: URL(fileURLWithPath: shots + "/\(page).png"))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(page).png is not a PNG")
        }
        // Approving in the page ran exactly the held call: the file's text went to the model.
        #expect(model.requests.contains { $0.body.contains("groceries: milk, eggs") })

        // The contact the page approved has exactly the ceilings chosen there, as the page and the CLI list them.
        #expect(
            summary["ceilings"] as? String
                == "messaging 2, files 0, web 2, shell 1, finance 1, calendar 1, email 1, integrations 1, system 1")
        let contacts = try await MoatBinary.run(["contact", "list"], home: home.path)
        let lines = contacts.stdout.split(separator: "\n")
        #expect(lines.count == 1, "\(contacts.stdout)")
        #expect(
            lines.first?.hasSuffix(
                " telegram:\(alice.id) calendar=1,email=1,files=0,finance=1,integrations=1,messaging=2,shell=1,system=1,web=2"
            ) == true, "\(contacts.stdout)")
        // The pairing request reached no model; the contact's next message does, and the model's answer goes back.
        #expect(!model.requests.contains { $0.body.contains("may I talk to your agent") })
        telegram.sendPrivateMessage(from: alice, text: "now that we are paired: hello again")
        try await TelegramServeTests.eventually { TelegramServeTests.texts(telegram, to: alice).count == 2 }
        #expect(
            TelegramServeTests.texts(telegram, to: alice).last == "Done.",
            "\(TelegramServeTests.texts(telegram, to: alice))")
        #expect(model.requests.last?.body.contains("hello again") == true)

        let (stopped, log) = await server.stop()
        #expect(stopped == 0)
        #expect(!log.contains(key) && !model.everythingReceived.contains(key))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
