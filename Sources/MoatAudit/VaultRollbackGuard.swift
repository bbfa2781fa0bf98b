import GRDB
public import MoatStore
public import MoatVault

/// The audit log's half of the vault's rollback protection.
///
/// Every change to `vault.moat` records the revision it writes (generation and SHA-256, see
/// ``VaultRevision``) in its audit entry, under ``generationKey`` and ``sha256Key``. An unlock then
/// compares the vault with the newest recorded revision and refuses a vault that is older (a copied-back
/// `vault.moat`, or `vault.moat` and `vault.seal` from before a re-key). The check needs only the
/// database, not the audit keys, so it runs right after the vault is opened and before anything in it
/// is used, the audit keys included.
///
/// It trusts the entries as stored: an attacker who can also edit or roll back `moat.db` can remove
/// the record too. The hash chain and a checkpoint kept elsewhere (`moat audit verify --checkpoint`)
/// are what show that.
public enum VaultRollbackGuard {
    /// The metadata key holding the vault generation an entry wrote.
    public static let generationKey = "vault_generation"
    /// The metadata key holding the SHA-256 of the vault file an entry wrote.
    public static let sha256Key = "vault_sha256"

    /// The metadata that records `revision` in an entry.
    public static func metadata(_ revision: VaultRevision) -> [String: AuditValue] {
        [generationKey: .int(Int64(clamping: revision.generation)), sha256Key: .string(revision.sha256)]
    }

    /// The newest vault revision the log records, with the entry that records it; nil when none does.
    public static func newestRecorded(_ database: MoatDatabase) throws -> (sequence: Int64, revision: VaultRevision)? {
        try database.pool.read(newestRecorded(db:))
    }

    /// ``newestRecorded(_:)`` for async code: read on the database's own queue, so no thread of the
    /// cooperative pool waits for SQLite.
    public static func newestRecorded(
        in database: MoatDatabase
    ) async throws -> (sequence: Int64, revision: VaultRevision)? {
        try await database.pool.read(newestRecorded(db:))
    }

    @Sendable private static func newestRecorded(db: Database) throws -> (sequence: Int64, revision: VaultRevision)? {
        // Walked from the newest entry through the table itself (seq is its rowid), never through an
        // index: an index is not covered by the hash chain, and one pointed by `PRAGMA writable_schema`
        // at a b-tree that leaves out the newest vault.* entry would otherwise hide it.
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT seq, json_extract(metadata, '$.\(generationKey)'), json_extract(metadata, '$.\(sha256Key)')
                FROM audit_entries NOT INDEXED
                WHERE action >= 'vault.' AND action < 'vault/'
                  AND json_extract(metadata, '$.\(generationKey)') IS NOT NULL
                ORDER BY seq DESC LIMIT 1
                """
        )
        guard let row else { return nil }
        let sequence: Int64 = row[0]
        let generation: Int64 = row[1] ?? 0
        let sha256: String = row[2] ?? ""
        return (sequence, VaultRevision(generation: UInt64(clamping: generation), sha256: sha256))
    }

    /// Refuses `vault` when it is older than the newest revision recorded in `database`'s audit log, or
    /// a different file at that same generation. The error names the recovery path.
    public static func check(_ vault: UnlockedVault, database: MoatDatabase) throws(VaultError) {
        do {
            try check(vault, recorded: try newestRecorded(database))
        } catch let error as VaultError {
            throw error
        } catch {
            throw unreadable(database, error)
        }
    }

    /// ``check(_:database:)`` for async code (``newestRecorded(in:)``).
    public static func check(_ vault: UnlockedVault, against database: MoatDatabase) async throws(VaultError) {
        let recorded: (sequence: Int64, revision: VaultRevision)?
        do {
            recorded = try await newestRecorded(in: database)
        } catch {
            throw unreadable(database, error)
        }
        try check(vault, recorded: recorded)
    }

    private static func unreadable(_ database: MoatDatabase, _ error: any Error) -> VaultError {
        VaultError(.io, "cannot read the vault's recorded generation from the audit log in \(database.path): \(error)")
    }

    private static func check(
        _ vault: UnlockedVault, recorded: (sequence: Int64, revision: VaultRevision)?
    ) throws(VaultError) {
        guard let recorded else { return }
        let current = vault.revision
        if current.generation > recorded.revision.generation || current == recorded.revision { return }
        let what =
            current.generation == recorded.revision.generation
            ? "is a different file at the generation the audit log records"
            : "is older than the audit log records"
        throw VaultError(
            .rolledBack,
            "refusing the vault: \(vault.paths.vault) \(what) (the file is at \(current); audit entry "
                + "\(recorded.sequence) recorded \(recorded.revision)). An older copy was put back, or Moat stopped "
                + "between recording a change and making it. " + UnlockedVault.rollbackRecovery
        )
    }
}
