import GRDB
public import MoatStore

/// The owner authority's tables in `moat.db`: the owner, setup tokens, sessions, API tokens, recovery
/// codes and the failure counters behind the login limits.
public enum AuthSchema {
    /// `2026-11-24 owner`.
    public static let owner = SchemaMigration("2026-11-24 owner") { db in
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

    /// Whether the Moat database at `path` (opened read-only, for `moat doctor`) has an owner row; nil when
    /// the owner table does not exist yet (a database from before owner access) or cannot be read.
    public static func ownerExists(databasePath path: String) -> Bool? {
        let answer = MoatDatabase.readExisting(path: path) { db -> Bool? in
            guard try db.tableExists("auth_owner") else { return nil }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_owner") ?? 0 > 0
        }
        return answer ?? nil
    }
}
