import ArgumentParser
import Foundation
import MoatApp
import MoatCore
import MoatStore
import MoatVault

/// `moat vault`: the encrypted secrets and the seal that lets `moat serve` start unattended.
struct VaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "Manage the encrypted secrets vault: create, add, list, remove, seal, re-key.",
        discussion: """
            Passwords, PINs and values are read from the terminal without echo, from a file or from \
            standard input, never from arguments or environment variables. When the vault is sealed, \
            commands unlock it from the seal without asking (the PIN, when the seal has one, from the \
            terminal or --pin-file). Format and threat model: Docs/Vault.md.
            """,
        subcommands: [
            Init.self, Status.self, Add.self, List.self, Remove.self, Rekey.self, Seal.self, UnsealCheck.self,
            AcceptRollback.self,
        ]
    )
}

/// How a vault command gets the master password or the seal PIN.
struct VaultUnlockOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Read the master password from this file (one trailing newline is ignored).", valueName: "file"))
    var passwordFile: String?

    @Flag(help: "Read the master password from standard input.")
    var passwordStdin = false

    @Option(help: ArgumentHelp("Read the seal PIN from this file, when the seal has one.", valueName: "file"))
    var pinFile: String?

    func validate() throws {
        if passwordFile != nil && passwordStdin {
            throw ValidationError("give the master password once: --password-file or --password-stdin, not both")
        }
    }

    /// Where the master password was said to come from; nil when no option names one.
    var passwordSource: SecretSource? {
        if let passwordFile { return .file(passwordFile) }
        return passwordStdin ? .standardInput : nil
    }

    /// Where the seal PIN comes from.
    var pinSource: SecretSource { pinFile.map { .file($0) } ?? .terminal }
}

/// The state directory of a vault command, checked as `moat serve` checks it (through ``Installation``),
/// and its `moat.db`, opened at most once per command and closed with the context.
final class VaultContext {
    let layout: StateLayout
    var paths: VaultPaths { VaultPaths(stateDirectory: layout.stateDirectory) }
    private var opened: MoatDatabase?
    /// What this context opened itself, closed with it.
    private var state: InstallationState?

    /// With `database`, a command that has the installation open already lends it (never closed here).
    init(layout: StateLayout, database: MoatDatabase? = nil) {
        self.layout = layout
        opened = database
    }

    deinit {
        try? state?.close()
    }

    /// `moat.db` through ``Installation``, opened on first use and kept for the command's later steps
    /// (the rollback check, then the audit record). Without `creating`, nil when this home has none.
    func database(creating: Bool) throws(GatewayError) -> MoatDatabase? {
        if let opened { return opened }
        guard creating || FileManager.default.fileExists(atPath: layout.databaseFile) else { return nil }
        let state = try Installation(layout: layout).open(.asFound)
        self.state = state
        opened = state.database
        return state.database
    }

    /// Resolves the layout and refuses a state directory other users can reach. With `create`, the
    /// directories are made (0700) when missing.
    static func prepare(_ state: StateOptions, create: Bool) throws(CommandFailure) -> VaultContext {
        try CommandFailure.wrap { () throws(GatewayError) in
            let layout = try Installation.layout(state.installationOptions)
            try Installation.checkState(layout, create ? .create : .asFound)
            return VaultContext(layout: layout)
        }
    }

    /// Opens the vault: with the master password when an option names one, otherwise from the seal,
    /// otherwise by asking for the password on the terminal. A vault older than the audit log records
    /// is refused before anything in it is used (`acceptingRollback` skips that, for the one command
    /// that accepts such a vault).
    func unlock(_ options: VaultUnlockOptions, acceptingRollback: Bool = false) throws(VaultError) -> UnlockedVault {
        let vault: UnlockedVault
        if let source = options.passwordSource {
            vault = try UnlockedVault.open(paths: paths, password: SecretInput.password(from: source, confirm: false))
        } else {
            guard let status = try VaultStatus.inspect(paths) else { throw missing }
            if let seal = status.seal {
                if seal.holdsPassword { note("warning: \(paths.seal): \(seal.exposure)") }
                let pin = seal.hasPIN ? try SecretInput.pin(from: options.pinSource, confirm: false) : nil
                vault = try UnlockedVault.unseal(paths: paths, pin: pin)
            } else {
                vault = try UnlockedVault.open(
                    paths: paths, password: SecretInput.password(from: .terminal, confirm: false))
            }
        }
        if !acceptingRollback { try checkNotRolledBack(vault) }
        return vault
    }

    /// Opens the vault with the master password only (never the seal): for commands that must prove
    /// the owner knows it.
    func unlockWithPassword(
        _ options: VaultUnlockOptions, password given: SecretBytes? = nil
    ) throws(VaultError) -> (UnlockedVault, SecretBytes) {
        guard FileManager.default.fileExists(atPath: paths.vault) else { throw missing }
        let password: SecretBytes
        if let given {
            password = given
        } else {
            password = try SecretInput.password(from: options.passwordSource ?? .terminal, confirm: false)
        }
        let vault = try UnlockedVault.open(paths: paths, password: password)
        try checkNotRolledBack(vault)
        return (vault, password)
    }

    var missing: VaultError {
        VaultError(.notFound, "there is no vault at \(paths.vault): create one with moat vault init (or moat serve)")
    }
}

/// Writes a line to stderr (notes and warnings; stdout carries only results).
func note(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
