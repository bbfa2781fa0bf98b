import Foundation
import MoatTestSupport
import Testing

/// Every owner command has one path: the typed admin operations, run by `moat serve` through the admin
/// socket when it runs and by the command itself when it does not, with the same output.
@Suite(.serialized) struct AdminChannelTests {
    static let password = "correct horse battery staple"
    static let secretValue = "ghp_AdminSocketValue0123456789abcdef"

    /// A home with a vault, a seal and a database, made by one real `moat serve` run.
    static func servedHome() throws -> TemporaryDirectory {
        let temp = TemporaryDirectory()
        let server = try RunningServer(arguments: [], home: temp.path)
        #expect(server.stop().status == 0)
        return temp
    }

    /// Starts `moat serve` on `home` and waits for its admin socket.
    static func serve(_ home: String) throws -> RunningServer {
        let server = try RunningServer(arguments: [], home: home)
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: home + "/moat.sock") && Date() < deadline { usleep(20_000) }
        #expect(FileManager.default.fileExists(atPath: home + "/moat.sock"))
        return server
    }

    @Test("a command prints the same bytes and exits the same whether it ran through the socket or in-process")
    func sameOutputBothWays() throws {
        let temp = try Self.servedHome()
        let home = temp.path
        // Some state to show: an owner, a token, a trust change, a short secret.
        let setup = try MoatBinary.run(["owner", "setup", "--owner-password-stdin"], home: home, stdin: Self.password)
        #expect(setup.status == 0, "\(setup.stderr)")
        #expect(try MoatBinary.run(["token", "create", "ci", "--expires", "30d"], home: home).status == 0)
        #expect(try MoatBinary.run(["trust", "set", "web", "2", "--reason", "both ways"], home: home).status == 0)
        #expect(try MoatBinary.run(["vault", "add", "SHORT"], home: home, stdin: "ab\n").status == 0)
        let commands: [([String], String?)] = [
            (["owner", "status"], nil), (["token", "list"], nil), (["token", "list", "--json"], nil),
            (["trust", "show"], nil), (["trust", "history"], nil), (["trust", "history", "files"], nil),
            (["approvals", "list"], nil), (["approvals", "list", "--all", "--json"], nil),
            (["approvals", "show", "nope"], nil), (["token", "revoke", "nothere1"], nil),
            (["trust", "set", "web", "4", "--reason", "no evidence"], nil),
            (["vault", "add", "SHORT", "--replace"], "ab\n"), (["vault", "rm", "MISSING"], nil),
        ]
        let offline = try commands.map { try MoatBinary.run($0.0, home: home, stdin: $0.1) }
        let server = try Self.serve(home)
        let online = try commands.map { try MoatBinary.run($0.0, home: home, stdin: $0.1) }
        let (status, log) = server.stop()
        #expect(status == 0)
        for ((command, _), (before, after)) in zip(commands, zip(offline, online)) {
            #expect(after.status == before.status, "\(command)")
            #expect(after.stdout == before.stdout, "\(command)")
            #expect(after.stderr == before.stderr, "\(command)")
        }
        #expect(offline[1].stdout.contains("ci") && offline[9].status != 0 && offline[12].status == 1)
        // The server did the work: its log names each operation that reached it (and nothing of a value).
        for op in ["owner.status", "token.list", "trust.show", "approvals.show", "vault.add", "vault.rm"] {
            #expect(log.contains("\"op\":\"\(op)\""), "\(op) did not go through the admin socket")
        }
    }

    @Test("a vault change through the socket while moat serve runs is audited, visible to vault list, never echoed")
    func vaultThroughSocket() throws {
        let temp = try Self.servedHome()
        let home = temp.path
        let server = try Self.serve(home)
        let added = try MoatBinary.run(
            ["vault", "add", "GITHUB_TOKEN", "--allow-tool", "http", "--allow-host", "api.github.com"], home: home,
            stdin: Self.secretValue + "\n")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout == "added GITHUB_TOKEN (tools: http; hosts: api.github.com)\n")
        let list = try MoatBinary.run(["vault", "list"], home: home)
        #expect(list.status == 0 && list.stdout.contains("GITHUB_TOKEN") && list.stdout.contains("api.github.com"))
        let bad = try MoatBinary.run(["vault", "add", "lower-case"], home: home, stdin: Self.secretValue + "\n")
        #expect(bad.status == 64, "\(bad.stderr)")
        let (status, log) = server.stop()
        #expect(status == 0)
        #expect(log.contains("\"op\":\"vault.add\""))
        let audit = try MoatBinary.run(["audit", "tail", "-n", "20"], home: home)
        #expect(audit.stdout.contains("vault.add") && audit.stdout.contains("GITHUB_TOKEN"))
        #expect(try MoatBinary.run(["audit", "verify"], home: home).status == 0)
        // The server's change is the vault's: the next command (no server) sees it and can remove it.
        let removed = try MoatBinary.run(["vault", "rm", "GITHUB_TOKEN"], home: home)
        #expect(removed.status == 0 && removed.stdout == "removed GITHUB_TOKEN\n")
        for result in [added, list, bad, audit, removed] {
            #expect(!result.stdout.contains(Self.secretValue) && !result.stderr.contains(Self.secretValue))
        }
        #expect(!log.contains(Self.secretValue))
    }
}
