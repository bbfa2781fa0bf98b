import Foundation
import MoatAdmin
import MoatApp
import MoatAudit
import MoatCore
import MoatStore
import MoatVault

extension VaultContext {
    /// Opens the audit log vault changes are recorded in, with `keys`, before anything changes; the
    /// database is created if this home has none yet (a vault set up before the first `moat serve`).
    func auditLog(keys: () throws -> AuditKeys, for action: String) throws(VaultError) -> AuditLog {
        do {
            guard let database = try self.database(creating: true) else {
                throw VaultError(.io, "moat.db was not opened")
            }
            return try Installation.auditLog(database: database, keys: try keys())
        } catch {
            throw Self.notRecorded(action, error)
        }
    }

    /// The audit log for changes to the unlocked `vault` (its keys come from the vault).
    func auditLog(for vault: UnlockedVault, action: String) throws(VaultError) -> AuditLog {
        try auditLog(keys: { try AuditKeyring.keys(from: vault) }, for: action)
    }

    /// A recorder that appends `action` (names only, never values) with the revision about to be
    /// written, before the vault file is replaced. Fail-closed: when the entry cannot be written, the
    /// vault is not changed and the error says so.
    func recorder(
        _ action: String,
        target: String = "",
        metadata: [String: AuditValue] = [:],
        log: AuditLog
    ) -> VaultWriteRecorder {
        VaultOperations.recorder(action, target: target, metadata: metadata, audit: log, userAgent: "moat-cli")
    }

    /// Runs a vault change in this process (no server runs), recorded in this home's audit log: the
    /// same ``VaultOperations`` the server runs for the admin socket.
    func perform(_ operation: AdminOperation, on vault: UnlockedVault) throws(VaultError) -> AdminResult {
        var action = operation.name.rawValue
        if case .vaultAdd(_, _, _, _, replace: true) = operation { action = "vault.replace" }
        let operations = VaultOperations(
            vault: vault, audit: try auditLog(for: vault, action: action), userAgent: "moat-cli")
        guard let result = try operations.perform(operation) else {
            throw VaultError(.io, "\(action) is not a vault operation")
        }
        return result
    }

    /// Records a change that does not write `vault.moat` (the seal) *before* it is made; fail-closed.
    func recordChange(
        _ action: String,
        metadata: [String: AuditValue] = [:],
        vault: UnlockedVault
    ) throws(VaultError) {
        let log = try auditLog(for: vault, action: action)
        do {
            try log.appendNow(
                AuditEvent(actor: "owner", action: action, userAgent: "moat-cli", metadata: metadata))
        } catch {
            throw Self.notRecorded(action, error)
        }
    }

    /// Refuses a vault older than the newest revision this home's audit log records (see
    /// ``VaultRollbackGuard``). Without a database there is nothing to compare with.
    func checkNotRolledBack(_ vault: UnlockedVault) throws(VaultError) {
        let database: MoatDatabase?
        do {
            database = try self.database(creating: false)
        } catch {
            throw VaultError(.io, "cannot check the vault against the audit log: \(error.message)")
        }
        guard let database else { return }
        try VaultRollbackGuard.check(vault, database: database)
    }

    static func notRecorded(_ action: String, _ error: any Error) -> VaultError {
        VaultOperations.notRecorded(action, error)
    }
}
