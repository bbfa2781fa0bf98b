import Logging
import MoatAudit
public import MoatCore
import MoatStore
public import MoatVault
import ServiceLifecycle

extension GatewayServer {
    /// The vault `moat serve` unlocked, and how.
    public struct VaultOpening: Sendable {
        public enum Source: String, Sendable {
            /// Created just now, on an empty home, and sealed.
            case created
            /// Opened from `vault.seal` (with the PIN when it has one).
            case seal
            /// Opened with the master password typed on the terminal.
            case password
        }

        public let vault: UnlockedVault
        public let source: Source
        /// The generated master password, to be shown once: set only when the vault was just created and
        /// stderr is a terminal.
        public let recoveryKeyToShow: SecretBytes?
        /// Where the generated master password was written, when there was no terminal to show it on.
        public let recoveryKeyFile: String?
    }

    /// Unlocks the vault for `moat serve`, creating it on an empty home.
    ///
    /// - No `vault.moat`: creates one with a random master password, seals it (no PIN), and either
    ///   returns the password to show on the terminal or writes it to `recovery-key.txt` (0600).
    /// - Sealed: opens from the seal; a PIN comes from `pinFile` or the terminal.
    /// - Not sealed: asks for the master password on the terminal; with no terminal, refuses to start.
    public func openVault(pinFile: String?, stderrIsTerminal: Bool) throws(GatewayError) -> VaultOpening {
        let paths = VaultPaths(stateDirectory: layout.stateDirectory)
        let status: VaultStatus?
        do {
            status = try VaultStatus.inspect(paths)
        } catch {
            throw Installation.vaultFailure(error)
        }
        guard let status else { return try createVault(paths, stderrIsTerminal: stderrIsTerminal) }
        do {
            if let seal = status.seal {
                var pin: SecretBytes?
                if seal.hasPIN {
                    if let pinFile {
                        pin = try SecretInput.pin(from: .file(pinFile), confirm: false)
                    } else if SecretInput.terminalAvailable {
                        pin = try SecretInput.pin(from: .terminal, confirm: false)
                    } else {
                        throw GatewayError(
                            .vaultLocked,
                            "refusing to start: the vault's seal has a PIN and there is no terminal to ask for it; "
                                + "start with --pin-file FILE"
                        )
                    }
                }
                let vault = try UnlockedVault.unseal(paths: paths, pin: pin)
                return VaultOpening(vault: vault, source: .seal, recoveryKeyToShow: nil, recoveryKeyFile: nil)
            }
            guard SecretInput.terminalAvailable else {
                throw GatewayError(
                    .vaultLocked,
                    "refusing to start: \(paths.vault) is not sealed and there is no terminal to ask for the master "
                        + "password. Seal it once for unattended starts with `moat vault seal` (add --pin to require "
                        + "a PIN), or start moat serve on a terminal to type the password."
                )
            }
            let password = try SecretInput.password(from: .terminal, prompt: "Vault master password: ", confirm: false)
            let vault = try UnlockedVault.open(paths: paths, password: password)
            return VaultOpening(vault: vault, source: .password, recoveryKeyToShow: nil, recoveryKeyFile: nil)
        } catch let error as GatewayError {
            throw error
        } catch let error as VaultError {
            throw Installation.vaultFailure(error)
        } catch {
            throw GatewayError(.vaultLocked, "cannot unlock the vault: \(error)")
        }
    }

    private func createVault(_ paths: VaultPaths, stderrIsTerminal: Bool) throws(GatewayError) -> VaultOpening {
        if FileModes.mode(of: paths.seal) != nil {
            throw GatewayError(
                .vaultDamaged,
                "refusing to start: \(paths.seal) exists but \(paths.vault) does not. Restore vault.moat from a "
                    + "backup, or delete vault.seal to let moat serve create a new, empty vault."
            )
        }
        let key = RecoveryKey.generate()
        do {
            // The key is stored before the vault exists, so there is never a vault whose key was lost.
            if !stderrIsTerminal { try RecoveryKey.write(key, to: paths.recoveryKey) }
            let vault = try UnlockedVault.create(paths: paths, password: key)
            try vault.seal(password: key, pin: nil)
            return VaultOpening(
                vault: vault,
                source: .created,
                recoveryKeyToShow: stderrIsTerminal ? key : nil,
                recoveryKeyFile: stderrIsTerminal ? nil : paths.recoveryKey
            )
        } catch {
            throw Installation.vaultFailure(error)
        }
    }

}

/// Re-reads the vault every few seconds when its file changed (the CLI added, removed or re-keyed), so
/// the running gateway uses the current secrets; logs each reload and each failure, never a value.
///
/// With `audit`, it also records each new vault revision it sees (`vault.write`): the server's own
/// vault writes (its keys, the owner's token-version floor, TOTP secrets) are made inside other work,
/// so they are recorded here, within one interval, for the rollback check of the next unlock.
struct VaultWatcher: Service {
    let vault: UnlockedVault
    let logger: Logger
    var audit: AuditLog?
    var interval: Duration = .seconds(2)

    func run() async throws {
        // Cancelled on graceful shutdown, so the sleep does not delay it.
        try await cancelWhenGracefulShutdown { [vault, logger, audit, interval] in
            var lastFailure: String?
            // The newest generation in the log (the unlock's), so writes made since start-up are recorded.
            var recorded: UInt64 = 0
            if let audit, let newest = try? await VaultRollbackGuard.newestRecorded(in: audit.database) {
                recorded = newest.revision.generation
            }
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                do throws(VaultError) {
                    let reloaded = try vault.refreshIfChanged()
                    if let audit, vault.revision.generation > recorded {
                        let revision = vault.revision
                        do {
                            try await audit.append(
                                AuditEvent(
                                    actor: "system", action: "vault.write",
                                    metadata: VaultRollbackGuard.metadata(revision)))
                            recorded = revision.generation
                        } catch {
                            logger.error("could not record the vault's new revision", metadata: ["error": "\(error)"])
                        }
                    }
                    if reloaded {
                        let count = try vault.secrets().count
                        logger.notice("vault reloaded", metadata: ["secrets": "\(count)"])
                        lastFailure = nil
                    }
                } catch {
                    let message = error.message
                    if message != lastFailure {
                        logger.error(
                            "vault reload failed; the secrets already loaded stay in use",
                            metadata: ["error": "\(message)"]
                        )
                        lastFailure = message
                    }
                }
            }
        }
    }
}
