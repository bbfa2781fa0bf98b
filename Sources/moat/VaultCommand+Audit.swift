import Foundation
import MoatAudit
import MoatStore
import MoatVault

extension VaultContext {
    /// Records a vault change in the audit log *before* it is made (names only, never values).
    ///
    /// Fail-closed: when the entry cannot be written, the change is not made and the error says so.
    /// The database is created if this home has none yet (a vault set up before the first `moat serve`).
    func recordChange(
        _ action: String,
        target: String = "",
        metadata: [String: AuditValue] = [:],
        vault: UnlockedVault
    ) throws(VaultError) {
        do {
            let database = try MoatDatabase(path: paths.directory + "/moat.db")
            defer { try? database.close() }
            let keys = try AuditKeyring.keys(from: vault)
            let log = AuditLog(database: database, keys: keys, origin: try AuditLog.origin(for: database))
            let event = AuditEvent(
                actor: "owner", action: action, target: target, userAgent: "moat-cli", metadata: metadata)
            try waitFor { try await log.append(event) }
        } catch {
            throw VaultError(
                .io,
                "the audit log could not record \(action), so nothing was changed: \((error as? AuditError)?.message ?? "\(error)")"
            )
        }
    }
}

/// Runs `operation` to completion from synchronous command code (the CLI's vault commands are
/// synchronous; the audit log is an actor).
private func waitFor(_ operation: @escaping @Sendable () async throws -> Void) throws {
    let done = DispatchSemaphore(value: 0)
    let outcome = OutcomeBox()
    Task {
        do { try await operation() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let error = outcome.error { throw error }
}

private final class OutcomeBox: @unchecked Sendable {
    // Written once by the task before it signals, read after the wait: the semaphore orders them.
    var error: (any Error)?
}
