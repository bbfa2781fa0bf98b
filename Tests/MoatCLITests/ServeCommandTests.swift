import Foundation
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
    func configErrors(_ yaml: String, _ expected: String) throws {
        let temp = TemporaryDirectory()
        let path = try temp.write("config.yaml", yaml)
        let result = try MoatBinary.run(["serve"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains(path + expected), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.file("moat.db")) == false)
    }

    @Test("--config naming a missing file exits 78; no config file at all runs on defaults")
    func missingConfig() throws {
        let temp = TemporaryDirectory()
        let result = try MoatBinary.run(["serve", "--config", temp.file("nope.yaml")], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("nope.yaml: cannot read: No such file or directory"))
        #expect(try MoatBinary.run(["doctor"], home: temp.path).status == 0)
    }

    @Test("--host 0.0.0.0 without TLS exits 78 saying why, and creates nothing")
    func unsafeBind() throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let result = try MoatBinary.run(["serve", "--host", "0.0.0.0"], home: home)
        #expect(result.status == 78)
        #expect(result.stderr.contains("refusing to listen on 0.0.0.0"))
        #expect(result.stderr.contains("tailscale serve --bg 18789"))
        #expect(FileManager.default.fileExists(atPath: home) == false)
    }

    @Test("a group-readable state directory and a world-readable moat.db are refused with the chmod fix")
    func unsafeModes() throws {
        let temp = TemporaryDirectory()
        TemporaryDirectory.chmod(temp.path, 0o750)
        var result = try MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("fix: chmod 0700 \(temp.path)"))

        TemporaryDirectory.chmod(temp.path, 0o700)
        try temp.write("moat.db", "", mode: 0o644)
        result = try MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 78)
        #expect(result.stderr.contains("fix: chmod 0600 \(temp.file("moat.db"))"))
    }

    @Test("a moat.db that is not a database gives a clear error and exit 65, not a crash")
    func corruptDatabase() throws {
        let temp = TemporaryDirectory()
        try temp.write("moat.db", "definitely not sqlite")
        let result = try MoatBinary.run(["serve", "--port", "0"], home: temp.path)
        #expect(result.status == 65)
        #expect(result.stderr.contains("is not an SQLite database"))
    }

    @Test("serve listens on loopback, answers /healthz, logs JSON without headers, and stops cleanly on SIGTERM")
    func serveAndGracefulShutdown() throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let server = try RunningServer(arguments: [], home: home)
        let port = try #require(server.port)
        let response = try RawHTTP.send(
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
        #expect(throws: (any Error).self) { try RawHTTP.send(RawHTTP.request(headers: []), host: "::1", port: port) }

        let (status, log) = server.stop(signal: SIGTERM)
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
    func sigint() throws {
        let temp = TemporaryDirectory()
        let server = try RunningServer(arguments: [], home: temp.path)
        let (status, log) = server.stop(signal: SIGINT)
        #expect(status == 0)
        #expect(log.contains("\"message\":\"stopped\""))
    }

    @Test("TLS: serve starts with a valid certificate and speaks TLS 1.2+ only")
    func tlsServe() throws {
        let temp = TemporaryDirectory()
        let (cert, key) = try TestCertificates.make(in: temp)
        let config = try temp.write("moat.yaml", "gateway:\n  tls:\n    cert: \(cert)\n    key: \(key)\n")
        let server = try RunningServer(arguments: ["--config", config], home: temp.file("home"))
        let port = try #require(server.port)
        #expect(server.log.contains("https://127.0.0.1:\(port)"))
        func handshake(_ version: String) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", version, "-brief"]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try handshake("-tls1_2") == 0)
        #expect(try handshake("-tls1_1") != 0)
        #expect(server.stop().status == 0)
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
