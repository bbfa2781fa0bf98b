public import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The one SQLite database of a Moat installation, `moat.db`, opened once as a GRDB `DatabasePool`.
///
/// WAL journal, `synchronous=FULL` (a committed transaction survives power loss, which the audit log's
/// durability promise depends on), foreign keys on, and named append-only migrations. Opening checks
/// that the file really is Moat's: a non-SQLite file, another program's database, a damaged file or one
/// migrated by a newer Moat each give a ``StoreError`` that says what to do, never a crash.
public final class MoatDatabase: Sendable {
    /// `PRAGMA application_id` of a Moat database: "MOAT" in ASCII.
    public static let applicationID: Int32 = 0x4D4F_4154

    /// The pool; every module reads and writes through it.
    public let pool: DatabasePool
    /// The path of `moat.db`.
    public let path: String

    /// Opens (creating if needed, mode 0600) and migrates the database at `path`.
    public init(path: String, busyTimeoutSeconds: Double = 5) throws(StoreError) {
        self.path = path
        var existedBefore = stat()
        let isNew = lstat(path, &existedBefore) != 0 || existedBefore.st_size == 0
        try FileModes.createPrivateFile(path)
        if !isNew {
            // Checked read-only before the pool opens: opening a pool switches the file to WAL, and
            // another program's database must be left exactly as it was.
            try Self.checkOwnership(path)
        }

        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(busyTimeoutSeconds)
        configuration.label = "moat.db"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw Self.describe(error, path: path)
        }
        do {
            // GRDB sets synchronous=NORMAL on the writer when it enables WAL; the audit log's durability
            // promise needs FULL on the one connection that commits.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try pool.write { db in
                if try Self.migrator.hasBeenSuperseded(db) {
                    throw StoreError(
                        .newerSchema,
                        "\(path) was written by a newer version of Moat; install that version again "
                            + "(Moat never downgrades a database)"
                    )
                }
            }
            try Self.migrator.migrate(pool)
            try pool.read { db in try Self.checkSchema(db, path: path) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.describe(error, path: path)
        }
    }

    /// Closes the pool; later use of it fails. Called once at shutdown.
    public func close() throws {
        try pool.close()
    }

    /// Runs `PRAGMA integrity_check`; returns an empty array when the database is sound.
    public func integrityProblems() throws(StoreError) -> [String] {
        do {
            let rows = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            return rows == ["ok"] ? [] : rows
        } catch {
            throw Self.describe(error, path: path)
        }
    }

    /// The names of the migrations applied to this database, oldest first.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    /// The random identifier of this installation, created with the database.
    public func installationID() throws -> String {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM moat_meta WHERE key = 'installation_id'") ?? ""
        }
    }

    // MARK: Migrations

    /// Append-only: a released migration is never edited or removed; a change is a new migration.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-23 meta") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.create(table: "moat_meta") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
            try db.execute(
                sql: "INSERT INTO moat_meta (key, value) VALUES ('installation_id', lower(hex(randomblob(16))))"
            )
            try db.execute(
                sql: "INSERT INTO moat_meta (key, value) VALUES ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
            )
        }
        migrator.registerMigration("2026-11-23 audit") { db in
            // The audit log (MoatAudit). Entries are append-only; the triggers stop accidental UPDATE or
            // DELETE by Moat's own code. They do not stop an attacker with write access to the file —
            // the hash chain and signed checkpoints detect that.
            try db.execute(
                sql: """
                    CREATE TABLE audit_entries (
                      seq INTEGER PRIMARY KEY,
                      time TEXT NOT NULL,
                      actor TEXT NOT NULL,
                      action TEXT NOT NULL,
                      target TEXT NOT NULL,
                      source_ip TEXT NOT NULL,
                      user_agent TEXT NOT NULL,
                      outcome TEXT NOT NULL,
                      metadata TEXT NOT NULL,
                      prev_hash TEXT NOT NULL,
                      hash TEXT NOT NULL
                    );
                    CREATE INDEX audit_entries_time ON audit_entries(time);
                    CREATE INDEX audit_entries_action ON audit_entries(action);
                    CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
                      BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
                      BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    CREATE TABLE audit_checkpoints (
                      count INTEGER PRIMARY KEY,
                      head TEXT NOT NULL,
                      origin TEXT NOT NULL,
                      signature BLOB NOT NULL,
                      created_at TEXT NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("2026-11-23 policy") { db in
            // MoatPolicy's tables. Rows that grant power carry `mac`, an HMAC keyed from the vault: a row
            // that does not verify is ignored. The triggers stop Moat's own code from rewriting history;
            // they do not stop an attacker with write access to the file — the MACs do that.
            try db.execute(
                sql: """
                    CREATE TABLE policy_trust_changes (
                      id INTEGER PRIMARY KEY,
                      domain TEXT NOT NULL,
                      from_level INTEGER NOT NULL,
                      to_level INTEGER NOT NULL,
                      kind TEXT NOT NULL,
                      actor TEXT NOT NULL,
                      reason TEXT NOT NULL,
                      evidence TEXT NOT NULL,
                      rollback_of INTEGER,
                      created_at INTEGER NOT NULL,
                      prev_mac TEXT NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE INDEX policy_trust_changes_domain ON policy_trust_changes(domain, id);
                    CREATE TRIGGER policy_trust_changes_no_update BEFORE UPDATE ON policy_trust_changes
                      BEGIN SELECT RAISE(ABORT, 'trust changes are append-only'); END;
                    CREATE TRIGGER policy_trust_changes_no_delete BEFORE DELETE ON policy_trust_changes
                      BEGIN SELECT RAISE(ABORT, 'trust changes are append-only'); END;
                    CREATE TABLE policy_approvals (
                      id TEXT PRIMARY KEY,
                      principal TEXT NOT NULL,
                      domain TEXT NOT NULL,
                      tool TEXT NOT NULL,
                      arguments TEXT NOT NULL,
                      destination TEXT NOT NULL,
                      request_hash TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE INDEX policy_approvals_created ON policy_approvals(created_at);
                    CREATE TABLE policy_approval_decisions (
                      approval_id TEXT PRIMARY KEY REFERENCES policy_approvals(id),
                      seq INTEGER NOT NULL UNIQUE,
                      decision TEXT NOT NULL,
                      actor TEXT NOT NULL,
                      reason TEXT NOT NULL,
                      domain TEXT NOT NULL,
                      request_hash TEXT NOT NULL,
                      decided_at INTEGER NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE policy_approval_uses (
                      approval_id TEXT PRIMARY KEY REFERENCES policy_approvals(id),
                      request_hash TEXT NOT NULL,
                      used_at INTEGER NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE policy_contacts (
                      id TEXT PRIMARY KEY,
                      channel TEXT NOT NULL,
                      sender_id TEXT NOT NULL,
                      ceilings TEXT NOT NULL,
                      added_by TEXT NOT NULL,
                      added_at INTEGER NOT NULL,
                      mac TEXT NOT NULL,
                      UNIQUE (channel, sender_id)
                    );
                    CREATE TABLE policy_taint (
                      id INTEGER PRIMARY KEY,
                      conversation TEXT NOT NULL,
                      event TEXT NOT NULL,
                      reason TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE INDEX policy_taint_conversation ON policy_taint(conversation, id);
                    """
            )
        }
        migrator.registerMigration("2026-11-24 owner") { db in
            // Owner authentication (MoatAuth). Times are milliseconds since 1970. Rows that grant power
            // (the owner, sessions, API tokens, recovery codes, setup tokens) carry an HMAC keyed from the
            // vault, so writing this file alone cannot log anyone in. Secrets are stored only as hashes.
            try db.execute(
                sql: """
                    CREATE TABLE auth_owner (
                      id INTEGER PRIMARY KEY CHECK (id = 1),
                      username TEXT NOT NULL,
                      password_hash TEXT NOT NULL,
                      totp_enabled INTEGER NOT NULL DEFAULT 0,
                      totp_last_step INTEGER NOT NULL DEFAULT 0,
                      token_version INTEGER NOT NULL,
                      created_at INTEGER NOT NULL,
                      updated_at INTEGER NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE auth_setup_tokens (
                      token_hash TEXT PRIMARY KEY,
                      created_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      used_at INTEGER,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE auth_sessions (
                      id_hash TEXT PRIMARY KEY,
                      token_version INTEGER NOT NULL,
                      created_at INTEGER NOT NULL,
                      last_seen_at INTEGER NOT NULL,
                      source TEXT NOT NULL,
                      user_agent TEXT NOT NULL,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE auth_api_tokens (
                      prefix TEXT PRIMARY KEY,
                      name TEXT NOT NULL,
                      scope TEXT NOT NULL,
                      token_hash TEXT NOT NULL,
                      created_at INTEGER NOT NULL,
                      expires_at INTEGER,
                      last_used_at INTEGER,
                      revoked_at INTEGER,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE auth_recovery_codes (
                      code_hash TEXT PRIMARY KEY,
                      created_at INTEGER NOT NULL,
                      used_at INTEGER,
                      mac TEXT NOT NULL
                    );
                    CREATE TABLE auth_failures (
                      id INTEGER PRIMARY KEY,
                      kind TEXT NOT NULL,
                      key TEXT NOT NULL,
                      at INTEGER NOT NULL
                    );
                    CREATE INDEX auth_failures_key ON auth_failures(kind, key, at);
                    """
            )
        }
        return migrator
    }()

    // MARK: Errors

    /// Refuses a file that is not an SQLite database, or is another program's, without writing to it.
    static func checkOwnership(_ path: String) throws(StoreError) {
        try checkHeader(path)
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
                let tableCount =
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                if appID != applicationID && (appID != 0 || tableCount > 0) {
                    throw StoreError(
                        .foreignDatabase,
                        "\(path) is an SQLite database of another program, not Moat's; "
                            + "move it away (Moat will create a new one) or point --home at another directory"
                    )
                }
            }
        } catch {
            throw describe(error, path: path)
        }
    }

    /// A non-empty file must start with the SQLite header; checking it first gives a clear message
    /// instead of a low-level SQLite error in the middle of start-up.
    static func checkHeader(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw StoreError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { _ = Glibc.close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        let count = read(fd, &header, 16)
        let magic = Array("SQLite format 3\0".utf8)
        if count != 16 || header != magic {
            throw StoreError(
                .notADatabase,
                "\(path) is not an SQLite database (its first bytes are not the SQLite header); "
                    + "if it is damaged, restore it from a backup, or move it away to start with an empty state"
            )
        }
    }

    static func describe(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let error = error as? DatabaseError else {
            return StoreError(.io, "cannot use \(path): \(error)")
        }
        switch error.resultCode {
        case .SQLITE_NOTADB:
            return StoreError(
                .notADatabase,
                "\(path) is not an SQLite database; restore it from a backup, or move it away to start empty"
            )
        case .SQLITE_CORRUPT:
            return StoreError(
                .corrupt,
                "\(path) is damaged (SQLite reports corruption); restore it from a backup, "
                    + "or move it away to start with an empty state"
            )
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_IOERR, .SQLITE_FULL:
            // `message` is SQLite's own text; GRDB keeps bound arguments out of it by default.
            return StoreError(.io, "cannot use \(path): \(error.message ?? "\(error.resultCode)")")
        default:
            return StoreError(.io, "database error on \(path): \(error.message ?? "\(error.resultCode)")")
        }
    }
}

extension MoatDatabase {
    /// Whether `path` (a Moat database, opened read-only) has an owner row; nil when the owner table
    /// does not exist yet (a database from before owner access) or cannot be read.
    public static func ownerExists(path: String) -> Bool? {
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db -> Bool? in
            guard try db.tableExists("auth_owner") else { return nil }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_owner") ?? 0 > 0
        }
    }

    /// Checks an existing `moat.db` without changing it (for `moat doctor`): that it is Moat's, holds
    /// only the schema Moat's migrations create, and is sound.
    ///
    /// - Returns: the integrity problems; empty when sound.
    /// - Throws: ``StoreError`` when the file is not a database, another program's, unreadable, or holds
    ///   schema objects Moat did not create.
    public static func inspect(path: String) throws(StoreError) -> [String] {
        try checkOwnership(path)
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                try checkSchema(db, path: path)
                let rows = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                return rows == ["ok"] ? [] : rows
            }
        } catch {
            throw describe(error, path: path)
        }
    }
}
