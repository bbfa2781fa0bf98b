import MoatCore
@_spi(Testing) public import MoatVault

/// One vault made per test process and copied for each in-process fixture, so a fixture pays for a file
/// copy instead of an Argon2 derivation (about 70 fixtures do; like ``ServedHome`` for the real binary).
///
/// Every copy starts empty, with the same password and salt; what a fixture writes (the owner
/// authority's keys, secrets) stays in its own copy. Tests of key derivation, unlocking, re-keying or
/// sealing make their own vault.
public enum PreparedVault {
    /// The master password of every copy.
    public static let password = "correct horse battery staple"

    private static let template = Result { () throws -> (TemporaryDirectory, UnlockedVault) in
        let directory = TemporaryDirectory("moat-vault-template")
        var bytes = Array(password.utf8)
        let vault = try UnlockedVault.create(
            paths: VaultPaths(stateDirectory: directory.path), password: SecretBytes(wiping: &bytes),
            parameters: try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1))
        return (directory, vault)
    }

    /// A fresh copy at `paths` (its directory must exist), open, without deriving a key.
    public static func copy(to paths: VaultPaths) throws -> UnlockedVault {
        try template.get().1.copy(to: paths)
    }
}
