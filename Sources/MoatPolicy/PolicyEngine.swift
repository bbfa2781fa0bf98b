public import Foundation
import GRDB
public import MoatAudit
public import MoatCore
public import MoatStore

/// The stateful half of the policy: trust levels with their history, approvals, contact grants and
/// conversation taint, kept in `moat.db` and protected by row MACs.
///
/// Every change is audited first and happens only once the audit entry is durable
/// (``AuditLog/performAfterAudit(_:_:)``). Every read verifies MACs: a row that fails is treated as
/// absent and reported once per process as a `policy.tamper` audit entry. The decisions themselves are
/// the pure functions in ``TrustDecision``.
public actor PolicyEngine {
    let database: MoatDatabase
    let authenticator: RowAuthenticator
    let audit: AuditLog
    public nonisolated let settings: PolicySettings
    let now: @Sendable () -> Date
    /// Rows already reported as tampered, so a broken row is audited once, not on every read.
    var reportedTamper = Set<String>()

    public init(
        database: MoatDatabase,
        authenticator: RowAuthenticator,
        audit: AuditLog,
        settings: PolicySettings = PolicySettings(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.database = database
        self.authenticator = authenticator
        self.audit = audit
        self.settings = settings
        self.now = now
    }

    /// Milliseconds since 1970, the unit every policy table stores time in.
    func nowMillis() -> Int64 { Self.millis(now()) }

    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// RFC 3339 UTC with milliseconds, for display.
    public nonisolated static func timestamp(_ millis: Int64) -> String {
        AuditLog.timestamp(Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    /// Audits rows whose MAC failed (each once).
    func reportTamper(_ findings: [TamperFinding]) async {
        for finding in findings where reportedTamper.insert(finding.key).inserted {
            // A failed append must not hide the tamper from the caller's decision: the row is already
            // treated as absent whatever happens here.
            _ = try? await audit.append(
                AuditEvent(
                    actor: "system",
                    action: "policy.tamper",
                    target: finding.key,
                    outcome: "ignored",
                    metadata: ["table": .string(finding.table), "problem": .string(finding.problem)]
                )
            )
        }
    }

    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws(PolicyError) -> T {
        do {
            return try await database.pool.read(body)
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError(.storage, "reading the policy tables failed: \(Self.describe(error))")
        }
    }

    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await database.pool.write(body)
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError(.storage, "writing the policy tables failed: \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }

    /// Runs `change` only after `event` is durably in the audit log.
    func audited<T: Sendable>(_ event: AuditEvent, _ change: @Sendable @escaping () async throws -> T) async throws -> T
    {
        do {
            return try await audit.performAfterAudit(event, change)
        } catch let error as AuditError {
            throw PolicyError(.storage, error.message)
        }
    }
}

/// A row whose MAC (or chain link) did not verify.
struct TamperFinding: Sendable, Hashable {
    let table: String
    let key: String
    let problem: String
}
