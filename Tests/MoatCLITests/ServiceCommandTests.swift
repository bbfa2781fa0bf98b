import Foundation
import MoatTestSupport
import Testing

/// `moat service install|uninstall|status` through the real binary, with the unit directory in a
/// temporary XDG_CONFIG_HOME (a user unit) so the machine's own systemd directories are never touched.
@Suite(.serialized, .tags(.slow)) struct ServiceCommandTests {
    /// A served home (sealed vault, no PIN) and a private XDG_CONFIG_HOME for the unit.
    struct Setup {
        let home: TemporaryDirectory
        let xdg: TemporaryDirectory
        var unitPath: String { xdg.path + "/systemd/user/moat.service" }

        init() async throws {
            home = try await ServedHome.copy()
            xdg = TemporaryDirectory("moat-xdg")
        }

        func moat(_ arguments: [String], extra: [String: String] = [:]) async throws -> MoatBinary.Result {
            try await MoatBinary.run(
                arguments, home: home.path, extraEnvironment: ["XDG_CONFIG_HOME": xdg.path].merging(extra) { $1 })
        }
    }

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    @Test("install --dry-run prints the hardened notify unit for this binary and home, and writes nothing")
    func dryRun() async throws {
        let setup = try await Setup()
        let result = try await setup.moat(["service", "install", "--user", "--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        for line in [
            "Type=notify", "WatchdogSec=30s", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only",
            "ReadWritePaths=\(setup.home.path)", "PrivateTmp=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "RestrictNamespaces=user mnt pid net ipc uts cgroup", "LockPersonality=yes", "MemoryMax=1G",
            "ExecStart=\(MoatBinary.path) serve --log-format json",
        ] {
            #expect(result.stdout.split(separator: "\n").contains(Substring(line)), "missing \(line)")
        }
        #expect(!FileManager.default.fileExists(atPath: setup.unitPath))
    }

    @Test("install writes the unit 0644 and says the next command; a second install changes nothing")
    func installAndRepeat() async throws {
        let setup = try await Setup()
        let first = try await setup.moat(["service", "install"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(Self.mode(setup.unitPath) == 0o644)
        #expect(first.stdout.contains("wrote \(setup.unitPath) (mode 0644)"))
        #expect(first.stdout.contains("next: systemctl --user daemon-reload && systemctl --user enable --now moat"))
        let written = try String(contentsOfFile: setup.unitPath, encoding: .utf8)
        let dry = try await setup.moat(["service", "install", "--dry-run"])
        #expect(dry.stdout.contains(written), "the dry run prints the very text install writes")
        let again = try await setup.moat(["service", "install"])
        #expect(again.status == 0)
        #expect(again.stdout.contains("already up to date; nothing changed"))
        #expect(try String(contentsOfFile: setup.unitPath, encoding: .utf8) == written)
    }

    @Test("a unit changed by hand is not overwritten without --force (exit 1, file kept); --force replaces it")
    func changedUnitNeedsForce() async throws {
        let setup = try await Setup()
        await #expect(try setup.moat(["service", "install"]).status == 0)
        let edited = try String(contentsOfFile: setup.unitPath, encoding: .utf8)
            .replacingOccurrences(of: "MemoryMax=1G", with: "MemoryMax=2G")
        try Data(edited.utf8).write(to: URL(fileURLWithPath: setup.unitPath))
        let refused = try await setup.moat(["service", "install"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("exists and differs") && refused.stderr.contains("--force"))
        #expect(try String(contentsOfFile: setup.unitPath, encoding: .utf8) == edited)
        let forced = try await setup.moat(["service", "install", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("replaced \(setup.unitPath)"))
        #expect(try String(contentsOfFile: setup.unitPath, encoding: .utf8).contains("MemoryMax=1G"))
    }

    @Test("an unsealed vault is refused (exit 78) with the command that seals it, and no unit is written")
    func unsealedVaultRefused() async throws {
        let setup = try await Setup()
        try FileManager.default.removeItem(atPath: setup.home.file("vault.seal"))
        let result = try await setup.moat(["service", "install"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("the vault is not sealed") && result.stderr.contains("moat vault seal"))
        #expect(!FileManager.default.fileExists(atPath: setup.unitPath))
    }

    @Test("a seal with a PIN cannot start a user unit unattended: refused (exit 78) with the two ways out")
    func pinSealRefusedForUserUnit() async throws {
        let setup = try await Setup()
        let pin = try setup.home.write("pin.txt", "a long enough seal pin\n")
        // The master password moat serve generated: the last line of recovery-key.txt.
        let key = try String(contentsOfFile: setup.home.file("recovery-key.txt"), encoding: .utf8)
        let password = try setup.home.write("password.txt", String(key.split(separator: "\n").last ?? "") + "\n")
        let sealed = try await setup.moat(["vault", "seal", "--pin", "--password-file", password, "--pin-file", pin])
        try #require(sealed.status == 0, "\(sealed.stderr)")
        let result = try await setup.moat(["service", "install", "--user", "--pin-file", pin])
        #expect(result.status == 78)
        #expect(result.stderr.contains("the seal has a PIN") && result.stderr.contains("--system"))
        #expect(!FileManager.default.fileExists(atPath: setup.unitPath))
        // Not echoed anywhere.
        #expect(!(result.stdout + result.stderr).contains("a long enough seal pin"))
    }

    @Test("uninstall refuses while moat serve runs on the home, then removes the unit; status follows each step")
    func uninstallAndStatus() async throws {
        let setup = try await Setup()
        await #expect(try setup.moat(["service", "status"]).stdout.contains("unit: not installed"))
        await #expect(try setup.moat(["service", "install"]).status == 0)
        let status = try await setup.moat(["service", "status"])
        #expect(status.stdout.contains("unit: \(setup.unitPath) (written by moat service install)"))
        #expect(status.stdout.contains("mode: 0644"))
        let server = try await RunningServer.start(arguments: [], home: setup.home.path)
        let refused = try await setup.moat(["service", "uninstall"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("systemctl --user disable --now moat"))
        #expect(FileManager.default.fileExists(atPath: setup.unitPath))
        _ = await server.stop()
        let removed = try await setup.moat(["service", "uninstall"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stdout.contains("next: systemctl --user daemon-reload"))
        #expect(!FileManager.default.fileExists(atPath: setup.unitPath))
    }

    @Test("the written unit passes systemd-analyze verify, and the offline security score is what Operations.md states")
    func systemdAnalyze() async throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else {
            // Recorded as a known issue, not silently passed: the check needs the tool.
            withKnownIssue("systemd-analyze is not installed here: the unit was not verified") {
                Issue.record("systemd-analyze missing")
            }
            return
        }
        let setup = try await Setup()
        await #expect(try setup.moat(["service", "install"]).status == 0)
        let verify = try await HostCommand.run(analyze, ["verify", "--man=no", setup.unitPath])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(
            !verify.output.contains("Unknown key") && !verify.output.contains("Failed to parse"), "\(verify.output)")
        let security = try await HostCommand.run(analyze, ["security", "--offline=yes", "--no-pager", setup.unitPath])
        let score = security.output.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let text = try #require(score.map(String.init), "\(security.output)")
        let number = try #require(text.split(separator: " ").first { Double($0) != nil })
        let operations = try String(contentsOfFile: Self.repositoryRoot + "/Docs/Operations.md", encoding: .utf8)
        #expect(operations.contains("exposure level \(number)"), "Docs/Operations.md must state \(text)")
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}
