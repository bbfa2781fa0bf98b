import Foundation
import MoatStore
import MoatTestSupport
import Testing

@Suite struct StateLayoutTests {
    @Test("--home wins over MOAT_HOME, which wins over XDG")
    func resolutionOrder() throws {
        let env = ["MOAT_HOME": "/srv/moat-env", "XDG_CONFIG_HOME": "/x/config", "XDG_STATE_HOME": "/x/state"]
        #expect(try StateLayout.resolve(home: "/srv/flag", environment: env).stateDirectory == "/srv/flag")
        let fromEnv = try StateLayout.resolve(home: nil, environment: env)
        #expect(fromEnv.configDirectory == "/srv/moat-env")
        #expect(fromEnv.stateDirectory == "/srv/moat-env")
        #expect(fromEnv.databaseFile == "/srv/moat-env/moat.db")
    }

    @Test("without MOAT_HOME, config and state follow XDG, falling back to ~/.config and ~/.local/state")
    func xdg() throws {
        let explicit = try StateLayout.resolve(
            home: nil,
            environment: ["XDG_CONFIG_HOME": "/x/config", "XDG_STATE_HOME": "/x/state", "HOME": "/home/a"]
        )
        #expect(explicit.configFile == "/x/config/moat/config.yaml")
        #expect(explicit.stateDirectory == "/x/state/moat")
        // A relative XDG value is invalid by the spec and is ignored.
        let fallback = try StateLayout.resolve(home: nil, environment: ["XDG_STATE_HOME": "rel", "HOME": "/home/a"])
        #expect(fallback.configDirectory == "/home/a/.config/moat")
        #expect(fallback.stateDirectory == "/home/a/.local/state/moat")
    }

    @Test("directories are created 0700 even under a permissive umask")
    func createsPrivateDirectories() throws {
        let temp = TemporaryDirectory()
        let old = umask(0)
        defer { umask(old) }
        let layout = StateLayout(configDirectory: temp.file("c/moat"), stateDirectory: temp.file("s/deep/moat"))
        try layout.createDirectories()
        #expect(FileModes.mode(of: layout.configDirectory) == 0o700)
        #expect(FileModes.mode(of: layout.stateDirectory) == 0o700)
        #expect(FileModes.mode(of: temp.file("s/deep")) == 0o700)
        #expect(layout.permissionProblems().isEmpty)
    }

    @Test("a group-readable state directory is refused with the chmod that fixes it")
    func groupReadableDirectory() throws {
        let temp = TemporaryDirectory()
        let layout = StateLayout(configDirectory: temp.path, stateDirectory: temp.path)
        TemporaryDirectory.chmod(temp.path, 0o750)
        let problems = layout.permissionProblems()
        #expect(problems.count == 1)
        #expect(problems.first?.fix == "chmod 0700 \(temp.path)")
        #expect(problems.first?.problem.contains("0750") == true)
    }

    @Test("a world-readable moat.db is refused; the fix keeps only the owner bits")
    func worldReadableDatabase() throws {
        let temp = TemporaryDirectory()
        let layout = StateLayout(configDirectory: temp.path, stateDirectory: temp.path)
        try temp.write("moat.db", "", mode: 0o644)
        let problems = layout.permissionProblems()
        #expect(problems.map(\.path) == [layout.databaseFile])
        #expect(problems.first?.fix == "chmod 0600 \(layout.databaseFile)")
    }

    @Test("every secret-bearing file is checked, and a symlink in their place is refused")
    func secretFilesAndSymlinks() throws {
        let temp = TemporaryDirectory()
        let layout = StateLayout(configDirectory: temp.path, stateDirectory: temp.path)
        try temp.write("vault.moat", "x", mode: 0o640)
        try temp.write("target", "x", mode: 0o600)
        symlink(temp.file("target"), temp.file("vault.seal"))
        let problems = layout.permissionProblems()
        #expect(problems.contains { $0.path.hasSuffix("vault.moat") && $0.fix.hasPrefix("chmod 0600") })
        #expect(problems.contains { $0.path.hasSuffix("vault.seal") && $0.problem.contains("symbolic link") })
    }

    @Test("a group-writable config file is refused, a group-readable one is fine")
    func configFileMode() throws {
        let temp = TemporaryDirectory()
        let layout = StateLayout(configDirectory: temp.path, stateDirectory: temp.path)
        try temp.write("config.yaml", "gateway: {}\n", mode: 0o640)
        #expect(layout.permissionProblems().isEmpty)
        TemporaryDirectory.chmod(layout.configFile, 0o660)
        #expect(layout.permissionProblems().map(\.fix) == ["chmod 0640 \(layout.configFile)"])
    }

    @Test("a config path's checks: its directory too, a sticky directory passes, a FIFO in its place is refused")
    func configFileProblems() throws {
        let temp = TemporaryDirectory()
        let private0600 = UInt32(S_IFREG) | 0o600
        #expect(FileModes.configFileProblems(temp.file("moat.yaml"), owner: getuid(), mode: private0600).isEmpty)
        let worldWritable = FileModes.configFileProblems(
            temp.file("moat.yaml"), owner: getuid(), mode: UInt32(S_IFREG) | 0o646)
        #expect(worldWritable.map(\.fix) == ["chmod 0644 \(temp.file("moat.yaml"))"])
        let shared = temp.file("shared")
        mkdir(shared, 0o777)
        TemporaryDirectory.chmod(shared, 0o777)
        #expect(
            FileModes.configFileProblems(shared + "/moat.yaml", owner: getuid(), mode: private0600).map(\.fix)
                == ["chmod 0755 \(shared)"])
        TemporaryDirectory.chmod(shared, 0o1777)
        #expect(FileModes.configFileProblems(shared + "/moat.yaml", owner: getuid(), mode: private0600).isEmpty)

        let layout = StateLayout(configDirectory: temp.path, stateDirectory: temp.path)
        #expect(mkfifo(layout.configFile, 0o600) == 0)
        #expect(layout.permissionProblems().map(\.problem) == ["is not a regular file"])
    }

    @Test("a path with spaces is quoted in the fix command")
    func quotedFix() throws {
        let temp = TemporaryDirectory()
        let dir = temp.file("my state")
        mkdir(dir, 0o755)
        let problems = StateLayout(configDirectory: dir, stateDirectory: dir).permissionProblems()
        #expect(problems.first?.fix == "chmod 0700 '\(dir)'")
    }
}
