public import Crypto
import Foundation
public import MoatStore

/// What `moat audit verify` and `moat audit checkpoint` do, for the CLI and the console alike: one
/// code path, so the page reports exactly what the command would.
extension AuditLog {
    /// The public key that verifies this log's checkpoints.
    public nonisolated var verifyingKey: Curve25519.Signing.PublicKey { keys.verifyingKey }

    /// Recomputes the whole chain and every stored checkpoint (and `kept`, one the owner kept elsewhere),
    /// then records `audit.verify` with the result — after it was computed, so recording it cannot change
    /// it. The reading runs on a thread of its own, not the cooperative pool (a long log takes a while).
    public func verifyAndRecord(kept: AuditCheckpoint?, actor: String = "owner") async throws -> AuditVerifier.Report {
        let (database, key) = (database, verifyingKey)
        let report = try await onOwnThread { try AuditVerifier.verify(database, publicKey: key, kept: kept) }
        var metadata: [String: AuditValue] = ["kept_checkpoint": .bool(kept != nil)]
        if let broken = report.brokenSequence { metadata["broken_at"] = .int(broken) }
        try await append(
            AuditEvent(
                actor: actor, action: "audit.verify", outcome: report.brokenSequence == nil ? "intact" : "broken",
                metadata: metadata))
        return report
    }

    /// Records `audit.checkpoint`, signs a checkpoint of the head and returns its note (the text the
    /// owner keeps elsewhere and gives to `moat audit verify --checkpoint FILE`) with its entry count.
    public func signedCheckpointNote(actor: String = "owner") async throws -> (note: String, count: Int64) {
        try await append(AuditEvent(actor: actor, action: "audit.checkpoint"))
        let checkpoint = try await writeCheckpoint()
        return (checkpoint.note(publicKey: verifyingKey), checkpoint.count)
    }
}

extension AuditVerifier.Report {
    /// The entry where the chain broke; nil when intact.
    public var brokenSequence: Int64? {
        if case .broken(let sequence, _) = self { return sequence }
        return nil
    }
}

extension AuditExportFormat {
    /// ``export(_:filter:_:)`` whole, as the text of a download (each line ending in a newline), read on
    /// a thread of its own rather than the cooperative pool.
    public func export(of database: MoatDatabase, filter: AuditReader.Filter) async throws -> String {
        try await onOwnThread {
            var text = ""
            try export(database, filter: filter) { line in text += line + "\n" }
            return text
        }
    }
}

/// Runs blocking database work (a whole-log read) on a new thread and waits for it without holding a
/// thread of the cooperative pool.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
