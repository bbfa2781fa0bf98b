import GRDB
import Synchronization

extension OwnerAuthority {
    /// Milliseconds between two writes of one token's last use or one session's last activity (one
    /// minute): what `moat token list` reads from `moat.db` is at most this much behind, and a session
    /// may end this much early after a restart.
    public static let usageWriteInterval: Int64 = 60_000

    /// Writes a token's use. Best effort: a failed write never fails the request, and the use is kept
    /// for the next write.
    func storeUse(token prefix: String, at time: Int64) async {
        do {
            try await write { db in try Self.storeTokenUse(prefix, at: time, in: db) }
        } catch {
            tokenUse.withLock { $0.failed(prefix, at: time) }
        }
    }

    /// Writes a session's activity, like ``storeUse(token:at:)``.
    func storeUse(session hash: String, at time: Int64) async {
        do {
            try await write { db in try Self.storeSessionUse(hash, at: time, in: db) }
        } catch {
            sessionUse.failed(hash, at: time)
        }
    }

    /// Writes every token use and session activity not written yet, in one transaction. `moat serve`
    /// calls it once the server has stopped taking requests; uses that could not be written stay for
    /// the next call.
    public func flushUsage() async throws(AuthError) {
        let tokens = tokenUse.withLock { $0.takePending() }
        let sessions = sessionUse.takePending()
        guard !tokens.isEmpty || !sessions.isEmpty else { return }
        do {
            try await write { db in
                for (prefix, time) in tokens { try Self.storeTokenUse(prefix, at: time, in: db) }
                for (hash, time) in sessions { try Self.storeSessionUse(hash, at: time, in: db) }
            }
        } catch {
            tokenUse.withLock { ledger in for (prefix, time) in tokens { ledger.failed(prefix, at: time) } }
            for (hash, time) in sessions { sessionUse.failed(hash, at: time) }
            throw error
        }
    }

    // Neither column is covered by its row's MAC, and a use never moves a stored time back. A row
    // deleted or revoked meanwhile stays so: only the time changes, and only where the row still exists.

    private static func storeTokenUse(_ prefix: String, at time: Int64, in db: Database) throws {
        try db.execute(
            sql: """
                UPDATE auth_api_tokens SET last_used_at = ?
                WHERE prefix = ? AND (last_used_at IS NULL OR last_used_at < ?)
                """,
            arguments: [time, prefix, time])
    }

    private static func storeSessionUse(_ hash: String, at time: Int64, in db: Database) throws {
        try db.execute(
            sql: "UPDATE auth_sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?",
            arguments: [time, hash, time])
    }
}
