import GRDB
public import MoatStore
public import MoatVault

/// MoatChannels' tables in `moat.db` (issue 17): each channel's saved cursor, the pending pairing and
/// owner-binding codes, and the hourly count of pairing attempts.
public enum ChannelSchema {
    /// `2026-12-06 channels`.
    public static let tables = SchemaMigration("2026-12-06 channels") { db in
        // `channel_codes` rows carry `mac` (`ChannelKeyring`): a row names the sender a code admits, so an
        // edited row must not admit another. The code itself is never stored (it is derived from the row's
        // random id under the vault key, see `PairingCode`). Rows are deleted when they expire: at most
        // `pending_per_channel` pending pairings per channel, so strangers cannot fill the database.
        // Cursors carry no MAC: a changed cursor can only make a platform send again (the idempotency keys
        // drop what was handled) or skip messages, never admit anyone.
        try db.execute(
            sql: """
                CREATE TABLE channel_cursors (
                  channel TEXT PRIMARY KEY,
                  cursor TEXT NOT NULL,
                  updated_at INTEGER NOT NULL
                );
                CREATE TABLE channel_codes (
                  id TEXT PRIMARY KEY,
                  purpose TEXT NOT NULL,
                  channel TEXT NOT NULL,
                  sender_id TEXT NOT NULL,
                  conversation TEXT NOT NULL,
                  created_at INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL,
                  state TEXT NOT NULL,
                  mac TEXT NOT NULL
                );
                CREATE UNIQUE INDEX channel_codes_sender ON channel_codes(purpose, channel, sender_id);
                CREATE TABLE channel_pairing_hours (
                  hour INTEGER PRIMARY KEY,
                  attempts INTEGER NOT NULL
                );
                """
        )
    }
}

/// Takes the channels' row-MAC key out of the vault, creating it on first use (like `PolicyKeyring`: an
/// ordinary vault entry whose policy allows no tool and no host). It also derives the pairing codes.
public enum ChannelKeyring {
    /// The vault entry holding the 32-byte HMAC key.
    public static let macKeyName = "MOAT_CHANNELS_MAC_KEY"

    /// The authenticator keyed from `vault`, generating and storing the key when it is missing.
    public static func authenticator(from vault: UnlockedVault) throws -> RowAuthenticator {
        RowAuthenticator(secret: try vault.internalKey(named: macKeyName))
    }
}
