import ArgumentParser
import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatCore
import MoatStore
import MoatVault

/// How `moat backup` / `moat restore` get the backup passphrase: never argv or the environment.
struct BackupPassphraseOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Read the backup passphrase from this file (one trailing newline is ignored).", valueName: "file"))
    var passphraseFile: String?

    @Flag(help: "Read the backup passphrase from standard input.")
    var passphraseStdin = false

    func validate() throws {
        if passphraseFile != nil && passphraseStdin {
            throw ValidationError("give the passphrase once: --passphrase-file or --passphrase-stdin, not both")
        }
    }

    /// Standard input carries one secret: refuses it for both the master password and the passphrase.
    func validate(alongside unlock: VaultUnlockOptions) throws {
        if unlock.passwordStdin && passphraseStdin {
            throw ValidationError("standard input can carry the master password or the passphrase, not both")
        }
    }

    var source: SecretSource {
        if let passphraseFile { return .file(passphraseFile) }
        return passphraseStdin ? .standardInput : .terminal
    }

    /// The passphrase (at least 12 characters; a new one asked twice on a terminal).
    func read(confirm: Bool) throws(CommandFailure) -> SecretBytes {
        try CommandFailure.wrap { () throws(VaultError) in
            try SecretInput.password(from: source, prompt: "Backup passphrase: ", confirm: confirm)
        }
    }
}

/// `moat backup FILE`: one encrypted file holding `moat.db`, `vault.moat` and `config.yaml`.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write an encrypted backup of moat.db, the vault and config.yaml to FILE.",
        discussion: """
            Safe while moat serve runs: moat.db is copied with SQLite's online backup API (one committed \
            state) while the vault file is held under its lock. The file is AES-256-GCM under a key \
            derived with Argon2id from a backup passphrase (terminal, --passphrase-file or \
            --passphrase-stdin). vault.seal is not included: it is bound to this machine; after a restore, \
            seal again with the master password. Format: Docs/Operations.md.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var unlock: VaultUnlockOptions
    @OptionGroup var passphrase: BackupPassphraseOptions

    @Argument(help: ArgumentHelp("The backup file to write (mode 0600).", valueName: "file"))
    var file: String

    @Flag(help: "Replace FILE when it exists.")
    var force = false

    func validate() throws {
        try passphrase.validate(alongside: unlock)
    }

    func run() throws {
        let output = absolutePath(file)
        if !force && FileManager.default.fileExists(atPath: output) {
            throw CommandFailure("\(output) already exists: pass --force to replace it", exitCode: ExitStatus.failure)
        }
        let context = try CommandContext.open(state: state, readConfiguration: false)
        let secret = try passphrase.read(confirm: true)
        let vault = try context.unlockVault(unlock)
        let log = try CommandFailure.wrap { () throws(GatewayError) in
            try Installation.auditLog(database: context.database, vault: vault)
        }
        // Recorded first, so the backup holds its own entry; metadata only, never the passphrase.
        do {
            _ = try log.appendNow(
                AuditEvent(
                    actor: "owner", action: "backup.create", target: output, userAgent: "moat-cli",
                    metadata: ["format_version": .int(1)]))
        } catch {
            throw CommandFailure("the backup was not made: its audit entry could not be written: \(error)")
        }
        let layout = context.layout
        var members = try CommandFailure.wrap {
            try BackupArchive.withVaultFile(vault.paths) { vaultBytes in
                [
                    BackupArchive.Member(
                        name: "moat.db",
                        bytes: try context.database.backupBytes(scratchDirectory: layout.stateDirectory)),
                    BackupArchive.Member(name: "vault.moat", bytes: vaultBytes),
                ]
            }
        }
        let configFile = state.config.map(absolutePath) ?? layout.configFile
        if let config = FileManager.default.contents(atPath: configFile) {
            members.append(BackupArchive.Member(name: "config.yaml", bytes: Array(config)))
        }
        let archive = try CommandFailure.wrap { () throws(VaultError) in
            try BackupArchive.seal(members, passphrase: secret)
        }
        try CommandFailure.wrap { () throws(VaultError) in
            try BackupArchive.write(archive, to: output, replacing: force)
        }
        print("backed up \(members.map(\.name).joined(separator: ", ")) to \(output) (\(archive.count) bytes)")
        print("not in the backup: vault.seal (bound to this machine), the admin socket, recovery-key.txt, workspace/")
    }
}

/// `moat restore FILE`: puts a backup's files in place on a state directory without an installation.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore moat.db, the vault and config.yaml from a backup made by moat backup.",
        discussion: """
            Refuses while moat serve runs on this home, and when moat.db, vault.moat or config.yaml exist \
            (unless --force). The backup is decrypted, then moat.db is opened, the vault unlocked with the \
            master password (or recovery key) and the audit chain verified in a private scratch directory; \
            only then are the files moved in place. With --seal the vault is sealed to this machine in \
            the same command; otherwise run moat vault seal.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var unlock: VaultUnlockOptions
    @OptionGroup var passphrase: BackupPassphraseOptions

    @Argument(help: ArgumentHelp("The backup file.", valueName: "file"))
    var file: String

    @Flag(help: "Replace an existing moat.db, vault.moat and config.yaml (and remove the old vault.seal).")
    var force = false

    @Flag(help: "Seal the restored vault to this machine (without a PIN) with the master password given.")
    var seal = false

    func validate() throws {
        try passphrase.validate(alongside: unlock)
    }

    func run() throws {
        let layout = try CommandContext.layout(state)
        let paths = VaultPaths(stateDirectory: layout.stateDirectory)
        let configFile = state.config.map(absolutePath) ?? layout.configFile
        if AdminClient.isServerListening(at: layout.adminSocket) {
            throw CommandFailure(
                "stop moat serve first: it runs on \(layout.stateDirectory), and restore replaces its files")
        }
        let present = [layout.databaseFile, paths.vault, configFile].filter {
            FileManager.default.fileExists(atPath: $0)
        }
        if !force && !present.isEmpty {
            throw CommandFailure(
                "refusing to restore over an existing installation (\(present.joined(separator: ", "))): "
                    + "restore onto a fresh state directory (--home DIR), or pass --force to replace them")
        }
        let source = absolutePath(file)
        guard let data = FileManager.default.contents(atPath: source) else {
            throw CommandFailure("cannot read \(source)", exitCode: ExitStatus.failure)
        }
        let secret = try passphrase.read(confirm: false)
        let members = try CommandFailure.wrap { () throws(VaultError) in
            try BackupArchive.open(Array(data), passphrase: secret, path: source)
        }
        let named = Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.bytes) })
        guard let database = named["moat.db"], let vaultFile = named["vault.moat"] else {
            throw CommandFailure("\(source) holds no moat.db or no vault.moat", exitCode: ExitStatus.dataError)
        }
        try CommandFailure.wrap { () throws(GatewayError) in try Installation.checkState(layout, .create) }
        let scratch = try RestoreScratch(in: layout.stateDirectory)
        defer { scratch.remove() }
        try scratch.write(database, as: "moat.db")
        try scratch.write(vaultFile, as: "vault.moat")
        let password = try CommandFailure.wrap { () throws(VaultError) in
            try SecretInput.password(
                from: unlock.passwordSource ?? .terminal, prompt: "Vault master password (or recovery key): ",
                confirm: false)
        }
        try Self.verify(scratch: scratch.layout, password: password, source: source)
        if force {
            for stale in [layout.databaseFile + "-wal", layout.databaseFile + "-shm", paths.seal] { unlink(stale) }
        }
        try scratch.move("moat.db", to: layout.databaseFile)
        try scratch.move("moat.db-wal", to: layout.databaseFile + "-wal", ifPresent: true)
        try scratch.move("vault.moat", to: paths.vault)
        if let config = named["config.yaml"] {
            try CommandFailure.wrap { () throws(VaultError) in
                try BackupArchive.write(config, to: configFile, replacing: true)
            }
        }
        print("restored \(members.map(\.name).joined(separator: ", ")) from \(source) into \(layout.stateDirectory)")
        guard seal else {
            print(
                "the vault is not sealed to this machine: run `moat vault seal` (master password) so moat serve "
                    + "starts without it, or restore again with --seal")
            return
        }
        let context = VaultContext(layout: layout)
        try CommandFailure.wrap { () throws(VaultError) in
            let vault = try UnlockedVault.open(paths: paths, password: password)
            try context.recordChange("vault.seal", metadata: ["pin": .bool(false)], vault: vault)
            print(SealCommandText.sealed(try vault.seal(password: password, pin: nil)))
        }
    }

    /// Opens the restored database, unlocks the restored vault and verifies the audit chain, all in the
    /// scratch directory; records the restore there. Any failure leaves the real state untouched.
    static func verify(scratch: StateLayout, password: SecretBytes, source: String) throws(CommandFailure) {
        let database = try CommandFailure.wrap { () throws(GatewayError) in try Installation.openDatabase(scratch) }
        defer { try? database.close() }
        let vault = try CommandFailure.wrap { () throws(VaultError) in
            try UnlockedVault.open(paths: VaultPaths(stateDirectory: scratch.stateDirectory), password: password)
        }
        let log = try CommandFailure.wrap { () throws(GatewayError) in
            try Installation.auditLog(database: database, vault: vault)
        }
        let keys = try CommandFailure.wrap { try AuditKeyring.keys(from: vault) }
        let report = try CommandFailure.wrap {
            try AuditVerifier.verify(database, publicKey: keys.verifyingKey, kept: nil)
        }
        guard report.brokenSequence == nil else {
            throw CommandFailure(
                "refusing to restore \(source): its audit log does not verify: \(report.summary); nothing was written")
        }
        print(report.summary)
        do {
            _ = try log.appendNow(
                AuditEvent(actor: "owner", action: "backup.restore", target: source, userAgent: "moat-cli"))
        } catch {
            throw CommandFailure("the restore was not recorded in the audit log, so nothing was restored: \(error)")
        }
    }
}

/// A private directory inside the state directory where a restore is checked before it is put in place
/// (same file system, so the final step is a rename).
struct RestoreScratch {
    let directory: String
    var layout: StateLayout { StateLayout(configDirectory: directory, stateDirectory: directory) }

    init(in parent: String) throws(CommandFailure) {
        var template = Array((parent + "/.restore-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CommandFailure("cannot create a scratch directory in \(parent)")
        }
        directory = String(cString: template.map { $0 })
    }

    func write(_ bytes: [UInt8], as name: String) throws(CommandFailure) {
        try CommandFailure.wrap { () throws(VaultError) in
            try BackupArchive.write(bytes, to: directory + "/" + name, replacing: false)
        }
    }

    func move(_ name: String, to destination: String, ifPresent: Bool = false) throws(CommandFailure) {
        let from = directory + "/" + name
        if ifPresent && !FileManager.default.fileExists(atPath: from) { return }
        guard rename(from, destination) == 0 else {
            throw CommandFailure("cannot move \(from) to \(destination): \(String(cString: strerror(errno)))")
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// `path` made absolute against the working directory.
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}
