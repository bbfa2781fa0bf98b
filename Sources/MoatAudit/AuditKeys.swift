public import Crypto
import Foundation
public import MoatCore
import MoatVault

/// The keys the audit log needs, held in the vault and handed over when it is unlocked.
///
/// - `fingerprintKey` keys the short HMAC fingerprints that stand in for redacted values, so the owner
///   can tell whether two entries saw the same value without the log holding it.
/// - `signingKey` (Ed25519) signs checkpoints; its public half verifies them.
/// - `scrub` replaces every vault secret value in a string with `[secret:NAME]`; `scrubbing` gives the
///   same scrub for the many strings of one entry, checking the vault for changes once (not per string).
public struct AuditKeys: Sendable {
    /// Both keys stay in ``SecretBytes`` (locked, left out of core dumps) for the life of the process;
    /// swift-crypto gets a copy for one operation at a time (``fingerprintKey``, ``signingKey``).
    private let fingerprintSecret: SecretBytes
    private let signingSeed: SecretBytes
    /// The public key that verifies this installation's checkpoints.
    public let verifyingKey: Curve25519.Signing.PublicKey
    public let scrub: @Sendable (String) -> String
    /// A scrub of this moment, for all the strings of one entry (nil: `scrub` itself).
    public let scrubbing: (@Sendable () -> @Sendable (String) -> String)?

    public init(
        fingerprintKey: SymmetricKey,
        signingKey: Curve25519.Signing.PrivateKey,
        scrub: @escaping @Sendable (String) -> String,
        scrubbing: (@Sendable () -> @Sendable (String) -> String)? = nil
    ) {
        self.fingerprintSecret = SecretBytes(copying: fingerprintKey)
        self.signingSeed = signingKey.rawRepresentation.withUnsafeBytes { SecretBytes(copying: $0) }
        self.verifyingKey = signingKey.publicKey
        self.scrub = scrub
        self.scrubbing = scrubbing
    }

    /// The keys from their secret bytes: a 32-byte HMAC key and a 32-byte Ed25519 seed.
    public init(
        fingerprintSecret: SecretBytes,
        signingSeed: SecretBytes,
        scrub: @escaping @Sendable (String) -> String,
        scrubbing: (@Sendable () -> @Sendable (String) -> String)? = nil
    ) throws {
        self.verifyingKey = try signingSeed.withUnsafeBytes {
            try Curve25519.Signing.PrivateKey(rawRepresentation: $0).publicKey
        }
        self.fingerprintSecret = fingerprintSecret
        self.signingSeed = signingSeed
        self.scrub = scrub
        self.scrubbing = scrubbing
    }

    /// A short-lived copy of the fingerprint HMAC key, for one computation.
    public var fingerprintKey: SymmetricKey { fingerprintSecret.withSymmetricKey { $0 } }

    /// A short-lived copy of the signing key, for one signature (the seed was checked at init).
    public var signingKey: Curve25519.Signing.PrivateKey {
        do {
            return try signingSeed.withUnsafeBytes { try Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
        } catch {
            preconditionFailure("the audit signing seed was checked when the keys were made")
        }
    }
}

/// Redacts and scrubs an event before it is hashed and stored.
struct AuditRedactor: Sendable {
    /// Metadata keys whose values never reach the log, matched case-insensitively anywhere in the key
    /// (so `X-Api-Key`, `sessionId` and `refresh_token` are all caught) and at any depth.
    static let sensitiveWords = [
        "password", "secret", "token", "key", "credential", "auth", "bearer", "apikey", "cookie", "session",
    ]
    /// Canonical metadata larger than this is refused: the log is for facts, not payloads.
    static let maximumMetadataBytes = 16 * 1024
    /// Longer string fields are cut (with a marker) so one entry cannot bloat the chain.
    static let maximumFieldCharacters = 512

    let keys: AuditKeys

    /// ``sensitiveWords`` as bytes, for the ASCII fast path of ``isSensitive(_:)``.
    private static let sensitiveBytes = sensitiveWords.map { Array($0.utf8) }

    static func isSensitive(_ key: String) -> Bool {
        // An ASCII key is lowered byte by byte (what `lowercased()` does to ASCII) and searched without
        // Foundation; any other key takes the Unicode path (the Kelvin sign lowers to `k`).
        var bytes = Array(key.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else {
            let lowered = key.lowercased()
            return sensitiveWords.contains { lowered.contains($0) }
        }
        for index in bytes.indices where (0x41...0x5A).contains(bytes[index]) { bytes[index] |= 0x20 }
        return sensitiveBytes.contains { word in
            guard bytes.count >= word.count else { return false }
            return (0...(bytes.count - word.count)).contains { start in
                bytes[start..<start + word.count].elementsEqual(word)
            }
        }
    }

    /// `[REDACTED] hmac:` followed by the first 8 bytes (hex) of HMAC-SHA256 over the value's
    /// canonical JSON.
    func fingerprint(_ value: AuditValue) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(value.canonicalJSON.utf8), using: keys.fingerprintKey)
        return "[REDACTED] hmac:" + AuditChain.hex(Array(mac).prefix(8))
    }

    func redact(_ value: AuditValue, _ scrub: (String) -> String) -> AuditValue {
        switch value {
        case .string(let text):
            return .string(scrub(text))
        case .array(let items):
            return .array(items.map { redact($0, scrub) })
        case .object(let members):
            var result: [String: AuditValue] = [:]
            result.reserveCapacity(members.count)
            for (key, member) in members {
                result[scrub(key)] = Self.isSensitive(key) ? .string(fingerprint(member)) : redact(member, scrub)
            }
            return .object(result)
        case .int, .bool, .null:
            return value
        }
    }

    func field(_ text: String, _ scrub: (String) -> String) -> String {
        let scrubbed = scrub(text)
        guard scrubbed.count > Self.maximumFieldCharacters else { return scrubbed }
        return String(scrubbed.prefix(Self.maximumFieldCharacters)) + "…[cut]"
    }

    /// The event's stored fields: every string scrubbed, metadata redacted and canonical.
    func prepare(_ event: AuditEvent) throws(AuditError) -> PreparedEvent {
        guard Self.isValidAction(event.action) else {
            throw AuditError(
                .invalidEvent,
                "audit action must be a dotted lower-case name such as vault.add (got \(event.action.count) characters)"
            )
        }
        let scrub = keys.scrubbing?() ?? keys.scrub
        let metadata = redact(.object(event.metadata), scrub).canonicalJSON
        guard metadata.utf8.count <= Self.maximumMetadataBytes else {
            throw AuditError(.invalidEvent, "audit metadata for \(event.action) is larger than 16 KiB; record less")
        }
        return PreparedEvent(
            actor: field(event.actor, scrub),
            action: event.action,
            target: field(event.target, scrub),
            sourceIP: field(event.sourceIP, scrub),
            userAgent: field(event.userAgent, scrub),
            outcome: field(event.outcome, scrub),
            metadata: metadata
        )
    }

    /// Dot-separated parts (at least two), each a lower-case ASCII letter followed by lower-case ASCII
    /// letters, digits, `_` or `-`; at most 64 bytes in all.
    static func isValidAction(_ action: String) -> Bool {
        let bytes = action.utf8
        guard bytes.count <= 64 else { return false }
        var parts = 1
        var partStart = true
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                if partStart { return false }
                parts += 1
                partStart = true
                continue
            }
            let letter = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            if partStart {
                guard letter else { return false }
                partStart = false
                continue
            }
            let digit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            guard letter || digit || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") else { return false }
        }
        return parts >= 2 && !partStart
    }
}

/// An event after redaction, ready to be numbered and chained.
struct PreparedEvent: Sendable {
    let actor: String
    let action: String
    let target: String
    let sourceIP: String
    let userAgent: String
    let outcome: String
    let metadata: String
}
