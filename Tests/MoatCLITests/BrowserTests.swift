import Foundation
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
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script]
            let stdin = Pipe()
            let stdout = Pipe()
            let stderr = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
            let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
            let out = stdout.fileHandleForReading.readDataToEndOfFile()
            let err = stderr.fileHandleForReading.readDataToEndOfFile()
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

    @Test("the console in headless Chromium: log in, overview, approve a scripted model's held call — console clean")
    func consoleInBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            try #require(
                FileManager.default.isExecutableFile(atPath: tool),
                "\(tool) is missing: run ./install.sh --deps (it installs the browser the tests use)")
        }
        let model = try await ScriptedModelServer.start(replies: [
            .toolCall("read_file", #"{"path":"notes.txt"}"#),
            .text("It waits for your approval."),
            .text("notes.txt says: groceries."),
        ])
        defer { Task { await model.stop() } }
        let (home, server, port) = try await ConsolePageTests.serve(model, password: Self.password)
        let chat = try await MoatBinary.run(["chat", "--message", "what is in notes.txt?"], home: home.path)
        #expect(chat.status == 0, "\(chat.stderr)")
        let id = try ApprovalAPITests.pendingID(chat)
        // Docs/screenshots is rewritten only on request (MOAT_SCREENSHOTS=update): a test run leaves the tree as it was.
        let temp = TemporaryDirectory()
        let shots =
            ProcessInfo.processInfo.environment["MOAT_SCREENSHOTS"] == "update"
            ? Self.repository.appendingPathComponent("Docs/screenshots").path : temp.file("screenshots")
        let script = Self.repository.appendingPathComponent("Tests/Browser/console_walk.py").path
        let (status, out, err) = try await Self.python(
            script, input: "http://127.0.0.1:\(port)\n\(Self.password)\n\(id)\n\(shots)\n")
        #expect(!err.contains("No module named 'selenium'"), "python3-selenium is missing: run ./install.sh --deps")
        #expect(status == 0, "browser run failed: \(out) \(err)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "no JSON summary: \(out) \(err)")
        let steps = summary["steps"] as? [String] ?? []
        #expect(
            ["conversation", "trust lowered", "audit filtered and exported", "console clean"].allSatisfy(
                steps.contains), "\(steps)")
        for page in [
            "login", "overview", "approvals", "approvals-decided", "conversation", "trust", "audit", "overview-phone",
        ] {
            let png = try Data(contentsOf: URL(fileURLWithPath: shots + "/\(page).png"))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(page).png is not a PNG")
        }
        // Approving in the page ran exactly the held call: the file's text went to the model.
        #expect(model.requests.last?.body.contains("groceries") == true)
        let (stopped, _) = await server.stop()
        #expect(stopped == 0)
        #expect(try await MoatBinary.run(["audit", "verify"], home: home.path).status == 0)
    }
}
