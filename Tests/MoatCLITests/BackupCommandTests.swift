import Foundation
import MoatTestSupport
import Testing

/// `moat backup` and `moat restore` on the real binary, real SQLite files and a real `moat serve`.
@Suite(.serialized) struct BackupCommandTests {
    static let passphrase = "a backup passphrase of mine"
    static let secretValue = "ghp_backup-round-trip-value-0123456789"

    /// A backup of a served home (no server running), with the files a restore needs.
    struct Made {
        let temp: TemporaryDirectory
        let home: TemporaryDirectory
        let backup: String
        let passphraseFile: String
        let passwordFile: String
    }

    static func makeBackup() async throws -> Made {
        let temp = TemporaryDirectory()
        let home = try await ServedHome.copy()
        let passphraseFile = try temp.write("passphrase", passphrase + "\n")
        let passwordFile = try temp.write("password", try recoveryKey(home.path))
        let backup = temp.file("moat.backup")
        let made = try await MoatBinary.run(["backup", "--passphrase-file", passphraseFile, backup], home: home.path)
        #expect(made.status == 0, "\(made.stderr)")
        return Made(temp: temp, home: home, backup: backup, passphraseFile: passphraseFile, passwordFile: passwordFile)
    }

    /// The master password `moat serve` generated for `home`: the last line of `recovery-key.txt`.
    static func recoveryKey(_ home: String) throws -> String {
        let text = try String(contentsOfFile: home + "/recovery-key.txt", encoding: .utf8)
        return String(text.split(separator: "\n").last ?? "") + "\n"
    }

    static func restore(_ made: Made, file: String? = nil, into home: String, extra: [String] = []) async throws
        -> MoatBinary.Result
    {
        try await MoatBinary.run(
            ["restore", "--passphrase-file", made.passphraseFile, "--password-file", made.passwordFile]
                + extra + [file ?? made.backup],
            home: home)
    }

    /// Waits (up to a minute) for a starting `moat serve` to create its admin socket.
    static func waitForAdminSocket(_ home: String) async {
        await waitForFile(home + "/moat.sock", within: 60)
    }

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    /// Nothing of an installation was written into `home`.
    static func nothingWritten(_ home: String) -> Bool {
        ["moat.db", "moat.db-wal", "vault.moat", "vault.seal", "config.yaml"].allSatisfy {
            !FileManager.default.fileExists(atPath: home + "/" + $0)
        }
    }

    @Test(
        "a home with an owner, a token, a contact and a secret, backed up while moat serve runs and writes, restores onto a fresh directory that verifies and serves the same owner"
    )
    func roundTripWhileServing() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let server = try await RunningServer.start(arguments: [], home: home)
        let port = try #require(server.port)
        let (_, setupToken) = try await OwnerCommandTests.setupLink(home)
        let setup = try await OwnerCommandTests.send(
            "POST", "/api/setup", port: port, headers: [("Origin", "http://127.0.0.1:\(port)")],
            json: #"{"token":"\#(setupToken)","password":"\#(OwnerCommandTests.password)"}"#)
        #expect(setup.status == 201)
        await Self.waitForAdminSocket(home)
        let created = try await MoatBinary.run(
            ["token", "create", "ci", "--scope", "read", "--expires", "30d"], home: home)
        #expect(created.status == 0, "\(created.stderr)")
        let apiToken = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let contact = try await MoatBinary.run(["contact", "add", "webhook:sms:+15551234567"], home: home)
        #expect(contact.status == 0, "\(contact.stderr)")
        let added = try await MoatBinary.run(["vault", "add", "GITHUB_TOKEN"], home: home, stdin: Self.secretValue)
        #expect(added.status == 0, "\(added.stderr)")
        let passphraseFile = try temp.write("passphrase", Self.passphrase + "\n")
        let passwordFile = try temp.write("password", try Self.recoveryKey(home))

        // The server keeps writing (tokens through the admin socket) while the backup is taken.
        let writing = NSLock()
        nonisolated(unsafe) var keepWriting = true
        nonisolated(unsafe) var writes = 0
        let writer = Thread {
            while writing.withLock({ keepWriting }) {
                let result = try? MoatBinary.run(["token", "create", "load", "--scope", "read"], home: home)
                if result?.status == 0 { writing.withLock { writes += 1 } }
            }
        }
        writer.start()
        while writing.withLock({ writes == 0 }) { try await Task.sleep(for: .milliseconds(20)) }
        let backup = temp.file("live.backup")
        let made = try await MoatBinary.run(["backup", "--passphrase-file", passphraseFile, backup], home: home)
        writing.withLock { keepWriting = false }
        #expect(made.status == 0, "\(made.stderr)")
        #expect(Self.mode(backup) == 0o600)
        while writer.isExecuting { try await Task.sleep(for: .milliseconds(20)) }
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(!(made.stdout + made.stderr + log).contains(Self.passphrase))
        let tail = try await MoatBinary.run(["audit", "tail", "-n", "500"], home: home)
        #expect(tail.stdout.contains("backup.create"))
        #expect(!tail.stdout.contains(Self.passphrase))

        // Also a backup with no server running, taken directly.
        let offline = temp.file("offline.backup")
        let direct = try await MoatBinary.run(["backup", "--passphrase-file", passphraseFile, offline], home: home)
        #expect(direct.status == 0, "\(direct.stderr)")

        for (index, file) in [backup, offline].enumerated() {
            let restored = temp.file("restored-\(index)")
            let result = try await MoatBinary.run(
                ["restore", "--passphrase-file", passphraseFile, "--password-file", passwordFile, "--seal", file],
                home: restored)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("chain intact"))
            #expect(!(result.stdout + result.stderr).contains(Self.passphrase))
            for name in ["moat.db", "vault.moat", "vault.seal"] {
                #expect(Self.mode(restored + "/" + name) == 0o600, "\(name)")
            }
            #expect(Self.mode(restored) == 0o700)
            let verify = try await MoatBinary.run(["audit", "verify", "--password-file", passwordFile], home: restored)
            #expect(verify.status == 0 && verify.stdout.contains("chain intact"), "\(verify.stdout)\(verify.stderr)")
            let list = try await MoatBinary.run(["vault", "list", "--password-file", passwordFile], home: restored)
            #expect(list.status == 0 && list.stdout.contains("GITHUB_TOKEN"), "\(list.stderr)")
            #expect(!list.stdout.contains(Self.secretValue))
            let contacts = try await MoatBinary.run(["contact", "list"], home: restored)
            #expect(contacts.stdout.contains("+15551234567"), "\(contacts.stderr)")

            // Sealed by the restore: serve starts without a password and knows the owner's token.
            let again = try await RunningServer.start(arguments: [], home: restored)
            let restoredPort = try #require(again.port)
            let session = try await OwnerCommandTests.send(
                "GET", "/api/auth/session", port: restoredPort, headers: [("Authorization", "Bearer \(apiToken)")])
            #expect(session.status == 200)
            // One character changed (never to itself: a token may end in "x").
            let changed = apiToken.last == "x" ? "y" : "x"
            let forged = try await OwnerCommandTests.send(
                "GET", "/api/auth/session", port: restoredPort,
                headers: [("Authorization", "Bearer \(apiToken.dropLast())\(changed)")])
            #expect(forged.status == 401)
            await #expect(again.stop().status == 0)
        }
    }

    @Test("config.yaml travels byte for byte and is written 0600; vault.seal and recovery-key.txt never travel")
    func configTravels() async throws {
        let temp = TemporaryDirectory()
        let home = try await ServedHome.copy()
        let config = "# the owner's settings\nport: 8111\n"
        _ = try home.write("config.yaml", config)
        let passphraseFile = try temp.write("passphrase", Self.passphrase + "\n")
        let passwordFile = try temp.write("password", try Self.recoveryKey(home.path))
        let backup = temp.file("with-config.backup")
        let made = try await MoatBinary.run(["backup", "--passphrase-file", passphraseFile, backup], home: home.path)
        #expect(made.status == 0, "\(made.stderr)")
        let scratch = try FileManager.default.contentsOfDirectory(atPath: home.path).filter { $0.contains(".backup-") }
        #expect(scratch.isEmpty, "the database copy is removed: \(scratch)")
        let target = temp.file("fresh")
        let result = try await MoatBinary.run(
            ["restore", "--passphrase-file", passphraseFile, "--password-file", passwordFile, backup], home: target)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try String(contentsOfFile: target + "/config.yaml", encoding: .utf8) == config)
        #expect(Self.mode(target + "/config.yaml") == 0o600)
        for absent in ["vault.seal", "recovery-key.txt", "setup-link.txt", "moat.sock"] {
            #expect(!FileManager.default.fileExists(atPath: target + "/" + absent), "\(absent)")
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: target)
        #expect(!entries.contains { $0.hasPrefix(".restore-") || $0.contains(".tmp-") }, "\(entries)")
    }

    @Test("a wrong passphrase is refused with a clear error and writes nothing")
    func wrongPassphrase() async throws {
        let made = try await Self.makeBackup()
        let wrong = try made.temp.write("wrong", "not the backup passphrase\n")
        let target = made.temp.file("fresh")
        let result = try await MoatBinary.run(
            ["restore", "--passphrase-file", wrong, "--password-file", made.passwordFile, made.backup], home: target)
        #expect(result.status == 1)
        #expect(result.stderr.contains("does not open") && result.stderr.contains("nothing was written"))
        #expect(!result.stderr.contains("not the backup passphrase"))
        #expect(Self.nothingWritten(target))
    }

    @Test("one flipped byte in the header, salt, nonce, ciphertext or tag is refused and writes nothing")
    func flippedByte() async throws {
        let made = try await Self.makeBackup()
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: made.backup)))
        // magic, KDF id, Argon2 memory, salt, nonce, ciphertext start and middle, the tag's last byte.
        for offset in [0, 10, 14, 30, 60, 67, original.count / 2, original.count - 1] {
            var bytes = original
            bytes[offset] ^= 0x01
            let file = try made.temp.write("flipped-\(offset)", "")
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let target = made.temp.file("fresh-\(offset)")
            let result = try await Self.restore(made, file: file, into: target)
            #expect(result.status != 0, "byte \(offset)")
            #expect(!result.stderr.isEmpty && Self.nothingWritten(target), "byte \(offset): \(result.stderr)")
        }
    }

    @Test("a truncated backup is refused and writes nothing")
    func truncated() async throws {
        let made = try await Self.makeBackup()
        let original = try Data(contentsOf: URL(fileURLWithPath: made.backup))
        for length in [0, 7, 60, 82, original.count / 2, original.count - 1] {
            let file = made.temp.file("cut-\(length)")
            try original.prefix(length).write(to: URL(fileURLWithPath: file))
            let target = made.temp.file("fresh-\(length)")
            let result = try await Self.restore(made, file: file, into: target)
            #expect(result.status != 0, "length \(length)")
            #expect(Self.nothingWritten(target), "length \(length)")
            if length < 83 {
                #expect(
                    result.stderr.contains("truncated") || result.stderr.contains("not a Moat backup"),
                    "\(result.stderr)")
            }
        }
    }

    @Test("a backup from a future format version is refused by its version, before any key is derived")
    func futureVersion() async throws {
        let made = try await Self.makeBackup()
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: made.backup)))
        bytes[8] = 0
        bytes[9] = 2
        let file = made.temp.file("future")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let target = made.temp.file("fresh")
        let result = try await Self.restore(made, file: file, into: target)
        #expect(result.status == 65)
        #expect(
            result.stderr.contains("format version 2") && result.stderr.contains("upgrade Moat"), "\(result.stderr)")
        #expect(Self.nothingWritten(target))
    }

    @Test("restore refuses an existing installation without --force, and replaces it (old seal removed) with it")
    func existingInstallation() async throws {
        let made = try await Self.makeBackup()
        let other = try await ServedHome.copy()
        let before = try Data(contentsOf: URL(fileURLWithPath: other.file("vault.moat")))
        let refused = try await Self.restore(made, into: other.path)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("existing installation") && refused.stderr.contains("--force"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: other.file("vault.moat"))) == before)

        let forced = try await Self.restore(made, into: other.path, extra: ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!FileManager.default.fileExists(atPath: other.file("vault.seal")))
        #expect(forced.stdout.contains("moat vault seal"))
        let verify = try await MoatBinary.run(
            ["audit", "verify", "--password-file", made.passwordFile], home: other.path)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    @Test("restore refuses while moat serve runs on the target home")
    func refusedWhileServing() async throws {
        let made = try await Self.makeBackup()
        let server = try await RunningServer.start(arguments: [], home: made.home.path)
        await Self.waitForAdminSocket(made.home.path)
        let result = try await Self.restore(made, into: made.home.path, extra: ["--force"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("stop moat serve first"))
        await #expect(server.stop().status == 0)
    }

    @Test("backup refuses to overwrite a file without --force; the passphrase is never in argv, output or the log")
    func overwriteAndSecrecy() async throws {
        let made = try await Self.makeBackup()
        let before = try Data(contentsOf: URL(fileURLWithPath: made.backup))
        let again = try await MoatBinary.run(
            ["backup", "--passphrase-file", made.passphraseFile, made.backup], home: made.home.path)
        #expect(again.status == 1 && again.stderr.contains("--force"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: made.backup)) == before)
        let forced = try await MoatBinary.run(
            ["backup", "--force", "--passphrase-stdin", made.backup], home: made.home.path, stdin: Self.passphrase)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: made.backup)) != before)
        // No option takes the passphrase itself.
        let asArgument = try await MoatBinary.run(["backup", "--passphrase", Self.passphrase, made.backup], home: nil)
        #expect(asArgument.status != 0)
        let short = try await MoatBinary.run(
            ["backup", "--force", "--passphrase-stdin", made.backup], home: made.home.path, stdin: "short")
        #expect(short.status == 64 && !short.stderr.contains("short\n"))
        let database = try Data(contentsOf: URL(fileURLWithPath: made.home.file("moat.db")))
        #expect(database.range(of: Data(Self.passphrase.utf8)) == nil)
        let outputs = [again, forced, short].map { $0.stdout + $0.stderr }.joined()
        #expect(!outputs.contains(Self.passphrase))
    }
}
