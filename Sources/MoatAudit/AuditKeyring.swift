public import Crypto
import Foundation
public import MoatCore
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
            scrub: { vault.scrub($0) }, scrubbing: { vault.scrubber() })
    }

    /// Fresh keys for a vault about to be created (``UnlockedVault/create(paths:password:parameters:seed:now:record:)``
    /// takes them as its seed), so the creation itself can be recorded with the keys it brings.
    public static func freshSeed() -> [String: SecretBytes] {
        var seed: [String: SecretBytes] = [:]
        var generator = SystemRandomNumberGenerator()
        for name in [fingerprintKeyName, signingKeyName] {
            var bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            seed[name] = SecretBytes(wiping: &bytes)
        }
        return seed
    }

    /// The keys from `seed` (see ``freshSeed()``), before the vault that will hold them exists.
    public static func keys(fromSeed seed: [String: SecretBytes]) throws -> AuditKeys {
        guard let fingerprint = seed[fingerprintKeyName], let signingSeed = seed[signingKeyName] else {
            throw AuditError(.invalidEvent, "the seed does not hold the audit keys")
        }
        // Nothing else is in a vault being created, so there is nothing to scrub yet.
        return try AuditKeys(fingerprintSecret: fingerprint, signingSeed: signingSeed, scrub: { $0 })
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
