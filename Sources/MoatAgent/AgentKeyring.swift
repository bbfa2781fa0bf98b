public import MoatStore
public import MoatVault

/// Takes the agent's row-MAC key out of the vault, creating it on first use (like `PolicyKeyring`: an
/// ordinary vault entry whose policy allows no tool and no host).
public enum AgentKeyring {
    /// The vault entry holding the 32-byte HMAC key.
    public static let macKeyName = "MOAT_AGENT_MAC_KEY"

    /// The authenticator keyed from `vault`, generating and storing the key when it is missing.
    public static func authenticator(from vault: UnlockedVault) throws -> RowAuthenticator {
        RowAuthenticator(secret: try vault.internalKey(named: macKeyName))
    }
}
