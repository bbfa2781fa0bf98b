public import Crypto
import GRDB
public import MoatStore

/// Recomputes the chain and checks every stored checkpoint, and optionally one the owner kept.
public enum AuditVerifier {
    /// What `moat audit verify` found.
    public enum Report: Sendable, Equatable {
        /// Every entry links and hashes correctly; `lastCheckpoint` is the newest stored checkpoint's count.
        case intact(entries: Int64, lastCheckpoint: Int64?)
        /// The first problem found, at entry `sequence`.
        case broken(sequence: Int64, reason: String)

        /// The one-line summary printed to the owner.
        public var summary: String {
            switch self {
            case .intact(let entries, let last):
                let checkpoint = last.map { "last checkpoint at entry \($0)" } ?? "no checkpoint yet"
                return "✓ chain intact: \(entries) entries verified, \(checkpoint)"
            case .broken(let sequence, let reason):
                return "✗ chain broken at entry \(sequence): \(reason)"
            }
        }
    }

    /// Verifies the log in `database`.
    ///
    /// - Parameters:
    ///   - publicKey: the audit key's public half (from the vault), which stored checkpoints must verify under.
    ///   - kept: a checkpoint the owner kept elsewhere (already parsed and signature-checked).
    public static func verify(
        _ database: MoatDatabase,
        publicKey: Curve25519.Signing.PublicKey,
        kept: AuditCheckpoint? = nil
    ) throws -> Report {
        try database.pool.read { db in
            let checkpoints = try AuditStore.checkpoints(db)
            var checkpointIndex = 0
            var expected: Int64 = 1
            var previous = AuditChain.genesis
            var buffer: [UInt8] = []
            buffer.reserveCapacity(512)
            let cursor = try Row.fetchCursor(db, sql: "SELECT \(AuditStore.columns) FROM audit_entries ORDER BY seq")
            var headAtKept: String?
            while let row = try cursor.next() {
                let sequence: Int64 = row[0]
                if sequence != expected {
                    return .broken(
                        sequence: expected,
                        reason: sequence > expected
                            ? "entries \(expected)…\(sequence - 1) are missing (deleted)"
                            : "sequence numbers out of order"
                    )
                }
                let storedPrevious: String = row[9]
                if storedPrevious != previous {
                    return .broken(
                        sequence: sequence,
                        reason: "does not link to entry \(sequence - 1) (inserted, swapped or reordered)")
                }
                buffer.removeAll(keepingCapacity: true)
                AuditChain.encode(
                    into: &buffer,
                    fields: [String(sequence), row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]],
                    previousHash: previous
                )
                let computed = AuditChain.hex(SHA256.hash(data: buffer))
                let stored: String = row[10]
                if computed != stored {
                    return .broken(sequence: sequence, reason: "its contents do not match its hash (edited)")
                }
                while checkpointIndex < checkpoints.count && checkpoints[checkpointIndex].count < sequence {
                    checkpointIndex += 1  // a checkpoint at 0 entries or one skipped below: handled after the loop
                }
                if checkpointIndex < checkpoints.count && checkpoints[checkpointIndex].count == sequence {
                    if let problem = check(checkpoints[checkpointIndex], head: computed, publicKey: publicKey) {
                        return .broken(sequence: sequence, reason: problem)
                    }
                    checkpointIndex += 1
                }
                if let kept, kept.count == sequence { headAtKept = computed }
                previous = computed
                expected = sequence + 1
            }
            let total = expected - 1
            for checkpoint in checkpoints where checkpoint.count > total {
                return .broken(
                    sequence: total + 1,
                    reason:
                        "a stored checkpoint covers \(checkpoint.count) entries but only \(total) exist (tail truncated)"
                )
            }
            for checkpoint in checkpoints where checkpoint.count == 0 {
                if let problem = check(checkpoint, head: AuditChain.genesis, publicKey: publicKey) {
                    return .broken(sequence: 0, reason: problem)
                }
            }
            if let kept {
                if kept.count > total {
                    return .broken(
                        sequence: total + 1,
                        reason: "your kept checkpoint covers \(kept.count) entries but only \(total) exist "
                            + "(tail truncated or an older database restored)"
                    )
                }
                let head = kept.count == 0 ? AuditChain.genesis : headAtKept
                if head != kept.head {
                    return .broken(
                        sequence: kept.count,
                        reason: "differs from your kept checkpoint (history rewritten or an older database restored)"
                    )
                }
            }
            return .intact(entries: total, lastCheckpoint: checkpoints.last.map(\.count))
        }
    }

    private static func check(
        _ checkpoint: AuditCheckpoint,
        head: String,
        publicKey: Curve25519.Signing.PublicKey
    ) -> String? {
        if !checkpoint.isValid(publicKey: publicKey) {
            return "the stored checkpoint at entry \(checkpoint.count) has an invalid signature (forged or altered)"
        }
        if checkpoint.head != head {
            return "the signed checkpoint at entry \(checkpoint.count) does not match the chain (history rewritten)"
        }
        return nil
    }
}
