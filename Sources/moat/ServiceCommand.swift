import ArgumentParser
import Foundation
import MoatAdmin
import MoatApp
import MoatCore
import MoatStore
import MoatVault

/// `moat service install|uninstall|status`: `moat serve` as a systemd unit.
struct ServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Install, remove or inspect the systemd unit that runs moat serve.",
        subcommands: [Install.self, Uninstall.self, Status.self]
    )
}

/// What install, uninstall and status share: which unit, for which installation.
struct ServiceOptions: ParsableArguments {
    @OptionGroup var state: StateOptions

    @Flag(help: "A unit of the user's own service manager (systemctl --user; the default).")
    var user = false

    @Flag(help: "A unit of the system's service manager (/etc/systemd/system; needs root).")
    var system = false

    func validate() throws {
        if user && system { throw ValidationError("give --user or --system, not both") }
    }

    var scope: ServiceUnit.Scope { system ? .system : .user }

    /// The unit file's path for this scope.
    func unitPath() throws(CommandFailure) -> String {
        let environment = ProcessInfo.processInfo.environment
        guard let home = environment["HOME"].flatMap({ $0.hasPrefix("/") ? $0 : nil }) ?? passwdHome() else {
            throw CommandFailure("cannot tell the home directory (HOME is unset): set HOME", exitCode: ExitStatus.usage)
        }
        return ServiceUnit.directory(scope, environment: environment, home: home) + "/" + ServiceUnit.name
    }

    private func passwdHome() -> String? {
        guard let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }
}

/// The absolute path of the running `moat` (symlinks resolved), which the unit starts.
func runningExecutable() throws(CommandFailure) -> String {
    guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"), path.hasPrefix("/")
    else {
        throw CommandFailure("cannot tell where this moat binary is (/proc/self/exe)")
    }
    return path
}

extension ServiceCommand {
    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the systemd unit for moat serve (hardened, Type=notify, watchdog).",
            discussion: """
                The vault must be sealed (or not exist yet): a service has no terminal to ask for the master \
                password. A changed unit file is not overwritten without --force. Prints the unit path and the \
                command that starts it.
                """
        )

        @OptionGroup var options: ServiceOptions

        @Flag(help: "Print the unit and what would be done, change nothing.")
        var dryRun = false

        @Flag(help: "Replace a unit file that differs from what install writes.")
        var force = false

        @Option(help: ArgumentHelp("The user a --system unit runs as (default: SUDO_USER).", valueName: "name"))
        var runAs: String?

        @Option(
            help: ArgumentHelp(
                "For a seal with a PIN (--system): read the PIN from this file to encrypt it with systemd-creds.",
                valueName: "file"))
        var pinFile: String?

        func run() throws {
            let layout = try CommandContext.layout(options.state)
            let path = try options.unitPath()
            let user = try systemUser()
            let credential = try pinCredential(layout)
            let unit = ServiceUnit(
                scope: options.scope,
                executable: try runningExecutable(),
                home: options.state.home.map(absolute),
                config: options.state.config.map(absolute),
                stateDirectory: layout.stateDirectory,
                user: user,
                pinCredential: credential.map { ServiceUnit.PINCredential(path: $0) },
                runsAsRoot: options.scope == .user && getuid() == 0
            )
            for value in [unit.executable, layout.stateDirectory] where value.contains(where: \.isWhitespace) {
                throw CommandFailure(
                    "\(value) contains white space, which a unit's path directives cannot hold: "
                        + "move it (or use --home DIR) to a path without spaces",
                    exitCode: ExitStatus.usage)
            }
            let existing = try? String(contentsOfFile: path, encoding: .utf8)
            if dryRun {
                print("would write \(path) (mode 0644):\n")
                print(unit.text)
                if let credential { print("would encrypt the seal's PIN into \(credential) with systemd-creds") }
                if existing != nil && existing != unit.text && !force {
                    print("(\(path) exists and differs: install would refuse without --force)")
                }
                return
            }
            if existing == unit.text {
                print("\(path) is already up to date; nothing changed")
                printNext(unit, changed: false)
                return
            }
            if existing != nil && !force {
                throw CommandFailure(
                    "\(path) exists and differs from the unit install writes (edited, or written by another "
                        + "release): compare with `moat service install --dry-run`, then run it again with --force "
                        + "to replace it",
                    exitCode: ExitStatus.failure)
            }
            if let credential, let pinFile {
                try encryptPIN(from: pinFile, to: credential, paths: VaultPaths(stateDirectory: layout.stateDirectory))
                print("encrypted the seal's PIN for this machine into \(credential) (systemd-creds, host key)")
            }
            // The state directory must exist: ReadWritePaths= of a missing path fails the start.
            try CommandFailure.wrap { () throws(StoreError) in try layout.createDirectories() }
            try writePublic(unit.text, to: path)
            print((existing == nil ? "wrote " : "replaced ") + "\(path) (mode 0644)")
            printNext(unit, changed: true)
        }

        private func printNext(_ unit: ServiceUnit, changed: Bool) {
            print("next: \(unit.systemctl) daemon-reload && \(unit.systemctl) enable --now moat")
            if unit.scope == .user {
                print(
                    "to start it at boot before you log in: loginctl enable-linger \(NSUserName())")
            }
        }

        /// The `User=` of a system unit: never root (the unit drops every capability; the sandbox maps a
        /// root caller to another user, which takes one).
        private func systemUser() throws(CommandFailure) -> String? {
            guard options.scope == .system else {
                if runAs != nil { throw CommandFailure("--run-as is for --system units", exitCode: ExitStatus.usage) }
                return nil
            }
            let name = runAs ?? ProcessInfo.processInfo.environment["SUDO_USER"] ?? NSUserName()
            guard let entry = getpwnam(name) else {
                throw CommandFailure("there is no user \(name): pass --run-as USER", exitCode: ExitStatus.usage)
            }
            guard entry.pointee.pw_uid != 0 else {
                throw CommandFailure(
                    "a system unit would run Moat as root: pass --run-as USER (the user whose state Moat keeps)",
                    exitCode: ExitStatus.usage)
            }
            return name
        }

        /// The path of the encrypted PIN credential when the seal has a PIN; refuses a vault that cannot
        /// start unattended.
        private func pinCredential(_ layout: StateLayout) throws(CommandFailure) -> String? {
            let paths = VaultPaths(stateDirectory: layout.stateDirectory)
            let status = try CommandFailure.wrap { () throws(VaultError) in try VaultStatus.inspect(paths) }
            guard let status else { return nil }  // moat serve creates and seals the vault on first start
            guard let seal = status.seal else {
                throw CommandFailure(
                    "the vault is not sealed: as a service, moat serve has no terminal to ask for the master "
                        + "password and would exit at once. Seal it first: moat vault seal",
                    exitCode: ExitStatus.configuration)
            }
            guard seal.hasPIN else {
                if pinFile != nil {
                    throw CommandFailure("the seal has no PIN: drop --pin-file", exitCode: ExitStatus.usage)
                }
                return nil
            }
            guard options.scope == .system else {
                throw CommandFailure(
                    "the seal has a PIN, and a user unit cannot be given it unattended (the user's service "
                        + "manager cannot decrypt a systemd credential here): seal without a PIN "
                        + "(moat vault seal), or install a --system unit with --pin-file FILE",
                    exitCode: ExitStatus.configuration)
            }
            guard SystemdCredentials.installed() != nil else {
                throw CommandFailure(
                    "the seal has a PIN and systemd-creds is not installed, so the unit cannot get the PIN "
                        + "without a prompt: seal without a PIN (moat vault seal)",
                    exitCode: ExitStatus.configuration)
            }
            guard pinFile != nil else {
                throw CommandFailure(
                    "the seal has a PIN: pass --pin-file FILE so install can encrypt it for the unit "
                        + "(LoadCredentialEncrypted=)",
                    exitCode: ExitStatus.usage)
            }
            return layout.stateDirectory + "/seal-pin.cred"
        }

        /// Checks that the PIN in `file` opens the seal, then writes it encrypted with the host key
        /// (0600); a wrong PIN is refused before anything is written.
        private func encryptPIN(from file: String, to credential: String, paths: VaultPaths) throws {
            guard let tool = SystemdCredentials.installed() else {
                throw CommandFailure("systemd-creds is not installed", exitCode: ExitStatus.configuration)
            }
            let pin = try SecretInput.pin(from: .file(file), confirm: false)
            _ = try UnlockedVault.unseal(paths: paths, pin: pin)
            let encrypted = try tool.encryptCredential(pin, name: ServiceUnit.PINCredential.name)
            let temporary = credential + ".moat-new"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(encrypted)),
                chmod(temporary, 0o600) == 0, rename(temporary, credential) == 0
            else {
                throw CommandFailure("cannot write \(credential): \(String(cString: strerror(errno)))")
            }
        }
    }

    struct Uninstall: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the systemd unit install wrote (stop the service first).")

        @OptionGroup var options: ServiceOptions

        @Flag(help: "Remove the unit file even when it differs from what install writes.")
        var force = false

        func run() throws {
            let layout = try CommandContext.layout(options.state)
            let path = try options.unitPath()
            let systemctl = options.scope == .user ? "systemctl --user" : "systemctl"
            guard let existing = try? String(contentsOfFile: path, encoding: .utf8) else {
                print("\(path) does not exist; nothing changed")
                return
            }
            if AdminClient.isServerListening(at: layout.adminSocket) {
                throw CommandFailure(
                    "moat serve is running on \(layout.stateDirectory): stop and disable it first "
                        + "(\(systemctl) disable --now moat), then run uninstall again")
            }
            if !existing.hasPrefix("# Written by `moat service install`") && !force {
                throw CommandFailure(
                    "\(path) was not written by moat service install: remove it yourself, or pass --force")
            }
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw CommandFailure("cannot remove \(path): \(error.localizedDescription)")
            }
            let credential = layout.stateDirectory + "/seal-pin.cred"
            if FileManager.default.fileExists(atPath: credential) {
                try? FileManager.default.removeItem(atPath: credential)
                print("removed \(credential)")
            }
            print("removed \(path)")
            print("next: \(systemctl) daemon-reload")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say whether the unit is installed and current, and what the service manager reports.")

        @OptionGroup var options: ServiceOptions

        func run() throws {
            let path = try options.unitPath()
            let systemctl = options.scope == .user ? ["--user"] : []
            guard let existing = try? String(contentsOfFile: path, encoding: .utf8) else {
                print("unit: not installed (\(path)); moat service install writes it")
                return
            }
            let written = existing.hasPrefix("# Written by `moat service install`")
            print("unit: \(path) (\(written ? "written by moat service install" : "not written by moat"))")
            if let mode = FileModes.mode(of: path) { print("mode: " + String(format: "%04o", mode)) }
            let layout = try CommandContext.layout(options.state)
            print(
                "server: "
                    + (AdminClient.isServerListening(at: layout.adminSocket)
                        ? "answering on \(layout.adminSocket)" : "not running on \(layout.stateDirectory)"))
            if let state = systemctlAnswer(systemctl + ["is-active", "moat"]) {
                print("systemd: \(state)")
            } else {
                print("systemd: no service manager answers (systemctl \(systemctl.joined()) is-active moat failed)")
            }
        }
    }
}

/// The file's absolute path, for a unit that does not run in the caller's directory.
func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// Writes `text` to `path` with mode 0644 (a unit file is public: it holds no secret), through a
/// temporary file renamed into place; creates the directory (0755) when missing.
func writePublic(_ text: String, to path: String) throws(CommandFailure) {
    let directory = (path as NSString).deletingLastPathComponent
    do {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let temporary = path + ".moat-new"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard chmod(temporary, 0o644) == 0, rename(temporary, path) == 0 else {
            throw CommandFailure("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    } catch let failure as CommandFailure {
        throw failure
    } catch {
        throw CommandFailure("cannot write \(path): \(error.localizedDescription)")
    }
}

/// What `systemctl ARGS` prints (its first line), or nil when no service manager answers within 10 s.
func systemctlAnswer(_ arguments: [String]) -> String? {
    let candidates = ["/usr/bin/systemctl", "/bin/systemctl"]
    guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        return nil
    }
    let output = Pipe()
    guard let process = try? ChildProcess(tool, arguments, standardOutput: .pipe(output)) else { return nil }
    let deadline = Date().addingTimeInterval(10)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let line = text.split(separator: "\n").first.map(String.init) ?? ""
    // is-active prints a state (active, inactive, failed, …) even when it exits non-zero.
    return line.isEmpty ? nil : line
}
