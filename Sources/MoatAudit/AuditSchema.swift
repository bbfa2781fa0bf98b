import GRDB
public import MoatStore

/// The audit log's tables in `moat.db`: `audit_entries` (the hash chain) and `audit_checkpoints`.
public enum AuditSchema {
    /// `2026-11-23 audit`.
    public static let log = SchemaMigration("2026-11-23 audit") { db in
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
}
