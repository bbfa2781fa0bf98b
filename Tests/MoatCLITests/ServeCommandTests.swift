import Foundation
import MoatCore
import MoatTestSupport
import Testing

/// The real `moat` binary, run as a user runs it.
@Suite(.serialized) struct ServeCommandTests {
    @Test(
        "config errors stop start-up with exit code 78 and a message naming file, line and key",
        arguments: [
            ("gateway:\n  prot: 8080\n", ":2: gateway.prot: unknown key (did you mean gateway.port?)"),
            ("gateway:\n  port: high\n", ":2: gateway.port: must be a whole number"),
            ("gateway:\n  port: 99999\n", ":2: gateway.port: 99999 is out of range: must be a port from 1 to 65535"),
            ("", ": the file holds no settings"),
        ])
    func configErrors(_ yaml: String, _ expected: String) async throws {
        let temp = TemporaryDirectory()
        let path = try temp.write("config.yaml", yaml)
        let result = try await MoatBinary.run(["serve"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains(path + expected), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.file("moat.db")) == false)
    }

    @Test("--config naming a missing file exits 78; no config file at all runs on defaults")
    func missingConfig() async throws {
        let temp = TemporaryDirectory()
        let result = try await MoatBinary.run(["serve", "--config", temp.file("nope.yaml")], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("nope.yaml: cannot read: No such file or directory"))
        #expect(try await MoatBinary.run(["doctor"], home: temp.path).status == 0)
    }

    @Test("a --config file or directory other users can write is refused by serve (78) and failed by doctor")
    func unsafeConfigFile() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let config = try temp.write("moat.yaml", "gateway:\n  allowed_hosts: [attacker.example]\n", mode: 0o666)
        var result = try await MoatBinary.run(["serve", "--port", "0", "--config", config], home: home)
        #expect(result.status == 78)
        #expect(result.stderr.contains("refusing to read \(config)"), "\(result.stderr)")
        #expect(result.stderr.contains("fix: chmod 0644 \(config)"), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: home) == false)
        result = try await MoatBinary.run(["doctor", "--config", config], home: home)
        #expect(result.status == 1)
        #expect(result.stdout.contains("fail  config"), "\(result.stdout)")
        #expect(result.stdout.contains("fix: chmod 0644 \(config)"), "\(result.stdout)")

        // The file private, but its directory open to everyone: someone could put another file in its place.
        TemporaryDirectory.chmod(config, 0o600)
        TemporaryDirectory.chmod(temp.path, 0o777)
        result = try await MoatBinary.run(["serve", "--port", "0", "--config", config], home: home)
        #expect(result.status == 78)
        #expect(result.stderr.contains("fix: chmod 0755 \(temp.path)"), "\(result.stderr)")
        TemporaryDirectory.chmod(temp.path, 0o700)

        // A symbolic link in the file's place is not followed.
        let link = temp.file("link.yaml")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: config)
        result = try await MoatBinary.run(["doctor", "--config", link], home: home)
        #expect(result.status == 1)
        #expect(result.stdout.contains("is a symbolic link"), "\(result.stdout)")
        #expect(try await MoatBinary.run(["doctor", "--config", config], home: home).status == 0)
    }

    @Test("a FIFO given as --config is refused at once instead of blocking start-up")
    func fifoConfig() async throws {
        let temp = TemporaryDirectory()
        let fifo = temp.file("moat.yaml")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Bounded wait: a server blocked on the FIFO is killed after 30 s and then fails the status check.
        let result = try await MoatBinary.run(
            ["serve", "--port", "0", "--config", fifo], home: temp.file("home"), timeout: 30)
        #expect(result.status == 78)
        #expect(result.stderr.contains("is a FIFO (named pipe), not a regular file"), "\(result.stderr)")
        let doctor = try await MoatBinary.run(["doctor", "--config", fifo], home: temp.file("home"), timeout: 30)
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("fail  config"), "\(doctor.stdout)")
    }

    @Test("--host 0.0.0.0 without TLS exits 78 saying why, and creates nothing")
    func unsafeBind() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let result = try await MoatBinary.run(["serve", "--host", "0.0.0.0"], home: home)
        #expect(result.status == 78)
        #expect(result.stderr.contains("refusing to listen on 0.0.0.0"))
        #expect(result.stderr.contains("tailscale serve --bg 18789"))
        #expect(FileManager.default.fileExists(atPath: home) == false)
    }

    @Test("a group-readable state directory and a world-readable moat.db are refused with the chmod fix")
    func unsafeModes() async throws {
        let temp = TemporaryDirectory()
        TemporaryDirectory.chmod(temp.path, 0o750)
        var result = try await MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("fix: chmod 0700 \(temp.path)"))

        TemporaryDirectory.chmod(temp.path, 0o700)
        try temp.write("moat.db", "", mode: 0o644)
        result = try await MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("fix: chmod 0600 \(temp.file("moat.db"))"))
    }

    @Test("a moat.db that is not a database gives a clear error and exit 65, not a crash")
    func corruptDatabase() async throws {
        let temp = TemporaryDirectory()
        try temp.write("moat.db", "definitely not sqlite")
        let result = try await MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 65)
        #expect(result.stderr.contains("is not an SQLite database"))
    }

    @Test("serve listens on loopback, answers /healthz, logs JSON without headers, and stops cleanly on SIGTERM")
    func serveAndGracefulShutdown() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        let response = try await RawHTTP.send(
            RawHTTP.request(
                "GET",
                "/healthz?token=very-secret-value",
                headers: [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer moat_abc_secretsecret")]
            ),
            port: port
        )
        #expect(response.status == 200)
        #expect(response.body == "ok\n")
        // Listening on loopback only: the same port on ::1 or a non-loopback address is not served.
        await #expect(throws: (any Error).self) {
            try await RawHTTP.send(RawHTTP.request(headers: []), host: "::1", port: port)
        }

        let (status, log) = await server.stop(signal: SIGTERM)
        #expect(status == 0)
        #expect(log.contains("\"message\":\"stopped\""))
        #expect(log.contains("\"database\":\"closed\""))
        #expect(log.contains("\"path\":\"/healthz\""))
        #expect(!log.contains("very-secret-value"))
        #expect(!log.contains("secretsecret"))
        for line in log.split(separator: "\n") where line.hasPrefix("{") {
            #expect(throws: Never.self) { try JSONSerialization.jsonObject(with: Data(line.utf8)) }
        }
        #expect(FileModes(home).mode == 0o700)
        #expect(FileModes(home + "/moat.db").mode == 0o600)
    }

    @Test("SIGINT also shuts down gracefully")
    func sigint() async throws {
        let temp = TemporaryDirectory()
        let server = try await RunningServer.start(arguments: [], home: temp.path)
        let (status, log) = await server.stop(signal: SIGINT)
        #expect(status == 0)
        #expect(log.contains("\"message\":\"stopped\""))
    }

    @Test("TLS: serve starts with a valid certificate and speaks TLS 1.2+ only")
    func tlsServe() async throws {
        let temp = TemporaryDirectory()
        let (cert, key) = try await TestCertificates.make(in: temp)
        let config = try temp.write("moat.yaml", "gateway:\n  tls:\n    cert: \(cert)\n    key: \(key)\n")
        let server = try await RunningServer.start(arguments: ["--config", config], home: temp.file("home"))
        let port = try #require(server.port)
        #expect(server.log.contains("https://127.0.0.1:\(port)"))
        #expect(try await Self.handshake(port: port, ["-tls1_2"]) == 0)
        #expect(try await Self.handshake(port: port, ["-tls1_1"]) != 0)
        await #expect(server.stop().status == 0)
    }

    @Test("TLS 1.2 offers only ECDHE with AES-GCM or ChaCha20-Poly1305: no TLS_RSA key exchange, no CBC-SHA1")
    func tls12CipherSuites() async throws {
        let temp = TemporaryDirectory()
        // An RSA certificate, so the TLS_RSA_* suites (no forward secrecy) would be possible at all.
        let (cert, key) = try await TestCertificates.make(in: temp, rsa: true)
        let config = try temp.write("moat.yaml", "gateway:\n  tls:\n    cert: \(cert)\n    key: \(key)\n")
        let server = try await RunningServer.start(arguments: ["--config", config], home: temp.file("home"))
        let port = try #require(server.port)
        for refused in ["AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"] {
            #expect(
                try await Self.handshake(port: port, ["-tls1_2", "-cipher", refused]) != 0, "\(refused) was accepted")
        }
        for accepted in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"] {
            #expect(
                try await Self.handshake(port: port, ["-tls1_2", "-cipher", accepted]) == 0, "\(accepted) was refused")
        }
        #expect(try await Self.handshake(port: port, ["-tls1_3"]) == 0)
        await #expect(server.stop().status == 0)
    }

    @Test("bound to 127.0.0.2, the server answers Host: 127.0.0.2:PORT, the address its setup link names")
    func otherLoopbackAddress() async throws {
        let temp = TemporaryDirectory()
        let server = try await RunningServer.start(arguments: ["--host", "127.0.0.2"], home: temp.file("home"))
        let port = try #require(server.port)
        #expect(server.log.contains("http://127.0.0.2:\(port)"))
        let response = try await RawHTTP.send(
            RawHTTP.request("GET", "/healthz", headers: [("Host", "127.0.0.2:\(port)")]), host: "127.0.0.2", port: port)
        #expect(response.status == 200)
        let setup = try await RawHTTP.send(
            RawHTTP.request("GET", "/api/setup", headers: [("Host", "127.0.0.2:\(port)")]), host: "127.0.0.2",
            port: port)
        #expect(setup.status == 200)
        // Another port on the same address is still a foreign Host.
        let foreign = try await RawHTTP.send(
            RawHTTP.request("GET", "/healthz", headers: [("Host", "127.0.0.2:\(port == 1 ? 2 : port - 1)")]),
            host: "127.0.0.2", port: port)
        #expect(foreign.status == 421)
        await #expect(server.stop().status == 0)
    }

    /// Runs `openssl s_client` against the port with these extra arguments; its exit status.
    static func handshake(port: Int, _ arguments: [String]) async throws -> Int32 {
        try await offCooperativePool {
            let process = try ChildProcess(
                "/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-brief"] + arguments)
            process.waitUntilExit()
            return process.terminationStatus
        }
    }
}

/// A tiny stat wrapper for mode assertions.
struct FileModes {
    let mode: UInt32?
    init(_ path: String) {
        var info = stat()
        mode = lstat(path, &info) == 0 ? UInt32(info.st_mode) & 0o7777 : nil
    }
}
