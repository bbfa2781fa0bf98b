import Foundation
import MoatSandbox
import MoatTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Bind sources through the real `moat sandbox run`: a source path is never followed through a symlink, and
/// no bind reaches the kernel's interfaces or Moat's own state, whatever path names them.
@Suite struct BindSourceTests {
    /// A directory below `temp` that the sandbox's host identity may read and write.
    private static func sandboxDirectory(_ temp: TemporaryDirectory, _ name: String) -> String {
        let path = temp.file(name)
        mkdir(path, 0o755)
        Launcher.makeWritableBySandbox(path)
        return path
    }

    /// `moat sandbox run ARGUMENTS -- COMMAND` with Moat's state in `home`.
    private static func run(_ arguments: [String], _ command: [String], home: String) async throws -> MoatBinary.Result
    {
        try await MoatBinary.run(["sandbox", "run"] + arguments + ["--"] + command, home: home, timeout: 30)
    }

    @Test("symlinks planted by an earlier run are never followed as bind sources")
    func plantedSymlinks() async throws {
        let temp = TemporaryDirectory("moat-bind-symlink")
        TemporaryDirectory.chmod(temp.path, 0o755)
        let home = temp.file("home")
        let workspace = Self.sandboxDirectory(temp, "ws")
        let victim = Self.sandboxDirectory(temp, "victim")
        let plant = try await Self.run(
            ["--rw", workspace],
            ["sh", "-c", "ln -s \(victim) \(workspace)/sub && ln -s /proc \(workspace)/p && ln -s / \(workspace)/r"],
            home: home
        )
        #expect(plant.status == 0, "\(plant.stderr)")

        let write = try await Self.run(
            ["--rw", workspace + "/sub"], ["sh", "-c", "echo pwned > \(workspace)/sub/x"], home: home)
        #expect(write.status == 125, "\(write.stderr)")
        #expect(write.stderr.contains("symlink"), "\(write.stderr)")
        #expect(!FileManager.default.fileExists(atPath: victim + "/x"))

        for link in ["p", "r"] {
            let read = try await Self.run(
                ["--ro", "\(workspace)/\(link)"], ["ls", "\(workspace)/\(link)"], home: home)
            #expect(read.status == 125, "\(link): \(read.stdout)\(read.stderr)")
            #expect(read.stderr.contains("symlink"), "\(link): \(read.stderr)")
            #expect(read.stdout.isEmpty)
        }
    }

    @Test("no bind may be, contain or lie inside Moat's state directory, and none may contain /proc, /sys or /dev")
    func protectedObjects() async throws {
        let temp = TemporaryDirectory("moat-bind-state")
        TemporaryDirectory.chmod(temp.path, 0o755)
        let home = Self.sandboxDirectory(temp, "home")
        try Data("secret".utf8).write(to: URL(fileURLWithPath: home + "/vault.moat"))
        let inner = home + "/inner"
        mkdir(inner, 0o755)
        Launcher.makeWritableBySandbox(inner)
        let other = Self.sandboxDirectory(temp, "other")

        let refused: [(flags: [String], reason: String)] = [
            (["--ro", home], "inside"),
            (["--rw", inner], "inside"),
            (["--ro", temp.path], "contains"),
        ]
        for (flags, reason) in refused {
            let result = try await Self.run(flags, ["ls", "-R", flags[1]], home: home)
            #expect(result.status == 125, "\(flags): \(result.stdout)\(result.stderr)")
            #expect(
                result.stderr.contains(reason) && result.stderr.contains("Moat's state"), "\(flags): \(result.stderr)")
            #expect(!result.stdout.contains("vault.moat"))
        }
        let allowed = try await Self.run(["--ro", other], ["ls", other], home: home)
        #expect(allowed.status == 0, "\(allowed.stderr)")

        // The host's root, elsewhere inside: it contains /proc, /sys and /dev (and the recursive clone would
        // carry them along).
        let root = SandboxSpec(["ls", "/host/proc"], readOnlyBinds: [BindMount("/", at: "/host")])
        let error = await #expect(throws: SandboxError.self) { try await Launcher.sandbox().run(root) }
        #expect(error?.message.contains("contains /proc, /sys, /dev") == true, "\(String(describing: error))")
    }
    /// Runs `script` as root in a private mount namespace of its own (its mounts never reach the host),
    /// with `$MOAT` naming the real `moat` binary; returns what it printed.
    private static func inPrivateMountNamespace(_ script: String) async throws -> String {
        try await HostCommand.run(
            "/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script],
            environment: MoatBinary.environment(home: nil, extra: ["MOAT": MoatBinary.path])
        ).output
    }

    @Test(
        "a bind cannot reach Moat's state through another mount: not an alias made by a bind mount, not one below it",
        .enabled(if: geteuid() == 0, "needs root to make a private mount namespace")
    )
    func stateAliasesMadeByMounts() async throws {
        let temp = TemporaryDirectory("moat-bind-alias")
        let root = temp.path
        // C: the state directory is reached through a bind mount of a directory elsewhere (as fstab's
        // `/srv/homes /home none bind`), so the real directory has other ancestors than the state's path.
        // E: an alias of the state directory is mounted below an unrelated directory.
        // H: a part of the state directory is mounted elsewhere.
        // G: an unrelated mount below the source.
        let script = """
            set -e
            R=\(root)
            mkdir -p $R/C/data/state/part $R/D/mnt $R/E/sub/alias $R/G/sub $R/H/x
            echo SECRET-STATE > $R/C/data/state/secret
            echo SECRET-STATE > $R/C/data/state/part/secret
            chmod -R a+rX $R
            mount --bind $R/C/data $R/D/mnt
            export MOAT_HOME=$R/D/mnt/state
            mount --bind $MOAT_HOME $R/E/sub/alias
            mount --bind $MOAT_HOME/part $R/H/x
            mount -t tmpfs tmpfs $R/G/sub
            set +e
            for source in $R/C $R/C/data $R/E $R/E/sub $R/E/sub/alias $R/H/x; do
                "$MOAT" sandbox run --ro $source -- cat $R/C/data/state/secret $R/E/sub/alias/secret $R/H/x/secret
                echo "case $source rc=$?"
            done
            "$MOAT" sandbox run --ro $R/G -- ls $R/G/sub
            echo "case G rc=$?"
            """
        let output = try await Self.inPrivateMountNamespace(script)
        #expect(!output.contains("SECRET-STATE"), "\(output)")
        for source in ["C", "C/data", "E", "E/sub", "E/sub/alias", "H/x"] {
            #expect(output.contains("case \(root)/\(source) rc=125"), "\(source): \(output)")
        }
        #expect(output.contains("contains /proc, /sys, /dev or Moat's state"), "\(output)")
        #expect(output.contains("the source has other mounts below it"), "\(output)")
        #expect(output.contains("case G rc=125"), "\(output)")
    }

    @Test("a host-made hard link to a state file cannot be bound by its outside name")
    func hardLinkToStateFile() async throws {
        let temp = TemporaryDirectory("moat-bind-link")
        TemporaryDirectory.chmod(temp.path, 0o755)
        let home = Self.sandboxDirectory(temp, "home")
        let outside = Self.sandboxDirectory(temp, "outside")
        try Data("SECRET-STATE".utf8).write(to: URL(fileURLWithPath: home + "/vault.moat"))
        TemporaryDirectory.chmod(home + "/vault.moat", 0o644)
        #expect(link(home + "/vault.moat", outside + "/copy") == 0)
        let result = try await Self.run(["--ro", outside + "/copy"], ["cat", outside + "/copy"], home: home)
        #expect(result.status == 125, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("inside") && result.stderr.contains("Moat's state"), "\(result.stderr)")
        #expect(!result.stdout.contains("SECRET-STATE"))
    }
}
