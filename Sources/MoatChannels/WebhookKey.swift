public import MoatCore
public import MoatVault

/// The rule every webhook key follows (a delivery's key and a callback's key alike).
public enum WebhookKey {
    /// The shortest key accepted: 32 bytes, so one captured request cannot be brute-forced offline.
    public static let minimumBytes = 32

    /// The key held by vault secret `secret` when it is usable: present, at least ``minimumBytes`` long,
    /// and a key no tool can use (a secret a tool may send somewhere could be used to sign as anyone).
    /// Value and policy come from one read of the vault.
    ///
    /// - Returns: the key, or what the owner must fix (naming the secret, never its value).
    public static func usable(_ secret: String, in vault: UnlockedVault) -> Result<SecretBytes, ChannelError> {
        guard let entry = try? vault.entry(named: secret), entry.value.count >= minimumBytes else {
            return .failure(
                ChannelError(
                    .configuration,
                    "store a key of at least \(minimumBytes) random bytes as \(secret) (`moat vault add \(secret)`)"))
        }
        guard entry.policy.tools.isEmpty, entry.policy.hosts.isEmpty else {
            return .failure(
                ChannelError(
                    .configuration,
                    "its key \(secret) may be used by tools (--allow-tool/--allow-host); store the key again "
                        + "without a policy"))
        }
        return .success(entry.value)
    }
}
