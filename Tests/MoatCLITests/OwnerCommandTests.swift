import Foundation
import MoatCore
import MoatTestSupport
import Testing

/// The owner's whole path on the real binary: `moat serve` prints (here: writes) a setup link, the
/// owner sets up over HTTP, then manages tokens and sessions with the CLI through the admin socket.
@Suite(.serialized) struct OwnerCommandTests {
    static let password = "a long owner passphrase"

    /// Waits for `moat serve` to write the setup link file; returns (link, token).
    static func setupLink(_ home: String, timeout: TimeInterval = 30) async throws -> (String, String) {
        let file = home + "/setup-link.txt"
        await waitForFile(file, within: timeout)
        let link = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let token = String(link.split(separator: "#").last ?? "")
        return (link, token)
    }

    static func send(
        _ method: String, _ path: String, port: Int, headers: [(String, String)] = [], json: String? = nil
    ) async throws -> RawHTTP.Response {
        try await RawHTTP.send(
            RawHTTP.request(method, path, headers: [("Host", "127.0.0.1:\(port)")] + headers, body: json), port: port)
    }

    @Test("serve → setup link → browser setup → CLI tokens through the admin socket → revoke-all")
    func fullPath() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        let (link, token) = try await Self.setupLink(home)
        #expect(link.hasPrefix("http://127.0.0.1:\(port)/setup#"))
        #expect(token.count >= 43)
        #expect(!server.log.contains(token))
        #expect(server.log.contains("setup-link.txt"))
        // The admin socket starts beside the HTTP listener.
        await waitForFile(home + "/moat.sock", within: 60)
        #expect(FileManager.default.fileExists(atPath: home + "/moat.sock"))

        // Before setup: 503 everywhere but setup.
        #expect(try await Self.send("GET", "/api/tokens", port: port).status == 503)
        let setup = try await Self.send(
            "POST", "/api/setup", port: port, headers: [("Origin", "http://127.0.0.1:\(port)")],
            json: #"{"token":"\#(token)","password":"\#(Self.password)"}"#)
        #expect(setup.status == 201)
        let cookie = String(setup.header("Set-Cookie")?.split(separator: ";").first ?? "")
        #expect(cookie.hasPrefix("moat_session="))
        let browser = try [("Cookie", cookie), ("X-CSRF-Token", #require(setup.json["csrf_token"] as? String))]
        #expect(!FileManager.default.fileExists(atPath: home + "/setup-link.txt"))

        // The CLI, through the admin socket of the running server.
        let created = try await MoatBinary.run(
            ["token", "create", "ci", "--scope", "read", "--expires", "30d"], home: home)
        #expect(created.status == 0, "\(created.stderr)")
        let apiToken = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(apiToken.hasPrefix("moat_"))
        #expect(created.stderr.contains("shown only this once"))
        let prefix = String(apiToken.split(separator: "_")[1])
        // As a script would: curl, with the token in a header read from a file (not on curl's argv).
        let headerFile = try temp.write("auth-header", "Authorization: Bearer \(apiToken)\n")
        let curlOut = Pipe()
        let curl = try ChildProcess(
            "/usr/bin/curl", ["-s", "-H", "@\(headerFile)", "http://127.0.0.1:\(port)/api/auth/session"],
            standardOutput: .pipe(curlOut))
        let curlBody = await offCooperativePool {
            let body = String(decoding: curlOut.fileHandleForReading.readAll(), as: UTF8.self)
            curl.waitUntilExit()
            return body
        }
        #expect(curlBody.contains("\"via\":\"token\"") && curlBody.contains("\"scope\":\"read\""), "\(curlBody)")
        let list = try await MoatBinary.run(["token", "list"], home: home)
        #expect(list.status == 0 && list.stdout.contains(prefix) && list.stdout.contains("ci"))
        #expect(!list.stdout.contains(apiToken))
        #expect(try await MoatBinary.run(["token", "revoke", prefix], home: home).status == 0)
        #expect(
            try await Self.send(
                "GET", "/api/auth/session", port: port, headers: [("Authorization", "Bearer \(apiToken)")]
            )
            .status == 401)
        let unknown = try await MoatBinary.run(["token", "revoke", "nothere1"], home: home)
        #expect(unknown.status != 0 && unknown.stderr.contains("no API token with prefix nothere1"))

        // Revoke everything ends the browser session.
        #expect(try await Self.send("GET", "/api/auth/session", port: port, headers: browser).status == 200)
        #expect(try await MoatBinary.run(["owner", "revoke-all"], home: home).status == 0)
        #expect(try await Self.send("GET", "/api/auth/session", port: port, headers: browser).status == 401)
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!log.contains(apiToken) && !log.contains(token))
        #expect(!FileManager.default.fileExists(atPath: home + "/moat.sock"))

        // Without a server the same commands work on the files directly, and the audit chain holds.
        let offline = try await MoatBinary.run(["token", "list", "--json"], home: home)
        #expect(offline.status == 0 && offline.stdout.contains(prefix) && offline.stdout.contains("\"revoked_at\""))
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "40"], home: home)
        for action in [
            "auth.setup", "auth.token.create", "auth.token.revoke", "auth.token.use_revoked", "auth.revoke_all",
        ] {
            #expect(audit.stdout.contains(action), "\(action) missing from the audit log")
        }
        #expect(!audit.stdout.contains(apiToken))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home).status == 0)
    }

    @Test("moat owner setup from the terminal, then login over HTTP; a second setup is refused")
    func terminalSetup() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        _ = try await RunningServer.start(arguments: [], home: home).stop()
        #expect(try await MoatBinary.run(["doctor"], home: home).stdout.contains("no owner is set up yet"))
        let short = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home, stdin: "too short\n")
        #expect(short.status != 0 && short.stderr.contains("at least 12"))
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--username", "alice", "--owner-password-stdin"], home: home, stdin: Self.password + "\n"
        )
        #expect(setup.status == 0, "\(setup.stderr)")
        let again = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home, stdin: Self.password + "\n")
        #expect(again.status != 0 && again.stderr.contains("already has an owner"))
        #expect(try await MoatBinary.run(["doctor"], home: home).stdout.contains("the owner is set up"))
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        #expect(!FileManager.default.fileExists(atPath: home + "/setup-link.txt"))
        let login = try await Self.send(
            "POST", "/api/auth/login", port: port, json: #"{"username":"alice","password":"\#(Self.password)"}"#)
        #expect(login.status == 200)
        let status = try await MoatBinary.run(["owner", "status"], home: home)
        #expect(status.stdout.contains("owner: alice"))
        await #expect(server.stop().status == 0)
    }

    @Test("under TLS the cookie is __Host- and Secure, and HSTS is sent")
    func tlsCookie() async throws {
        let temp = TemporaryDirectory()
        let (cert, key) = try await TestCertificates.make(in: temp)
        let config = try temp.write("moat.yaml", "gateway:\n  tls:\n    cert: \(cert)\n    key: \(key)\n")
        let home = temp.file("home")
        let server = try await RunningServer.start(arguments: ["--config", config], home: home)
        let port = try #require(server.port)
        let (link, token) = try await Self.setupLink(home)
        #expect(link.hasPrefix("https://127.0.0.1:\(port)/setup#"))
        let input = Pipe()
        let output = Pipe()
        let process = try ChildProcess(
            "/usr/bin/curl",
            [
                "-sk", "-D", "-", "-o", "/dev/null", "-X", "POST", "https://127.0.0.1:\(port)/api/setup",
                "-H", "Content-Type: application/json", "-H", "Origin: https://127.0.0.1:\(port)",
                "--data-binary", "@-",
            ], standardInput: .pipe(input), standardOutput: .pipe(output))
        // The setup token goes through stdin, not curl's argv.
        input.fileHandleForWriting.write(Data(#"{"token":"\#(token)","password":"\#(Self.password)"}"#.utf8))
        try input.fileHandleForWriting.close()
        let headers = await offCooperativePool {
            let text = String(decoding: output.fileHandleForReading.readAll(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
        #expect(headers.contains("HTTP/1.1 201"), "\(headers)")
        let cookie = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") } ?? ""
        #expect(cookie.contains("__Host-moat_session="))
        #expect(cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
        #expect(cookie.contains("Path=/") && !cookie.contains("Domain"))
        #expect(headers.lowercased().contains("strict-transport-security: max-age=31536000"))
        await #expect(server.stop().status == 0)
    }
}
