import Foundation
import MoatTestSupport
import Testing

/// Every owner command has one path: the typed admin operations, run by `moat serve` through the admin
/// socket when it runs and by the command itself when it does not, with the same output.
@Suite(.serialized) struct AdminChannelTests {
    static let password = "correct horse battery staple"
    static let secretValue = "ghp_AdminSocketValue0123456789abcdef"

    /// A home with a vault, a seal and a database, made by one real `moat serve` run.
    static func servedHome() async throws -> TemporaryDirectory {
        let temp = TemporaryDirectory()
        let server = try await RunningServer.start(arguments: [], home: temp.path)
        await #expect(server.stop().status == 0)
        return temp
    }

    /// Starts `moat serve` on `home` and waits for its admin socket.
    static func serve(_ home: String) async throws -> RunningServer {
        let server = try await RunningServer.start(arguments: [], home: home)
        await waitForFile(home + "/moat.sock", within: 30)
        #expect(FileManager.default.fileExists(atPath: home + "/moat.sock"))
        return server
    }

    @Test("a command prints the same bytes and exits the same whether it ran through the socket or in-process")
    func sameOutputBothWays() async throws {
        let temp = try await Self.servedHome()
        let home = temp.path
        // Some state to show: an owner, a token, a trust change, a short secret.
        let setup = try await MoatBinary.run(
            ["owner", "setup", "--owner-password-stdin"], home: home, stdin: Self.password)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try await MoatBinary.run(["token", "create", "ci", "--expires", "30d"], home: home).status == 0)
        #expect(
            try await MoatBinary.run(["trust", "set", "web", "2", "--reason", "both ways"], home: home).status == 0)
        #expect(try await MoatBinary.run(["vault", "add", "SHORT"], home: home, stdin: "ab\n").status == 0)
        let commands: [([String], String?)] = [
            (["owner", "status"], nil), (["token", "list"], nil), (["token", "list", "--json"], nil),
            (["trust", "show"], nil), (["trust", "history"], nil), (["trust", "history", "files"], nil),
            (["approvals", "list"], nil), (["approvals", "list", "--all", "--json"], nil),
            (["approvals", "show", "nope"], nil), (["token", "revoke", "nothere1"], nil),
            (["trust", "set", "web", "4", "--reason", "no evidence"], nil),
            (["vault", "add", "SHORT", "--replace"], "ab\n"), (["vault", "rm", "MISSING"], nil),
        ]
        // Listings of the vault, compared on the same contents: through the server, then without it.
        let listings = [["vault", "list"], ["vault", "list", "--json"]]
        let offline = try await offCooperativePool {
            try commands.map { try MoatBinary.run($0.0, home: home, stdin: $0.1) }
        }
        let server = try await Self.serve(home)
        let online = try await offCooperativePool {
            try commands.map { try MoatBinary.run($0.0, home: home, stdin: $0.1) }
        }
        let listedOnline = try await offCooperativePool { try listings.map { try MoatBinary.run($0, home: home) } }
        let (status, log) = await server.stop()
        #expect(status == 0)
        let listedOffline = try await offCooperativePool { try listings.map { try MoatBinary.run($0, home: home) } }
        for (command, (before, after)) in zip(listings, zip(listedOffline, listedOnline)) {
            #expect(after.status == 0 && before.status == 0, "\(command)")
            #expect(after.stdout == before.stdout && after.stdout.contains("SHORT"), "\(command)")
            #expect(after.stderr == before.stderr, "\(command)")
        }
        for ((command, _), (before, after)) in zip(commands, zip(offline, online)) {
            #expect(after.status == before.status, "\(command)")
            #expect(after.stdout == before.stdout, "\(command)")
            #expect(after.stderr == before.stderr, "\(command)")
        }
        #expect(offline[1].stdout.contains("ci") && offline[9].status != 0 && offline[12].status == 1)
        // The server did the work: its log names each operation that reached it (and nothing of a value).
        for op in [
            "owner.status", "token.list", "trust.show", "approvals.show", "vault.add", "vault.rm", "vault.list",
        ] {
            #expect(log.contains("\"op\":\"\(op)\""), "\(op) did not go through the admin socket")
        }
    }

    @Test("a vault change through the socket while moat serve runs is audited, visible to vault list, never echoed")
    func vaultThroughSocket() async throws {
        let temp = try await Self.servedHome()
        let home = temp.path
        let server = try await Self.serve(home)
        let added = try await MoatBinary.run(
            ["vault", "add", "GITHUB_TOKEN", "--allow-tool", "http", "--allow-host", "api.github.com"], home: home,
            stdin: Self.secretValue + "\n")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout == "added GITHUB_TOKEN (tools: http; hosts: api.github.com)\n")
        let list = try await MoatBinary.run(["vault", "list"], home: home)
        #expect(list.status == 0 && list.stdout.contains("GITHUB_TOKEN") && list.stdout.contains("api.github.com"))
        let bad = try await MoatBinary.run(["vault", "add", "lower-case"], home: home, stdin: Self.secretValue + "\n")
        #expect(bad.status == 64, "\(bad.stderr)")
        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("\"op\":\"vault.add\""))
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "20"], home: home)
        #expect(audit.stdout.contains("vault.add") && audit.stdout.contains("GITHUB_TOKEN"))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home).status == 0)
        // The server's change is the vault's: the next command (no server) sees it and can remove it.
        let removed = try await MoatBinary.run(["vault", "rm", "GITHUB_TOKEN"], home: home)
        #expect(removed.status == 0 && removed.stdout == "removed GITHUB_TOKEN\n")
        for result in [added, list, bad, audit, removed] {
            #expect(!result.stdout.contains(Self.secretValue) && !result.stderr.contains(Self.secretValue))
        }
        #expect(!log.contains(Self.secretValue))
    }

    @Test(
        "while moat serve runs, vault rekey goes through the socket (the server holds the new key); init and accept-rollback are refused"
    )
    func rekeyThroughSocket() async throws {
        let temp = try await ServedHome.copy()
        let home = temp.path
        // The served home's vault was made by `moat serve`: its master password is the recovery key.
        let recovery = try String(contentsOfFile: home + "/recovery-key.txt", encoding: .utf8)
        let oldPassword = try temp.write("old", String(try #require(recovery.split(separator: "\n").last)) + "\n")
        let newPassword = try temp.write("new", "a brand new master password\n")
        let wrongPassword = try temp.write("wrong", "not the master password at all\n")
        let server = try await Self.serve(home)
        let before = try Data(contentsOf: URL(fileURLWithPath: home + "/vault.moat"))

        // A wrong current password: refused by the server, nothing written.
        let wrong = try await MoatBinary.run(
            ["vault", "rekey", "--password-file", wrongPassword, "--new-password-file", newPassword], home: home)
        #expect(wrong.status != 0 && wrong.stderr.contains("that is not the master password"), "\(wrong.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: home + "/vault.moat")) == before)

        // Sealed, so no current password is needed: the server checks that this caller opens the seal.
        let rekey = try await MoatBinary.run(["vault", "rekey", "--new-password-file", newPassword], home: home)
        #expect(rekey.status == 0, "\(rekey.stderr)")
        #expect(
            rekey.stdout.hasPrefix("re-keyed \(home)/vault.moat with a new password and salt (")
                && rekey.stdout.hasSuffix(")\nsealed again: \(home)/vault.seal\n"), "\(rekey.stdout)")
        #expect(rekey.stderr.contains("recovery-key.txt holds the old recovery key"))
        // The server goes on with the vault it re-keyed: a change through it after the re-key works.
        let added = try await MoatBinary.run(
            ["vault", "add", "AFTER_REKEY"], home: home, stdin: Self.secretValue + "\n")
        #expect(added.status == 0, "\(added.stderr)")
        let list = try await MoatBinary.run(["vault", "list"], home: home)
        #expect(list.status == 0 && list.stdout.contains("AFTER_REKEY"))

        // Commands that would write vault.moat behind the server's back are refused, and change nothing.
        let accept = try await MoatBinary.run(["vault", "accept-rollback", "--password-file", newPassword], home: home)
        #expect(accept.status == 1)
        #expect(
            accept.stderr.contains("stop moat serve first: accept-rollback rewrites vault.moat"), "\(accept.stderr)")
        let exists = try await MoatBinary.run(
            ["vault", "init", "--password-file", newPassword, "--no-seal"], home: home)
        #expect(exists.status != 0 && exists.stderr.contains("a vault already exists"))
        try FileManager.default.moveItem(atPath: home + "/vault.moat", toPath: temp.file("aside.moat"))
        let initWhileServing = try await MoatBinary.run(
            ["vault", "init", "--password-file", newPassword, "--no-seal"], home: home)
        #expect(initWhileServing.status != 0)
        #expect(initWhileServing.stderr.contains("stop moat serve first"), "\(initWhileServing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: home + "/vault.moat"))
        try FileManager.default.moveItem(atPath: temp.file("aside.moat"), toPath: home + "/vault.moat")

        let (status, log) = await server.stop()
        #expect(status == 0)
        #expect(log.contains("\"op\":\"vault.rekey\"") && log.contains("\"op\":\"vault.list\""))
        // On disk: the new password opens the vault, the old one no longer does, the seal still does.
        #expect(try await MoatBinary.run(["vault", "list", "--password-file", oldPassword], home: home).status == 1)
        let reopened = try await MoatBinary.run(["vault", "list", "--password-file", newPassword], home: home)
        #expect(reopened.status == 0 && reopened.stdout.contains("AFTER_REKEY"), "\(reopened.stderr)")
        #expect(try await MoatBinary.run(["vault", "unseal-check"], home: home).status == 0)
        let audit = try await MoatBinary.run(["audit", "tail", "-n", "20"], home: home)
        #expect(audit.stdout.contains("vault.rekey"))
        #expect(try await MoatBinary.run(["audit", "verify"], home: home).status == 0)
        for result in [wrong, rekey, added, list, accept, exists, initWhileServing, reopened, audit] {
            for secret in [Self.secretValue, "a brand new master password", "not the master password at all"] {
                #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret))
            }
        }
        #expect(!log.contains(Self.secretValue) && !log.contains("a brand new master password"))
    }
}
