import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore

/// The audit log's tables, in the installation's order.
let auditMigrations = [StoreSchema.meta, AuditSchema.log]

/// `moat-bench audit`'s two figures (Docs/Audit.md).
struct AuditFigures {
    /// Durable entries per second from `tasks` concurrent callers (group commit, synchronous=FULL).
    var appendsPerSecond: Double
    var appended: Int
    /// Seconds to verify a log of `verified` entries.
    var verifySeconds: Double
    var verified: Int
}

/// Durable appends from `tasks` concurrent callers, then the verification of a log of `entries` entries,
/// each in its own database under `directory`. Prints one line per figure.
func auditBenchmark(directory: String, appends: Int, tasks: Int, entries: Int) async throws -> AuditFigures {
    let keys = AuditKeys(
        fingerprintKey: SymmetricKey(size: .bits256),
        signingKey: Curve25519.Signing.PrivateKey(),
        scrub: { $0 }
    )
    let (total, appendSeconds) = try await durableAppends(
        directory: directory, keys: keys, appends: appends, tasks: tasks)
    print(
        String(
            format: "append: %d durable entries from %d tasks in %.2f s = %.0f entries/s",
            total, tasks, appendSeconds, Double(total) / appendSeconds
        )
    )
    let (verifySeconds, summary) = try verifyLog(directory: directory, keys: keys, entries: entries)
    print(String(format: "verify: %d entries in %.2f s", entries, verifySeconds))
    print("        \(summary)")
    return AuditFigures(
        appendsPerSecond: Double(total) / appendSeconds, appended: total, verifySeconds: verifySeconds,
        verified: entries)
}

/// `appends` entries appended by `tasks` callers at once; returns how many and the seconds taken.
private func durableAppends(
    directory: String, keys: AuditKeys, appends: Int, tasks: Int
) async throws -> (Int, Double) {
    let database = try MoatDatabase(path: directory + "/append.db", migrations: auditMigrations)
    defer { try? database.close() }
    let log = AuditLog(database: database, keys: keys, origin: "moat/bench")
    let elapsed = try await ContinuousClock().measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for index in 0..<(appends / tasks) {
                        try await log.append(
                            AuditEvent(
                                actor: "bench-\(task)",
                                action: "bench.append",
                                target: "item-\(index)",
                                sourceIP: "127.0.0.1",
                                metadata: ["index": .int(Int64(index)), "token": "redact-me"]
                            )
                        )
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    return ((appends / tasks) * tasks, seconds(elapsed))
}

/// Verifies a log of `entries` entries; returns the seconds and the verifier's summary. The log is built
/// with plain inserts of correctly chained rows (building it through append would only measure appends).
private func verifyLog(directory: String, keys: AuditKeys, entries: Int) throws -> (Double, String) {
    let database = try MoatDatabase(path: directory + "/verify.db", migrations: auditMigrations)
    defer { try? database.close() }
    let time = AuditLog.timestamp(Date())
    try database.pool.write { db in
        var previous = AuditChain.genesis
        let statement = try db.makeStatement(
            sql: """
                INSERT INTO audit_entries
                  (seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for sequence in 1...Int64(entries) {
            let target = "item-\(sequence)"
            let metadata = #"{"index":\#(sequence),"token":"[REDACTED] hmac:0011223344556677"}"#
            let hash = AuditChain.hash(
                sequence: sequence, time: time, actor: "owner", action: "bench.verify", target: target,
                sourceIP: "127.0.0.1", userAgent: "moat-bench", outcome: "success", metadata: metadata,
                previousHash: previous
            )
            try statement.execute(arguments: [
                sequence, time, "owner", "bench.verify", target, "127.0.0.1", "moat-bench", "success", metadata,
                previous, hash,
            ])
            previous = hash
        }
    }
    var report: AuditVerifier.Report?
    let elapsed = try ContinuousClock().measure {
        report = try AuditVerifier.verify(database, publicKey: keys.verifyingKey)
    }
    // A verifier that stopped early would look fast: only a whole intact chain counts.
    guard case .intact(let verified, _) = report, verified == entries else {
        throw BenchFailure("the verifier did not find the \(entries) entries intact: \(report?.summary ?? "no report")")
    }
    return (seconds(elapsed), report?.summary ?? "")
}

/// A benchmark that could not measure what it meant to (a server that did not start, a failed request).
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
