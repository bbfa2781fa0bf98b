public import Crypto
import Foundation
import MoatCore
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
        let report = try await onThreadOfItsOwn { try AuditVerifier.verify(database, publicKey: key, kept: kept) }
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
    /// ``export(_:filter:_:)`` for a download, in pages: each call of `next()` reads the next
    /// `pageSize` entries (one short read on the database's own queue) and returns them as text, each
    /// line ending in a newline, the CSV header before the first; nil after the last. The entries are
    /// those stored when the export began (appends during it are left out), so a long log is sent as it
    /// is read, never held whole in memory.
    public func pages(of database: MoatDatabase, filter: AuditReader.Filter, pageSize: Int = 2000) -> Pages {
        Pages(format: self, database: database, filter: filter, pageSize: max(1, pageSize))
    }

    /// The pages of one export (``pages(of:filter:pageSize:)``).
    public struct Pages: Sendable {
        let format: AuditExportFormat
        let database: MoatDatabase
        var filter: AuditReader.Filter
        let pageSize: Int
        var started = false
        var finished = false

        init(format: AuditExportFormat, database: MoatDatabase, filter: AuditReader.Filter, pageSize: Int) {
            self.format = format
            self.database = database
            self.filter = filter
            self.pageSize = pageSize
        }

        public mutating func next() async throws -> String? {
            guard !finished else { return nil }
            var text = ""
            if !started {
                started = true
                // The end is fixed now: what is appended while the download runs waits for the next one.
                let last = try await AuditReader.lastSequence(of: database)
                filter.beforeSequence = min(filter.beforeSequence ?? .max, last + 1)
                if format == .csv { text = AuditExportFormat.csvHeader + "\n" }
            }
            let entries = try await AuditReader.page(of: database, filter: filter, limit: pageSize)
            for entry in entries { text += format.line(entry) + "\n" }
            if let last = entries.last, entries.count == pageSize {
                filter.afterSequence = last.sequence
            } else {
                finished = true
            }
            return text.isEmpty && finished ? nil : text
        }
    }
}
