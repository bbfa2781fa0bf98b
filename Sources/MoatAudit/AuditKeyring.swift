public import Crypto
import Foundation
import MoatCore
public import MoatVault

/// Takes the audit log's keys out of the vault, creating them on first use.
///
/// The keys are vault entries like any other (so rekey, backup and the seal cover them), with a policy
/// that allows no tool and no host: `{{secret:…}}` can never send them anywhere.
public enum AuditKeyring {
    /// HMAC key for redaction fingerprints (32 random bytes).
    public static let fingerprintKeyName = "MOAT_AUDIT_FINGERPRINT_KEY"
    /// Ed25519 private key (32-byte seed) that signs checkpoints.
    public static let signingKeyName = "MOAT_AUDIT_SIGNING_KEY"

    /// The keys from `vault`, generating and storing any that is missing.
    public static func keys(from vault: UnlockedVault) throws -> AuditKeys {
        try AuditKeys(
            fingerprintSecret: try vault.internalKey(named: fingerprintKeyName),
            signingSeed: try vault.internalKey(named: signingKeyName),
            scrub: { vault.scrub($0) })
    }

    /// The public key that verifies this vault's checkpoints, without creating anything.
    public static func verifyingKey(from vault: UnlockedVault) throws -> Curve25519.Signing.PublicKey? {
        guard let seed = try vault.value(named: signingKeyName) else { return nil }
        return try privateKey(seed).publicKey
    }

    private static func privateKey(_ seed: SecretBytes) throws -> Curve25519.Signing.PrivateKey {
        try seed.withUnsafeBytes { try Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
    }
}
