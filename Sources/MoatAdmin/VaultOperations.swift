import Foundation
public import MoatAudit
import MoatCore
public import MoatVault

/// The vault commands that must see or change the vault the server holds (`moat vault add`, `rm`, `list`,
/// `rekey`) as admin operations: run by the server on the vault it holds open when `moat serve` runs,
/// or by the command on the vault it unlocked itself when it does not. Either way a change is recorded
/// in the audit log before the vault file is replaced (fail-closed), with names and policies only,
/// never a value. (Docs/Vault.md says why the other vault commands stay in their own process.)
///
/// Reading a secret's value is deliberately not an operation: nothing on the admin socket returns one.
public struct VaultOperations: Sendable {
    let vault: UnlockedVault
    let audit: AuditLog
    /// Who made the change, for the audit entry (`moat-cli`, or the admin socket's peer).
    let userAgent: String

    public init(vault: UnlockedVault, audit: AuditLog, userAgent: String) {
        self.vault = vault
        self.audit = audit
        self.userAgent = userAgent
    }

    /// Runs one vault operation; nil for an operation of another table.
    public func perform(_ operation: AdminOperation) throws(VaultError) -> AdminResult? {
        switch operation {
        case .vaultAdd(let name, let value, let tools, let hosts, let replace):
            try SecretName.validate(name)
            let policy = try SecretPolicy(tools: tools, hosts: hosts)
            let action = replace ? "vault.replace" : "vault.add"
            let metadata: [String: AuditValue] = [
                "tools": .array(policy.tools.map { .string($0) }), "hosts": .array(policy.hosts.map { .string($0) }),
            ]
            try vault.add(
                name, value: value, policy: policy, replace: replace,
                record: recorder(action, target: name, metadata: metadata))
            return .vaultAdded(
                VaultAdded(
                    name: name, replaced: replace, policy: policy.summary, shortValue: value.count < 4,
                    usable: !policy.tools.isEmpty && !policy.hosts.isEmpty))
        case .vaultRemove(let name):
            try SecretName.validate(name)
            guard try vault.value(named: name) != nil else {
                throw VaultError(.unknownSecret, "there is no secret named \(name); moat vault list shows the names")
            }
            try vault.remove(name, record: recorder("vault.rm", target: name))
            return .vaultRemoved(name: name)
        case .vaultList:
            return .vaultSecrets(try vault.secrets())
        case .vaultRekey(let current, let new, let pin):
            let sealed = try VaultStatus.inspect(vault.paths)?.seal != nil
            if current == nil {
                // What a re-key in the command's own process proves by unsealing: that the caller opens the
                // seal on this machine, with its PIN when it has one. (The server may hold a vault it
                // unsealed without that PIN's holder.)
                guard sealed else {
                    throw VaultError(
                        .badInput,
                        "the current master password is needed: give it with --password-file or --password-stdin")
                }
                _ = try UnlockedVault.unseal(paths: vault.paths, pin: pin)
            }
            try vault.rekey(
                currentPassword: current, newPassword: new, sealPIN: pin,
                record: recorder("vault.rekey", target: "", metadata: ["resealed": .bool(sealed)]))
            let paths = vault.paths
            return .vaultRekeyed(
                VaultRekeyed(
                    vault: paths.vault, parameters: "\(vault.parameters)", seal: sealed ? paths.seal : nil,
                    staleRecoveryKey: FileManager.default.fileExists(atPath: paths.recoveryKey)
                        ? paths.recoveryKey : nil))
        default:
            return nil
        }
    }

    func recorder(_ action: String, target: String, metadata: [String: AuditValue] = [:]) -> VaultWriteRecorder {
        Self.recorder(action, target: target, metadata: metadata, audit: audit, userAgent: userAgent)
    }

    /// A recorder that appends `action` (names only, never values) with the revision about to be
    /// written, before the vault file is replaced. Fail-closed: when the entry cannot be written, the
    /// vault is not changed and the error says so.
    public static func recorder(
        _ action: String, target: String = "", metadata: [String: AuditValue] = [:], audit: AuditLog,
        userAgent: String
    ) -> VaultWriteRecorder {
        { revision in
            let event = AuditEvent(
                actor: "owner", action: action, target: target, userAgent: userAgent,
                metadata: metadata.merging(VaultRollbackGuard.metadata(revision)) { $1 })
            do {
                try audit.appendNow(event)
            } catch {
                throw notRecorded(action, error)
            }
        }
    }

    /// The error for a change the audit log could not record (so it was not made).
    public static func notRecorded(_ action: String, _ error: any Error) -> VaultError {
        VaultError(
            .io, "the audit log could not record \(action), so nothing was changed: \(ExitStatus.message(for: error))")
    }
}
