import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore
import MoatVault

/// What a counted failure was.
enum FailureKind: String, Sendable {
    /// A wrong password, counted per account.
    case passwordAccount = "password-account"
    /// A wrong password, counted per source address.
    case passwordAddress = "password-address"
    /// A wrong TOTP or recovery code, counted per account.
    case totp
    /// A wrong, used or expired setup token, counted per source address.
    case setup
}

/// One failure limit an attempt must be within: `limit` failures of `kind` for `key`.
struct FailureLimit: Sendable {
    let kind: FailureKind
    let key: String
    let limit: Int
}

extension OwnerAuthority {
    /// Refuses with 429 while any of `limits` has too many recent failures; otherwise counts a
    /// provisional failure for each of `counted` and returns their row ids (so a success or a refused
    /// slot can take them back with ``withdrawFailures(_:)``).
    ///
    /// The check and the count are one transaction: attempts running at once cannot all pass the check
    /// before any of them is counted (the actor runs other calls while it waits for the database).
    ///
    /// Failures are kept in `moat.db` for 24 hours (a restart does not reset them). The first lockout
    /// lasts one window after the last failure; each further lockout within 24 hours doubles it (growing
    /// back-off), capped at 24 hours. Keys are stored as keyed hashes, so an attempted username (which
    /// may be a password typed in the wrong field) is never written down.
    func admitAttempt(
        within limits: [FailureLimit], counting counted: [(kind: FailureKind, key: String)]
    ) async throws(AuthError) -> [Int64] {
        let now = nowMillis()
        let window = Int64(settings.failureWindow * 1000)
        let checks = limits.map { (kind: $0.kind, keyHash: storedKey($0.kind, $0.key), limit: $0.limit) }
        let counts = counted.map { (kind: $0.kind, keyHash: storedKey($0.kind, $0.key)) }
        return try await write { db in
            for check in checks {
                let times = try Int64.fetchAll(
                    db, sql: "SELECT at FROM auth_failures WHERE kind = ? AND key = ? AND at > ? ORDER BY at",
                    arguments: [check.kind.rawValue, check.keyHash, now - 86_400_000])
                if let refusal = Self.lockout(times, limit: check.limit, window: window, now: now) { throw refusal }
            }
            var ids: [Int64] = []
            for count in counts {
                try db.execute(
                    sql: "INSERT INTO auth_failures (kind, key, at) VALUES (?, ?, ?)",
                    arguments: [count.kind.rawValue, count.keyHash, now])
                ids.append(db.lastInsertedRowID)
            }
            if !counts.isEmpty {
                try db.execute(sql: "DELETE FROM auth_failures WHERE at <= ?", arguments: [now - 86_400_000])
            }
            return ids
        }
    }

    /// The 429 for failures at `times` (oldest first, the last 24 hours), or nil when there is no lockout.
    private static func lockout(_ times: [Int64], limit: Int, window: Int64, now: Int64) -> AuthError? {
        guard let last = times.last else { return nil }
        let inWindow = times.filter { $0 > now - window }.count
        let lockouts = times.count / max(1, limit)
        guard inWindow >= limit || lockouts >= 2 else { return nil }
        let backoff = min(86_400_000, window << Int64(min(max(lockouts, 1) - 1, 20)))
        let unlock = last + backoff
        guard now < unlock else { return nil }
        let seconds = Int((Double(unlock - now) / 1000).rounded(.up))
        return AuthError(
            .rateLimited, "too many failed attempts; try again in \(duration(seconds))", retryAfter: max(1, seconds))
    }

    /// Takes back provisional failures (an attempt that was refused before its password was checked).
    func withdrawFailures(_ ids: [Int64]) async throws(AuthError) {
        try await write { db in
            for id in ids { try db.execute(sql: "DELETE FROM auth_failures WHERE id = ?", arguments: [id]) }
        }
    }

    /// Forgets every counted failure of each `(kind, key)` (a success), in one transaction.
    func clearFailures(_ cleared: [(kind: FailureKind, key: String)]) async throws(AuthError) {
        let hashes = cleared.map { (kind: $0.kind, keyHash: storedKey($0.kind, $0.key)) }
        try await write { db in
            for entry in hashes {
                try db.execute(
                    sql: "DELETE FROM auth_failures WHERE kind = ? AND key = ?",
                    arguments: [entry.kind.rawValue, entry.keyHash])
            }
        }
    }

    private nonisolated func storedKey(_ kind: FailureKind, _ key: String) -> String {
        let code = csrfKey.withSymmetricKey {
            HMAC<SHA256>.authenticationCode(for: Data((kind.rawValue + "\n" + key).utf8), using: $0)
        }
        return AuthRandom.hex(code.prefix(16))
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds) seconds" }
        if seconds < 7200 { return "\((seconds + 59) / 60) minutes" }
        return "\((seconds + 3599) / 3600) hours"
    }
}

/// One budget for audit entries of refusals (failed logins, wrong setup tokens, refused identities),
/// shared by every source: the per-source limits bound what one address can add, this bounds what many
/// addresses together can add. Past the budget, refusals still answer as usual but are only counted;
/// the count is written as one `auth.refusals.suppressed` entry when the next window's first refusal
/// arrives.
struct RefusalBudget: Sendable {
    static let windowMillis: Int64 = 60_000
    private(set) var windowStart: Int64?
    private(set) var recorded = 0
    private(set) var suppressed = 0
    private(set) var suppressedSince: Int64 = 0

    /// Whether a refusal at `now` may be recorded under `limit` per window, and the count of refusals
    /// left unrecorded in the window before (nil when there were none), with when the first of them came.
    mutating func admit(now: Int64, limit: Int) -> (record: Bool, suppressed: (count: Int, since: Int64)?) {
        var carried: (count: Int, since: Int64)?
        let inWindow = windowStart.map { now >= $0 && now - $0 < Self.windowMillis } ?? false
        if !inWindow {
            if suppressed > 0 { carried = (suppressed, suppressedSince) }
            windowStart = now
            recorded = 0
            suppressed = 0
        }
        guard recorded < limit else {
            if suppressed == 0 { suppressedSince = now }
            suppressed += 1
            return (false, carried)
        }
        recorded += 1
        return (true, carried)
    }
}

extension OwnerAuthority {
    /// Whether a `record` of `outcome` fits the global refusal budget (successes always do), and the
    /// summary entry to write first when an earlier window's refusals went unrecorded.
    func refusalAuditDecision(outcome: String) -> (record: Bool, summary: AuditEvent?) {
        guard outcome != "success" else { return (true, nil) }
        let (record, carried) = refusalBudget.admit(now: nowMillis(), limit: settings.refusalAuditsPerMinute)
        guard let carried else { return (record, nil) }
        let summary = AuditEvent(
            actor: "system", action: "auth.refusals.suppressed", outcome: "ignored",
            metadata: [
                "count": .int(Int64(carried.count)), "since": .string(Self.timestamp(carried.since)),
                "limit_per_minute": .int(Int64(settings.refusalAuditsPerMinute)),
            ])
        return (record, summary)
    }
}
