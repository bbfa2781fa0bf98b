import GRDB
public import MoatStore

/// The policy engine's tables in `moat.db`: trust changes, approvals (with their decisions and uses),
/// contact grants and conversation taint.
public enum PolicySchema {
    /// `2026-11-23 policy`.
    public static let tables = SchemaMigration("2026-11-23 policy") { db in
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
}

extension PolicySchema {
    /// `2026-12-06 policy owner bindings`: the owner's own account on a messaging channel (issue 17). A row
    /// makes that sender the owner, so it carries a MAC: a planted or edited row binds nobody.
    public static let ownerBindings = SchemaMigration("2026-12-06 policy owner bindings") { db in
        try db.execute(
            sql: """
                CREATE TABLE policy_owner_bindings (
                  channel TEXT PRIMARY KEY,
                  sender_id TEXT NOT NULL,
                  conversation TEXT NOT NULL,
                  bound_by TEXT NOT NULL,
                  bound_at INTEGER NOT NULL,
                  mac TEXT NOT NULL
                );
                """
        )
    }
}
