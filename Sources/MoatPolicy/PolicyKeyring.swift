public import MoatStore
public import MoatVault

/// Takes the policy row-MAC key out of the vault, creating it on first use.
///
/// Like the audit keys it is an ordinary vault entry whose policy allows no tool and no host, so
/// `{{secret:…}}` can never send it anywhere and rekey, backup and the seal cover it.
public enum PolicyKeyring {
    /// The vault entry holding the 32-byte HMAC key.
    public static let macKeyName = "MOAT_POLICY_MAC_KEY"

    /// The authenticator keyed from `vault`, generating and storing the key when it is missing.
    public static func authenticator(from vault: UnlockedVault) throws -> RowAuthenticator {
        RowAuthenticator(secret: try vault.internalKey(named: macKeyName))
    }
}
