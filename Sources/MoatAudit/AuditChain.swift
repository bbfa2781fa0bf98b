import Crypto
import MoatCore

/// The hash chain's definition: the canonical encoding of an entry and the genesis value.
///
/// Docs/Audit.md specifies this byte for byte so an outside tool can verify a log:
///
///     hash = SHA-256( "moat-audit-v1" 0x00
///                     || for each of seq, time, actor, action, target, source_ip, user_agent, outcome,
///                        metadata: u32 big-endian byte length || UTF-8 bytes
///                     || previous hash (32 raw bytes) )
///
/// `seq` is written in decimal. Length prefixes make the encoding unambiguous: no field can
/// borrow bytes from its neighbour.
public enum AuditChain {
    /// The previous hash of entry 1: 32 zero bytes.
    public static let genesis = String(repeating: "0", count: 64)

    static let domain: [UInt8] = Array("moat-audit-v1".utf8) + [0]

    /// The hex hash of an entry with these fields.
    public static func hash(
        sequence: Int64,
        time: String,
        actor: String,
        action: String,
        target: String,
        sourceIP: String,
        userAgent: String,
        outcome: String,
        metadata: String,
        previousHash: String
    ) -> String {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        encode(
            into: &buffer,
            fields: [String(sequence), time, actor, action, target, sourceIP, userAgent, outcome, metadata],
            previousHash: previousHash
        )
        return hex(SHA256.hash(data: buffer))
    }

    /// Recomputes the hash of a stored entry (ignores its stored `hash`).
    public static func recompute(_ entry: AuditEntry) -> String {
        hash(
            sequence: entry.sequence,
            time: entry.time,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            sourceIP: entry.sourceIP,
            userAgent: entry.userAgent,
            outcome: entry.outcome,
            metadata: entry.metadata,
            previousHash: entry.previousHash
        )
    }

    static func encode(into buffer: inout [UInt8], fields: [String], previousHash: String) {
        buffer += domain
        for field in fields {
            let count = field.utf8.count
            buffer += [
                UInt8(count >> 24 & 0xff), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff),
            ]
            buffer += field.utf8
        }
        buffer += unhex(previousHash) ?? [UInt8](repeating: 0xff, count: 32)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 { Hex.encode(digest) }

    /// Parses 64 lowercase hex digits into 32 bytes; nil for anything else.
    static func unhex(_ text: String) -> [UInt8]? {
        text.utf8.count == 64 ? Hex.decode(text) : nil
    }
}
