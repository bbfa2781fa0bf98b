import Foundation
import MoatCore
import MoatTestSupport
import Testing

/// `moat vault` and the vault side of `moat serve`, through the real binary.
@Suite(.serialized, .tags(.slow)) struct VaultCommandTests {
    static let password = "correct horse battery staple"
    static let token = "ghp_ThisIsTheTokenValue0123456789abcdef"

    func moat(
        _ arguments: [String], _ home: String, stdin: String? = nil, timeout: TimeInterval = 60
    ) async throws -> MoatBinary.Result {
        try await MoatBinary.run(arguments, home: home, stdin: stdin, timeout: timeout)
    }

    /// Neither output stream of any run may hold a secret.
    func expectNoSecrets(_ results: [MoatBinary.Result], _ secrets: [String] = [Self.token, Self.password]) {
        for result in results {
            for secret in secrets {
                #expect(!result.stdout.contains(secret), "stdout holds a secret: \(result.stdout)")
                #expect(!result.stderr.contains(secret), "stderr holds a secret: \(result.stderr)")
            }
        }
    }

    @Test("init from stdin, add from stdin (unlocked by the seal), list without values, status, rm")
    func endToEnd() async throws {
        let temp = TemporaryDirectory()
        let home = temp.path
        var results: [MoatBinary.Result] = []
        let initialized = try await moat(["vault", "init", "--password-stdin"], home, stdin: Self.password + "\n")
        results.append(initialized)
        #expect(initialized.status == 0, "\(initialized.stderr)")
        #expect(initialized.stdout.contains("created \(home)/vault.moat (Argon2id m=64 MiB, t=3, p=4)"))
        #expect(initialized.stdout.contains("sealed to this machine without a PIN"))
        #expect(FileModes(home + "/vault.moat").mode == 0o600)
        #expect(FileModes(home + "/vault.seal").mode == 0o600)

        let added = try await moat(
            ["vault", "add", "GITHUB_TOKEN", "--allow-tool", "http", "--allow-host", "api.github.com"],
            home,
            stdin: Self.token + "\n"
        )
        results.append(added)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.contains("added GITHUB_TOKEN (tools: http; hosts: api.github.com)"))

        let list = try await moat(["vault", "list"], home)
        results.append(list)
        #expect(list.status == 0)
        #expect(list.stdout.contains("GITHUB_TOKEN"))
        #expect(list.stdout.contains("tools: http; hosts: api.github.com"))

        let json = try await moat(["vault", "list", "--json"], home)
        results.append(json)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        // The audit log keeps its two keys in the vault too (MOAT_AUDIT_*), with a policy allowing nothing.
        let names = parsed.compactMap { $0["name"] as? String }
        #expect(names.filter { !$0.hasPrefix("MOAT_AUDIT_") } == ["GITHUB_TOKEN"])
        let github = parsed.first { $0["name"] as? String == "GITHUB_TOKEN" }
        #expect(github?["hosts"] as? [String] == ["api.github.com"])
        #expect(Set(github?.keys.map { $0 } ?? []) == ["name", "tools", "hosts", "created", "updated"])

        let status = try await moat(["vault", "status"], home)
        results.append(status)
        #expect(status.stdout.contains("sealed without a PIN"))
        #expect(status.stdout.contains("a copy of the state directory"))
        let check = try await moat(["vault", "unseal-check"], home)
        results.append(check)
        #expect(check.status == 0)
        #expect(check.stdout.contains("the seal opens the vault on this machine (3 secrets)"))

        let duplicate = try await moat(["vault", "add", "GITHUB_TOKEN"], home, stdin: "other value\n")
        results.append(duplicate)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderr.contains("exists already; add --replace"))

        let removed = try await moat(["vault", "rm", "GITHUB_TOKEN"], home)
        results.append(removed)
        #expect(removed.status == 0)
        let again = try await moat(["vault", "rm", "GITHUB_TOKEN"], home)
        results.append(again)
        #expect(again.status == 1)
        #expect(again.stderr.contains("there is no secret named GITHUB_TOKEN"))
        expectNoSecrets(results)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: home + "/vault.moat"))
        #expect(bytes.range(of: Data(Self.token.utf8)) == nil)
    }

    @Test("bad input is refused with a clear message and exit 64, and changes nothing; no password from argv")
    func badInput() async throws {
        let temp = TemporaryDirectory()
        let home = temp.path
        let short = try await moat(["vault", "init", "--password-stdin"], home, stdin: "too short\n")
        #expect(short.status == 64)
        #expect(short.stderr.contains("at least 12 characters"))
        #expect(!FileManager.default.fileExists(atPath: home + "/vault.moat"))

        let argv = try await moat(["vault", "init", "--password", Self.password], home)
        #expect(argv.status == 64)
        let noVault = try await moat(["vault", "add", "TOKEN"], home, stdin: "value\n")
        #expect(noVault.status == 1)
        #expect(noVault.stderr.contains("there is no vault at"))

        await #expect(try moat(["vault", "init", "--password-stdin"], home, stdin: Self.password).status == 0)
        let badName = try await moat(["vault", "add", "lower_case"], home, stdin: "value\n")
        #expect(badName.status == 64)
        #expect(badName.stderr.contains("is not a valid secret name"))
        let badHost = try await moat(["vault", "add", "TOKEN", "--allow-host", "not a host"], home, stdin: "value\n")
        #expect(badHost.status == 64)
        #expect(badHost.stderr.contains("is not a valid host"))
        let both = try await moat(["vault", "add", "TOKEN", "--password-stdin"], home, stdin: "value\n")
        #expect(both.status == 64)
        let wrong = try await moat(["vault", "list", "--password-stdin"], home, stdin: "a wrong password\n")
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("the password is wrong"))
        let list = try await moat(["vault", "list"], home)
        // Nothing was added: only the audit log's own keys are there.
        let listed = list.stdout.split(separator: "\n").dropFirst().map {
            $0.split(separator: " ").first.map(String.init) ?? ""
        }
        #expect(listed.allSatisfy { $0.hasPrefix("MOAT_AUDIT_") }, "\(list.stdout)")
    }

    @Test("seal --pin, unseal-check with a wrong and a right PIN, rekey to a new password")
    func sealAndRekey() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let passwordFile = try temp.write("password", Self.password + "\n")
        let newFile = try temp.write("new", "an entirely new password\n")
        let pinFile = try temp.write("pin", "97531864209753\n")
        let wrongPIN = try temp.write("wrong-pin", "13579246801357\n")
        let valueFile = try temp.write("value", Self.token)
        var results: [MoatBinary.Result] = []

        await results.append(try moat(["vault", "init", "--password-file", passwordFile, "--no-seal"], home))
        #expect(results.last?.status == 0)
        await #expect(try moat(["vault", "status"], home).stdout.contains("seal   none"))
        await results.append(
            try moat(["vault", "add", "TOKEN", "--password-file", passwordFile, "--from-file", valueFile], home))
        #expect(results.last?.status == 0)

        await results.append(try moat(["vault", "seal", "--password-file", passwordFile, "--pin-file", pinFile], home))
        #expect(results.last?.status == 0)
        #expect(results.last?.stdout.contains("sealed to this machine with a PIN") == true)
        let wrong = try await moat(["vault", "unseal-check", "--pin-file", wrongPIN], home)
        results.append(wrong)
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("the PIN is wrong"))
        let noPIN = try await moat(["vault", "unseal-check"], home)
        #expect(noPIN.status == 64)
        await #expect(try moat(["vault", "unseal-check", "--pin-file", pinFile], home).status == 0)

        await results.append(
            try moat(
                [
                    "vault", "rekey", "--password-file", passwordFile, "--new-password-file", newFile, "--pin-file",
                    pinFile,
                ],
                home
            )
        )
        #expect(results.last?.status == 0, "\(results.last?.stderr ?? "")")
        #expect(results.last?.stdout.contains("sealed again") == true)
        await #expect(try moat(["vault", "list", "--password-file", passwordFile], home).status == 1)
        let list = try await moat(["vault", "list", "--password-file", newFile], home)
        #expect(list.stdout.contains("TOKEN"))
        await #expect(try moat(["vault", "unseal-check", "--pin-file", pinFile], home).status == 0)
        expectNoSecrets(results + [list], [Self.token, Self.password, "an entirely new password", "97531864209753"])
    }

    @Test(
        "a vault change in its own process opens moat.db once (rollback check and audit record share it) and closes it",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")))
    func databaseOpenedOnce() async throws {
        let temp = TemporaryDirectory()
        let (home, passwordFile) = try await unsealedVault(temp)
        let valueFile = try temp.write("value", Self.token)
        let trace = temp.file("trace")
        let (status, output) = try await HostCommand.run(
            "/usr/bin/strace",
            [
                "-f", "-e", "trace=openat,close", "-o", trace, MoatBinary.path, "vault", "add", "TRACED",
                "--password-file", passwordFile, "--from-file", valueFile,
            ],
            environment: MoatBinary.environment(home: home, extra: [:]))
        #expect(status == 0, "\(output)")
        let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map(String.init)
        // SQLite opens the file read-write once per database connection pool's writer.
        let opens = lines.indices.filter { lines[$0].contains("\"\(home)/moat.db\", O_RDWR") }
        #expect(opens.count == 1, "\(opens.map { lines[$0] })")
        let descriptor = try #require(opens.first.flatMap { lines[$0].split(separator: "=").last })
            .trimmingCharacters(in: .whitespaces)
        let closed = lines[(opens.first ?? 0)...].contains { $0.contains("close(\(descriptor))") }
        #expect(closed, "moat.db's descriptor \(descriptor) was never closed")
    }

    /// A home with a vault made by `vault init --no-seal`, and the file holding its password.
    func unsealedVault(_ temp: TemporaryDirectory) async throws -> (home: String, passwordFile: String) {
        let home = temp.file("home")
        let passwordFile = try temp.write("password", Self.password + "\n")
        let created = try await moat(["vault", "init", "--password-file", passwordFile, "--no-seal"], home)
        #expect(created.status == 0, "\(created.stderr)")
        return (home, passwordFile)
    }

    @Test("seal --pin refuses a PIN under 14 characters with the rule, and seals nothing")
    func shortPINRefused() async throws {
        let temp = TemporaryDirectory()
        let (home, passwordFile) = try await unsealedVault(temp)
        let shortPIN = try temp.write("pin", "2468\n")
        let refused = try await moat(["vault", "seal", "--password-file", passwordFile, "--pin-file", shortPIN], home)
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("the PIN is too short: use at least 14 characters"))
        #expect(!FileManager.default.fileExists(atPath: home + "/vault.seal"))
        expectNoSecrets([refused], [Self.password, "2468"])
    }

    @Test("the seal says what binds it and holds no password; bound to the host key where systemd-creds works")
    func sealBinding() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let sealed = try await moat(["vault", "init", "--password-stdin"], home, stdin: Self.password + "\n")
        #expect(sealed.status == 0, "\(sealed.stderr)")
        #expect(sealed.stdout.contains("what a copy of the state directory allows: "))
        let seal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: home + "/vault.seal")))
        #expect(seal[8] == 2)
        #expect(!String(decoding: seal, as: UTF8.self).contains(Self.password))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-creds") && seal[10] != 2 {
            Issue.record("systemd-creds is installed but the seal is not bound to the host key: \(sealed.stdout)")
        }
        if seal[10] == 2 {
            #expect(sealed.stdout.contains("with this machine's systemd credential host key"))
            #expect(sealed.stdout.contains("does not open the vault"))
        }
        expectNoSecrets([sealed])
    }

    @Test("a vault header raised to m=4 GiB, t=64 is refused before any key is derived, by status and by list")
    func expensiveHeaderRefused() async throws {
        let temp = TemporaryDirectory()
        let (home, passwordFile) = try await unsealedVault(temp)
        let path = home + "/vault.moat"
        var file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        file.replaceSubrange(11..<19, with: [0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40])
        try Data(file).write(to: URL(fileURLWithPath: path))
        // status reads the header only: on a Moat without the bound it passes, and nothing is derived.
        let status = try await moat(["vault", "status"], home)
        try #require(status.status == 65, "\(status.stdout)")
        #expect(status.stderr.contains("at most m=256 MiB, t=4, p=8"))
        let list = try await moat(["vault", "list", "--password-file", passwordFile], home, timeout: 20)
        #expect(list.status == 65)
        #expect(list.stderr.contains("ask for key derivation Moat does not allow"))
    }

    @Test(
        "serve on an empty home creates and seals a vault and writes recovery-key.txt; restarts unseal without a prompt; CLI changes reach the server"
    )
    func serveCreatesAndUnseals() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let first = try await RunningServer.start(arguments: [], home: home)
        #expect(first.log.contains("\"source\":\"created\""), "\(first.log)")
        let keyFile = home + "/recovery-key.txt"
        #expect(FileModes(keyFile).mode == 0o600)
        #expect(FileModes(home + "/vault.seal").mode == 0o600)
        let keyText = try String(contentsOfFile: keyFile, encoding: .utf8)
        let key = try #require(keyText.split(separator: "\n").last.map(String.init))
        #expect(key.count == 64)
        #expect(first.log.contains("recovery-key.txt"))
        let (status, log) = await first.stop()
        #expect(status == 0)
        #expect(!log.contains(key))

        let second = try await RunningServer.start(arguments: [], home: home)
        #expect(second.log.contains("\"message\":\"vault unlocked\""))
        #expect(second.log.contains("\"source\":\"seal\""))
        let added = try await moat(["vault", "add", "FROM_CLI"], home, stdin: Self.token + "\n")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.hasPrefix("added FROM_CLI"))
        let (_, secondLog) = await second.stop()
        // With the server running, the CLI's change goes through its admin socket: the server changes the
        // vault it holds open (so it has the secret at once, without reloading the file).
        #expect(secondLog.contains("\"op\":\"vault.add\""), "\(secondLog)")
        #expect(!secondLog.contains(Self.token))
        #expect(!secondLog.contains(key))

        // The recovery key is the master password.
        let passwordFile = try temp.write("recovery", key + "\n")
        let opened = try await moat(["vault", "list", "--password-file", passwordFile], home)
        #expect(opened.stdout.contains("FROM_CLI"), "\(opened.stderr)")

        let doctor = try await moat(["doctor"], home)
        #expect(doctor.stdout.contains("warn  vault"))
        #expect(doctor.stdout.contains("sealed without a PIN"))
        #expect(doctor.stdout.contains("recovery-key.txt still holds"))
    }

    @Test("serve refuses (78) a vault that is not sealed when there is no terminal, and a PIN seal without --pin-file")
    func serveRefusesLocked() async throws {
        let temp = TemporaryDirectory()
        let (home, passwordFile) = try await unsealedVault(temp)
        let pinFile = try temp.write("pin", "24681357902468\n")
        let unsealed = try await moat(["serve", "--port", "0"], home)
        #expect(unsealed.status == 78)
        #expect(unsealed.stderr.contains("is not sealed and there is no terminal"))
        #expect(unsealed.stderr.contains("moat vault seal"))

        await #expect(
            try moat(["vault", "seal", "--password-file", passwordFile, "--pin-file", pinFile], home).status == 0)
        let noPIN = try await moat(["serve", "--port", "0"], home)
        #expect(noPIN.status == 78)
        #expect(noPIN.stderr.contains("--pin-file"))
        let server = try await RunningServer.start(arguments: ["--pin-file", pinFile], home: home)
        #expect(server.log.contains("\"source\":\"seal\""))
        await #expect(server.stop().status == 0)
        await #expect(try moat(["doctor"], home).stdout.contains("sealed with a PIN"))
    }

    @Test("on a terminal, serve shows the recovery key once and writes no file")
    func serveShowsKeyOnTerminal() async throws {
        let temp = TemporaryDirectory()
        let home = temp.file("home")
        let output = Pipe()
        let process = try ChildProcess(
            "/usr/bin/script", ["-qec", "timeout -s TERM 6 '\(MoatBinary.path)' serve --port 0", "/dev/null"],
            environment: MoatBinary.environment(home: home), standardOutput: .pipe(output),
            standardError: .pipe(output))
        // About six seconds (the `timeout`), waited for on a thread of its own.
        let data = await offCooperativePool {
            let data = output.fileHandleForReading.readAll()
            process.waitUntilExit()
            return data
        }
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("Recovery key, shown only this once"), "\(text)")
        #expect(text.range(of: #"([a-z2-7]{4}-){12}[a-z2-7]{4}"#, options: .regularExpression) != nil)
        #expect(!FileManager.default.fileExists(atPath: home + "/recovery-key.txt"))
        #expect(FileManager.default.fileExists(atPath: home + "/vault.seal"))
    }

    @Test("doctor fails on a damaged vault.moat and serve refuses it with exit 65")
    func damagedVault() async throws {
        let temp = TemporaryDirectory()
        try temp.write("vault.moat", "this is not a vault file at all")
        let doctor = try await moat(["doctor"], temp.path)
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("fail  vault"))
        let serve = try await moat(["serve", "--port", "0"], temp.path)
        #expect(serve.status == 65)
        #expect(serve.stderr.contains("is not a Moat vault"))
    }
}

@Suite struct VaultHelpTests {
    @Test("moat vault --help lists every subcommand with a one-line summary")
    func help() async throws {
        let result = try await MoatBinary.run(["vault", "--help"], home: nil)
        #expect(result.status == 0)
        for (name, summary) in [
            ("init", "Create the vault"), ("status", "Show the vault file"), ("add", "Add a secret"),
            ("list", "List the secrets"), ("rm", "Remove a secret"), ("rekey", "Re-encrypt the vault"),
            ("seal", "Seal the vault"), ("unseal-check", "Tell whether the seal opens"),
        ] {
            #expect(result.stdout.contains(name), "\(name)")
            #expect(result.stdout.contains(summary), "\(summary)")
        }
        #expect(try await MoatBinary.run(["--help"], home: nil).stdout.contains("vault"))
    }
}
