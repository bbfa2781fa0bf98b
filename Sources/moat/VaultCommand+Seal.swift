import ArgumentParser
import Foundation
import MoatAdmin
import MoatAudit
import MoatCore
import MoatVault

/// Text shared by `init` and `seal`: how the seal is bound, and what a copy of the state directory allows.
enum SealCommandText {
    static func sealed(_ written: VaultSeal.Written) -> String {
        let info = written.info
        var lines = [
            info.hasPIN
                ? "sealed to this machine with a PIN, \(info.binding): moat serve asks for the PIN "
                    + "(terminal or --pin-file)"
                : "sealed to this machine without a PIN, \(info.binding): moat serve starts without asking"
        ]
        if let problem = written.hostKeyProblem {
            lines.append("no machine secret could be used: \(problem)")
        }
        lines.append("what a copy of the state directory allows: \(info.exposure)")
        if info.protection == .fingerprint && !info.hasPIN {
            lines.append("moat vault seal --pin adds a PIN (at least \(VaultSeal.minimumPINLength) characters)")
        }
        return lines.joined(separator: "\n")
    }
}

extension VaultCommand {
    struct Rekey: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-encrypt the vault under a new master password and salt (and seal it again when sealed).",
            discussion: """
                The current password comes from --password-file / --password-stdin, or from the seal; the new \
                one is asked twice on the terminal, or read with --new-password-file / --new-password-stdin.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Option(help: ArgumentHelp("Read the new master password from this file.", valueName: "file"))
        var newPasswordFile: String?

        @Flag(help: "Read the new master password from standard input.")
        var newPasswordStdin = false

        func validate() throws {
            if newPasswordFile != nil && newPasswordStdin {
                throw ValidationError("give the new password once: --new-password-file or --new-password-stdin")
            }
            if unlock.passwordStdin && newPasswordStdin {
                throw ValidationError(
                    "standard input can carry only one password: use a --…-password-file for the other")
            }
        }

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            let paths = context.paths
            // With `moat serve` running, the server re-keys the vault it holds, so its key in memory is the
            // new one (a re-key in this process would leave the server on the old key).
            let server = AdminChannel.runningServer(context.layout)
            let (operation, vault) = try CommandFailure.wrap {
                () throws(VaultError) -> (AdminOperation, UnlockedVault?) in
                guard let status = try VaultStatus.inspect(paths) else { throw context.missing }
                var current: SecretBytes?
                var pin: SecretBytes?
                var vault: UnlockedVault?
                if let source = unlock.passwordSource {
                    current = try SecretInput.password(from: source, confirm: false)
                    if server == nil { vault = try UnlockedVault.open(paths: paths, password: current!) }
                    if status.seal?.hasPIN == true { pin = try SecretInput.pin(from: unlock.pinSource, confirm: false) }
                } else if let seal = status.seal {
                    pin = seal.hasPIN ? try SecretInput.pin(from: unlock.pinSource, confirm: false) : nil
                    if server == nil { vault = try UnlockedVault.unseal(paths: paths, pin: pin) }
                } else {
                    current = try SecretInput.password(
                        from: .terminal, prompt: "Current master password: ", confirm: false)
                    if server == nil { vault = try UnlockedVault.open(paths: paths, password: current!) }
                }
                if let vault { try context.checkNotRolledBack(vault) }
                let newSource: SecretSource =
                    newPasswordFile.map { .file($0) } ?? (newPasswordStdin ? .standardInput : .terminal)
                let newPassword = try SecretInput.password(
                    from: newSource, prompt: "New master password: ", confirm: true)
                return (.vaultRekey(current: current, new: newPassword, pin: pin), vault)
            }
            if let server {
                try AdminChannel.print(try AdminChannel.send(operation, to: server))
            } else if let vault {
                try AdminChannel.print(
                    try CommandFailure.wrap { () throws(VaultError) in try context.perform(operation, on: vault) })
            }
        }
    }

    struct Seal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal the vault to this machine so moat serve starts without the master password.",
            discussion: """
                Needs the master password (never the old seal): this is also how to seal again after the \
                machine's fingerprint changed. The seal holds the vault's key, never the password, bound to \
                the systemd credential host key where Moat can use it (root), else to the machine fingerprint \
                only; the output says which, and what a copy of the state directory allows. With --pin (or \
                --pin-file) the seal also needs a PIN of at least 14 characters.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        @Flag(
            help:
                "Also require a PIN of at least 14 characters to open the seal (asked twice on the terminal, or --pin-file)."
        )
        var pin = false

        func run() throws {
            print(try Self.seal(state, unlock: unlock, pin: pin || unlock.pinFile != nil))
        }

        /// Seals the vault with the master password `unlock` names (recorded as `vault.seal` first) and
        /// returns what the seal binds to; `moat doctor --fix` seals through here too.
        /// `password` given (the recovery key file's) is used instead of the source `unlock` names.
        static func seal(
            _ state: StateOptions, unlock: VaultUnlockOptions, pin: Bool, password given: SecretBytes? = nil
        ) throws -> String {
            let context = try VaultContext.prepare(state, create: false)
            return try CommandFailure.wrap { () throws(VaultError) in
                let (vault, password) = try context.unlockWithPassword(unlock, password: given)
                let sealPIN = pin ? try SecretInput.pin(from: unlock.pinSource, confirm: true) : nil
                try context.recordChange("vault.seal", metadata: ["pin": .bool(sealPIN != nil)], vault: vault)
                return SealCommandText.sealed(try vault.seal(password: password, pin: sealPIN))
            }
        }
    }

    struct UnsealCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unseal-check",
            abstract: "Tell whether the seal opens the vault on this machine (exit 0) or not (exit 1)."
        )

        @OptionGroup var state: StateOptions

        @Option(help: ArgumentHelp("Read the seal PIN from this file, when the seal has one.", valueName: "file"))
        var pinFile: String?

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            let paths = context.paths
            let count = try CommandFailure.wrap { () throws(VaultError) in
                guard let status = try VaultStatus.inspect(paths) else { throw context.missing }
                guard let seal = status.seal else {
                    throw VaultError(.notSealed, "the vault is not sealed: moat vault seal seals it to this machine")
                }
                let pin =
                    seal.hasPIN
                    ? try SecretInput.pin(from: pinFile.map { .file($0) } ?? .terminal, confirm: false) : nil
                let vault = try UnlockedVault.unseal(paths: paths, pin: pin)
                try context.checkNotRolledBack(vault)
                return try vault.secrets().count
            }
            print("the seal opens the vault on this machine (\(count) secret\(count == 1 ? "" : "s"))")
        }
    }
}

extension VaultCommand {
    struct AcceptRollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "accept-rollback",
            abstract: "Keep a vault that is older than the audit log records (after restoring it on purpose).",
            discussion: """
                Unlocking refuses a vault.moat older than the newest change the audit log records: a copied-back \
                file would revive removed secrets or an old password. When you restored the older vault on \
                purpose (or Moat stopped between recording a change and making it), this writes it again at a \
                new generation, recorded in the audit log as vault.rollback.accept. Otherwise put the newest \
                vault.moat (and vault.seal) back instead.
                """
        )

        @OptionGroup var state: StateOptions
        @OptionGroup var unlock: VaultUnlockOptions

        func run() throws {
            let context = try VaultContext.prepare(state, create: false)
            if AdminChannel.runningServer(context.layout) != nil {
                // The running server checked its vault when it started and holds it open: writing vault.moat
                // again here would race the server's own writes. Stopping it is the safe order.
                throw CommandFailure(
                    "stop moat serve first: accept-rollback rewrites vault.moat, which the running server holds "
                        + "open; then run it again and start the server")
            }
            try CommandFailure.wrap { () throws(VaultError) in
                let vault = try context.unlock(unlock, acceptingRollback: true)
                let log = try context.auditLog(for: vault, action: "vault.rollback.accept")
                let recorded: VaultRevision?
                do {
                    recorded = try VaultRollbackGuard.newestRecorded(log.database)?.revision
                } catch {
                    throw VaultContext.notRecorded("vault.rollback.accept", error)
                }
                let current = vault.revision
                guard let recorded, current.generation <= recorded.generation, current != recorded else {
                    print("the vault is not older than the audit log records (\(current)); nothing to accept")
                    return
                }
                let record = context.recorder(
                    "vault.rollback.accept",
                    metadata: [
                        "from_generation": .int(Int64(clamping: current.generation)),
                        "recorded_generation": .int(Int64(clamping: recorded.generation)),
                    ],
                    log: log
                )
                try vault.acceptRollback(above: recorded.generation, record: record)
                print("accepted the vault as it is: written again at \(vault.revision)")
            }
        }
    }
}
