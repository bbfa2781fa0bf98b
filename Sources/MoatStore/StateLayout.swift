#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where Moat keeps its configuration and state.
///
/// Resolution order: `--home DIR`, then `MOAT_HOME`, both holding config and state in one directory;
/// otherwise the XDG base directories (`$XDG_CONFIG_HOME/moat`, `$XDG_STATE_HOME/moat`, falling back to
/// `~/.config/moat` and `~/.local/state/moat`).
public struct StateLayout: Sendable, Equatable {
    /// The directory that holds `config.yaml`.
    public let configDirectory: String
    /// The directory that holds `moat.db`, the vault and the admin socket.
    public let stateDirectory: String

    public init(configDirectory: String, stateDirectory: String) {
        self.configDirectory = configDirectory
        self.stateDirectory = stateDirectory
    }

    /// Resolves the layout from an explicit home, the environment, or XDG.
    ///
    /// - Parameters:
    ///   - home: the `--home` flag, if given; it wins over `MOAT_HOME`.
    ///   - environment: the process environment (injected so tests can choose).
    public static func resolve(home: String?, environment: [String: String]) throws(StoreError) -> StateLayout {
        if let home = home ?? environment["MOAT_HOME"], !home.isEmpty {
            let path = absolute(home)
            return StateLayout(configDirectory: path, stateDirectory: path)
        }
        func base(_ variable: String, fallback: String) throws(StoreError) -> String {
            // XDG: a relative value is invalid and must be ignored.
            if let value = environment[variable], value.hasPrefix("/") {
                return value
            }
            guard let userHome = environment["HOME"].flatMap({ $0.hasPrefix("/") ? $0 : nil }) ?? passwdHome()
            else {
                throw StoreError(
                    .homeUnknown,
                    "cannot find a home directory for the XDG paths: set MOAT_HOME or pass --home DIR"
                )
            }
            return userHome + "/" + fallback
        }
        return StateLayout(
            configDirectory: try base("XDG_CONFIG_HOME", fallback: ".config") + "/moat",
            stateDirectory: try base("XDG_STATE_HOME", fallback: ".local/state") + "/moat"
        )
    }

    /// `config.yaml` in the config directory.
    public var configFile: String { configDirectory + "/config.yaml" }
    /// The SQLite database.
    public var databaseFile: String { stateDirectory + "/moat.db" }
    /// The admin socket the CLI talks to a running `moat serve` through.
    public var adminSocket: String { stateDirectory + "/moat.sock" }
    /// Where `moat serve` writes the one-time setup link when there is no terminal.
    public var setupLinkFile: String { stateDirectory + "/setup-link.txt" }
    /// The default workspace of the built-in tools (files, shell): a 0700 directory the model's tools
    /// may read and write, and the only part of the state directory they reach (Docs/Tools.md).
    public var workspaceDirectory: String { stateDirectory + "/workspace" }

    /// Files in the state directory that hold secrets or power: they must be private to the owner.
    public var secretBearingFiles: [String] {
        [
            "moat.db", "moat.db-wal", "moat.db-shm", "vault.moat", "vault.seal", "recovery-key.txt", "moat.sock",
            "setup-link.txt",
        ]
        .map { stateDirectory + "/" + $0 }
    }

    /// Creates the config and state directories (and missing parents) with mode 0700.
    ///
    /// Existing directories are left as they are: a too-open one is reported by
    /// ``permissionProblems()``, never silently "fixed", because the owner should know it happened.
    public func createDirectories() throws(StoreError) {
        try FileModes.makeDirectory(configDirectory)
        if stateDirectory != configDirectory {
            try FileModes.makeDirectory(stateDirectory)
        }
    }

    /// Every reason the state on disk is not private to this user, each with the command that fixes it.
    ///
    /// Checked like OpenSSH checks `~/.ssh`: the state directory and every secret-bearing file must be
    /// owned by this user (or root) and have no group or other permission bits; the config file and its
    /// directory must not be writable by group or others (someone could otherwise change the bind).
    public func permissionProblems() -> [PermissionProblem] {
        var problems: [PermissionProblem] = []
        problems += FileModes.check(stateDirectory, kind: .directory, forbidden: 0o077)
        if configDirectory != stateDirectory {
            problems += FileModes.check(configDirectory, kind: .directory, forbidden: 0o022)
        }
        problems += FileModes.check(configFile, kind: .file, forbidden: 0o022)
        for file in secretBearingFiles where !file.hasSuffix(".sock") {
            problems += FileModes.check(file, kind: .file, forbidden: 0o077)
        }
        problems += FileModes.check(adminSocket, kind: .socket, forbidden: 0o077)
        return problems
    }

    private static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd == "/" ? "/" + path : cwd + "/" + path
    }

    private static func passwdHome() -> String? {
        guard let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir else { return nil }
        let home = String(cString: dir)
        return home.hasPrefix("/") ? home : nil
    }
}

/// One thing about a path's ownership or mode that makes it unsafe, and how to fix it.
public struct PermissionProblem: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    /// What is wrong, e.g. "is group- or world-accessible (mode 0755)".
    public let problem: String
    /// The shell command that fixes it.
    public let fix: String
    /// The mode that fixes it, when the fix is a `chmod` (`moat doctor --fix` applies it); nil when it
    /// takes the owner's judgement (another owner, a link or another kind of file in its place).
    public var repairMode: UInt32? = nil

    public var description: String { "\(path) \(problem); fix: \(fix)" }

    /// The problems as indented lines, each followed by its fix, for a refusal message.
    public static func report(_ problems: [PermissionProblem]) -> String {
        problems.map { "  \($0.path) \($0.problem)\n    fix: \($0.fix)" }.joined(separator: "\n")
    }
}
