import Foundation
import MoatAudit
import MoatGateway
import MoatStore
import MoatVault

extension VaultContext {
    /// The database's path in this state directory.
    var databasePath: String { paths.directory + "/moat.db" }

    /// Opens the audit log vault changes are recorded in, with `keys`, before anything changes; the
    /// database is created if this home has none yet (a vault set up before the first `moat serve`).
    func auditLog(keys: () throws -> AuditKeys, for action: String) throws(VaultError) -> AuditLog {
        do {
            let database = try MoatDatabase(path: databasePath, migrations: MoatSchema.migrations)
            return AuditLog(database: database, keys: try keys(), origin: try AuditLog.origin(for: database))
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
        { revision in
            let event = AuditEvent(
                actor: "owner",
                action: action,
                target: target,
                userAgent: "moat-cli",
                metadata: metadata.merging(VaultRollbackGuard.metadata(revision)) { $1 }
            )
            do {
                try log.appendNow(event)
            } catch {
                throw Self.notRecorded(action, error)
            }
        }
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
        guard FileManager.default.fileExists(atPath: databasePath) else { return }
        let database: MoatDatabase
        do {
            database = try MoatDatabase(path: databasePath, migrations: MoatSchema.migrations)
        } catch {
            throw VaultError(.io, "cannot check the vault against the audit log: \(error.message)")
        }
        defer { try? database.close() }
        try VaultRollbackGuard.check(vault, database: database)
    }

    static func notRecorded(_ action: String, _ error: any Error) -> VaultError {
        let reason =
            (error as? AuditError)?.message ?? (error as? StoreError)?.message ?? (error as? VaultError)?.message
            ?? "\(error)"
        return VaultError(.io, "the audit log could not record \(action), so nothing was changed: \(reason)")
    }
}
