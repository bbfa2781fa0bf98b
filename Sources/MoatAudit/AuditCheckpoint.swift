public import Crypto
import Foundation

/// A signed statement "this log had `count` entries and its head hash was `head`", in the C2SP
/// signed-note layout used by transparency logs:
///
///     <origin>
///     <count>
///     <head hash, base64>
///
///     — <key name> <base64(key id || Ed25519 signature)>
///
/// The signature covers the three body lines including their newlines. The key id is the first four
/// bytes of SHA-256(key name || "\n" || 0x01 || public key), as C2SP defines for Ed25519. The owner
/// keeps a copy elsewhere; `moat audit verify --checkpoint FILE` then detects a truncated tail, a
/// rewritten history or a restored older database.
public struct AuditCheckpoint: Sendable, Equatable {
    public static let keyName = "moat-audit"

    public let origin: String
    public let count: Int64
    /// Hex SHA-256 of entry `count` (the genesis value when `count` is 0).
    public let head: String
    public let signature: [UInt8]

    /// Signs a new checkpoint.
    public init(origin: String, count: Int64, head: String, signingKey: Curve25519.Signing.PrivateKey) throws {
        self.origin = origin
        self.count = count
        self.head = head
        self.signature = Array(
            try signingKey.signature(for: Array(Self.body(origin: origin, count: count, head: head).utf8)))
    }

    init(origin: String, count: Int64, head: String, signature: [UInt8]) {
        self.origin = origin
        self.count = count
        self.head = head
        self.signature = signature
    }

    static func body(origin: String, count: Int64, head: String) -> String {
        let hashBytes = AuditChain.unhex(head) ?? []
        return "\(origin)\n\(count)\n\(Data(hashBytes).base64EncodedString())\n"
    }

    static func keyID(_ publicKey: Curve25519.Signing.PublicKey) -> [UInt8] {
        let material = Array("\(keyName)\n".utf8) + [0x01] + Array(publicKey.rawRepresentation)
        return Array(SHA256.hash(data: material).prefix(4))
    }

    /// The note text, as `moat audit checkpoint` prints it.
    public func note(publicKey: Curve25519.Signing.PublicKey) -> String {
        let signed = Data(Self.keyID(publicKey) + signature).base64EncodedString()
        return Self.body(origin: origin, count: count, head: head) + "\n— \(Self.keyName) \(signed)\n"
    }

    /// Whether the signature verifies under `publicKey`.
    public func isValid(publicKey: Curve25519.Signing.PublicKey) -> Bool {
        publicKey.isValidSignature(signature, for: Array(Self.body(origin: origin, count: count, head: head).utf8))
    }

    /// Parses a note and checks its signature; any malformation or a bad signature is an error.
    public static func parse(_ text: String, publicKey: Curve25519.Signing.PublicKey) throws(AuditError)
        -> AuditCheckpoint
    {
        func bad(_ why: String) -> AuditError { AuditError(.invalidCheckpoint, "checkpoint rejected: \(why)") }
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        guard let split = normalized.range(of: "\n\n") else { throw bad("no blank line between body and signature") }
        let bodyLines = normalized[..<split.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
        guard bodyLines.count == 3 else { throw bad("the body must have 3 lines: origin, count, head hash") }
        let origin = String(bodyLines[0])
        guard let count = Int64(bodyLines[1]), count >= 0 else { throw bad("the count line is not a number") }
        guard let hashData = Data(base64Encoded: String(bodyLines[2])), hashData.count == 32 else {
            throw bad("the head hash line is not a base64 SHA-256")
        }
        let head = AuditChain.hex(Array(hashData))
        let signatureLines = normalized[split.upperBound...].split(separator: "\n")
        let keyID = keyID(publicKey)
        for line in signatureLines {
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[0] == "—", parts[1] == Substring(keyName),
                let blob = Data(base64Encoded: String(parts[2])), blob.count == 4 + 64
            else { continue }
            guard Array(blob.prefix(4)) == keyID else { continue }
            let checkpoint = AuditCheckpoint(
                origin: origin, count: count, head: head, signature: Array(blob.dropFirst(4)))
            guard checkpoint.isValid(publicKey: publicKey) else { throw bad("the signature does not verify") }
            return checkpoint
        }
        throw bad("no signature by this installation's audit key")
    }
}
