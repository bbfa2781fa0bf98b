import Foundation
import GRDB
import MoatCore
import MoatTestSupport
import Testing

/// The audit log cannot be silenced and the vault cannot be rolled back unnoticed, through the real
/// binary as an attacker with write access to the state directory would try.
@Suite(.serialized, .tags(.slow)) struct VaultRollbackTests {
    static let password = "correct horse battery staple"
    static let token = "ghp_ThisIsTheTokenValue0123456789abcdef"

    func moat(_ arguments: [String], _ home: String, stdin: String? = nil) async throws -> MoatBinary.Result {
        try await MoatBinary.run(arguments, home: home, stdin: stdin, timeout: 120)
    }

    /// A home with a sealed vault holding KEEP.
    func sealedHome() async throws -> TemporaryDirectory {
        let temp = TemporaryDirectory()
        let initialized = try await moat(["vault", "init", "--password-stdin"], temp.path, stdin: Self.password + "\n")
        #expect(initialized.status == 0, "\(initialized.stderr)")
        await #expect(try moat(["vault", "add", "KEEP"], temp.path, stdin: "kept value\n").status == 0)
        return temp
    }

    func names(_ home: String) async throws -> [String] {
        let list = try await moat(["vault", "list", "--json"], home)
        #expect(list.status == 0, "\(list.stderr)")
        let items = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
        return items.compactMap { $0["name"] as? String }.filter { !$0.hasPrefix("MOAT_") }
    }

    @Test("a trigger that drops vault entries from the log makes vault add fail closed; doctor names it")
    func triggerSilencingTheLog() async throws {
        let home = try await sealedHome()
        let queue = try DatabaseQueue(path: home.file("moat.db"))
        try await queue.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER hide_vault BEFORE INSERT ON audit_entries
                      WHEN NEW.action IN ('vault.add', 'vault.rm', 'vault.replace') BEGIN SELECT RAISE(IGNORE); END
                    """
            )
        }
        try queue.close()
        let added = try await moat(["vault", "add", "GITHUB_TOKEN"], home.path, stdin: Self.token + "\n")
        #expect(added.status != 0)
        #expect(added.stderr.contains("holds schema objects Moat did not create: trigger hide_vault on audit_entries"))
        #expect(added.stderr.contains("Restore moat.db from a backup"))
        #expect(!added.stderr.contains(Self.token))
        let doctor = try await moat(["doctor"], home.path)
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("fail  database"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("trigger hide_vault"))

        // Once the trigger is gone, the vault shows no trace of the refused secret.
        let cleanup = try DatabaseQueue(path: home.file("moat.db"))
        try await cleanup.write { db in try db.execute(sql: "DROP TRIGGER hide_vault") }
        try cleanup.close()
        await #expect(try names(home.path) == ["KEEP"])
    }

    @Test("a removed secret revived by copying back vault.moat is refused by every unlock, with the way out")
    func copiedBackVault() async throws {
        let home = try await sealedHome()
        let old = try Data(contentsOf: URL(fileURLWithPath: home.file("vault.moat")))
        await #expect(try moat(["vault", "rm", "KEEP"], home.path).status == 0)
        try old.write(to: URL(fileURLWithPath: home.file("vault.moat")))

        let list = try await moat(["vault", "list"], home.path)
        #expect(list.status == 1)
        #expect(list.stderr.contains("is older than the audit log records"), "\(list.stderr)")
        #expect(list.stderr.contains("moat vault accept-rollback"))
        #expect(!list.stdout.contains("KEEP"))
        let add = try await moat(["vault", "add", "OTHER"], home.path, stdin: "other value\n")
        #expect(add.status == 1)
        #expect(add.stderr.contains("older than the audit log records"))
        await #expect(try moat(["audit", "checkpoint"], home.path).status != 0)
        let serve = try await moat(["serve", "--port", "0"], home.path)
        #expect(serve.status != 0)
        #expect(serve.stderr.contains("older than the audit log records"), "\(serve.stderr)")

        // The owner restored it on purpose: accepting is recorded and the old contents are kept.
        let accepted = try await moat(["vault", "accept-rollback"], home.path)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        await #expect(try names(home.path) == ["KEEP"])
        let tail = try await moat(["audit", "tail", "-n", "3"], home.path)
        #expect(tail.stdout.contains("vault.rollback.accept"))
        await #expect(try moat(["audit", "verify"], home.path).status == 0)
    }

    @Test("vault.moat and vault.seal put back from before a re-key (the old password) are refused")
    func oldPasswordAfterRekey() async throws {
        let home = try await sealedHome()
        let vault = try Data(contentsOf: URL(fileURLWithPath: home.file("vault.moat")))
        let seal = try Data(contentsOf: URL(fileURLWithPath: home.file("vault.seal")))
        let newPassword = try home.write("new-password", "an entirely new password\n")
        let rekeyed = try await moat(["vault", "rekey", "--new-password-file", newPassword], home.path)
        #expect(rekeyed.status == 0, "\(rekeyed.stderr)")
        try vault.write(to: URL(fileURLWithPath: home.file("vault.moat")))
        try seal.write(to: URL(fileURLWithPath: home.file("vault.seal")))
        let oldPassword = try home.write("old-password", Self.password + "\n")
        for arguments in [["vault", "list"], ["vault", "list", "--password-file", oldPassword]] {
            let result = try await moat(arguments, home.path)
            #expect(result.status == 1)
            #expect(result.stderr.contains("is older than the audit log records"), "\(result.stderr)")
        }
        let serve = try await moat(["serve", "--port", "0"], home.path)
        #expect(serve.status != 0)
        #expect(serve.stderr.contains("older than the audit log records"))
    }

    @Test(
        "the server's own vault writes (its keys) are recorded as vault.write, so a vault from before them is refused")
    func serverWritesRecorded() async throws {
        let home = try await sealedHome()
        let beforeServe = try Data(contentsOf: URL(fileURLWithPath: home.file("vault.moat")))
        let server = try await RunningServer.start(arguments: [], home: home.path)
        // The server adds its owner-authentication keys to the vault at start; the watcher records the
        // new revision within its two-second interval.
        let deadline = Date().addingTimeInterval(30)
        var tail = ""
        while !tail.contains("vault.write") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(500))
            tail = try await moat(["audit", "tail", "-n", "50"], home.path).stdout
        }
        await #expect(server.stop().status == 0)
        #expect(tail.contains("vault.write"), "\(tail)")
        #expect(tail.contains("vault_generation"))
        try beforeServe.write(to: URL(fileURLWithPath: home.file("vault.moat")))
        let list = try await moat(["vault", "list"], home.path)
        #expect(list.status == 1)
        #expect(list.stderr.contains("is older than the audit log records"), "\(list.stderr)")
    }

    @Test("vault init with a read-only moat.db fails closed: no vault.moat, and the error says why")
    func initWithReadOnlyDatabase() async throws {
        let temp = TemporaryDirectory()
        // A database from an earlier installation, then made unwritable.
        await #expect(
            try moat(["vault", "init", "--password-stdin", "--no-seal"], temp.path, stdin: Self.password + "\n").status
                == 0)
        try FileManager.default.removeItem(atPath: temp.file("vault.moat"))
        let unwritable = try Unwritable(temp.file("moat.db"))
        defer { unwritable.restore() }
        let result = try await moat(["vault", "init", "--password-stdin"], temp.path, stdin: Self.password + "\n")
        #expect(result.status != 0)
        #expect(
            result.stderr.contains("the audit log could not record vault.init, so nothing was changed"),
            "\(result.stderr)")
        #expect(!result.stdout.contains("created"))
        #expect(!FileManager.default.fileExists(atPath: temp.file("vault.moat")))
        #expect(!FileManager.default.fileExists(atPath: temp.file("vault.seal")))
    }
}

/// Makes a file unwritable even for root: mode 0400 for other users, the immutable attribute for root.
struct Unwritable {
    let path: String
    let immutable: Bool

    init(_ path: String) throws {
        self.path = path
        if getuid() == 0 {
            immutable = true
            try #require(Self.chattr("+i", path) == 0, "cannot set the immutable attribute (CAP_LINUX_IMMUTABLE)")
        } else {
            immutable = false
            chmod(path, 0o400)
        }
    }

    func restore() {
        if immutable { _ = Self.chattr("-i", path) } else { chmod(path, 0o600) }
    }

    /// Waits for `chattr` (a few milliseconds) on the caller's thread: `restore()` runs in a `defer`.
    static func chattr(_ flag: String, _ path: String) -> Int32 {
        guard let process = try? ChildProcess("/usr/bin/chattr", [flag, path]) else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
