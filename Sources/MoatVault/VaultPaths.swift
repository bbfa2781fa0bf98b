/// The files of one vault, all in the state directory.
///
/// MoatVault does not know where the state directory is (MoatStore does): callers pass it in.
public struct VaultPaths: Sendable, Equatable {
    /// The state directory.
    public let directory: String

    public init(stateDirectory: String) {
        directory = stateDirectory
    }

    /// `vault.moat`: the encrypted secrets.
    public var vault: String { directory + "/vault.moat" }
    /// `vault.seal`: the vault password sealed to this machine (optional).
    public var seal: String { directory + "/vault.seal" }
    /// `vault.lock`: empty; its advisory lock serializes every process that writes the vault or seal.
    public var lock: String { directory + "/vault.lock" }
    /// `recovery-key.txt`: the generated master password, written only when `moat serve` created the
    /// vault without a terminal to show it on.
    public var recoveryKey: String { directory + "/recovery-key.txt" }
}
