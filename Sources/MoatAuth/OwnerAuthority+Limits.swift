import Crypto
import Foundation
import GRDB
import MoatStore

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

extension OwnerAuthority {
    /// Refuses with 429 while `key` has too many recent failures of `kind`.
    ///
    /// Failures are kept in `moat.db` for 24 hours (a restart does not reset them). The first lockout
    /// lasts one window after the last failure; each further lockout within 24 hours doubles it (growing
    /// back-off), capped at 24 hours. Keys are stored as keyed hashes, so an attempted username (which
    /// may be a password typed in the wrong field) is never written down.
    func checkLimit(_ kind: FailureKind, key: String, limit: Int) throws(AuthError) {
        let now = nowMillis()
        let keyHash = storedKey(kind, key)
        let times = try read { db in
            try Int64.fetchAll(
                db, sql: "SELECT at FROM auth_failures WHERE kind = ? AND key = ? AND at > ? ORDER BY at",
                arguments: [kind.rawValue, keyHash, now - 86_400_000])
        }
        guard let last = times.last else { return }
        let window = Int64(settings.failureWindow * 1000)
        let inWindow = times.filter { $0 > now - window }.count
        let lockouts = times.count / max(1, limit)
        guard inWindow >= limit || lockouts >= 2 else { return }
        let backoff = min(86_400_000, window << Int64(min(max(lockouts, 1) - 1, 20)))
        let unlock = last + backoff
        guard now < unlock else { return }
        let seconds = Int((Double(unlock - now) / 1000).rounded(.up))
        throw AuthError(
            .rateLimited, "too many failed attempts; try again in \(Self.duration(seconds))",
            retryAfter: max(1, seconds))
    }

    /// Counts a failure; returns its row id (so a provisional one can be taken back).
    @discardableResult
    func recordFailure(_ kind: FailureKind, key: String) throws(AuthError) -> Int64 {
        let now = nowMillis()
        let keyHash = storedKey(kind, key)
        return try write { db in
            try db.execute(
                sql: "INSERT INTO auth_failures (kind, key, at) VALUES (?, ?, ?)",
                arguments: [kind.rawValue, keyHash, now])
            let id = db.lastInsertedRowID
            try db.execute(sql: "DELETE FROM auth_failures WHERE at <= ?", arguments: [now - 86_400_000])
            return id
        }
    }

    /// Takes back provisional failures (an attempt that was refused before its password was checked).
    func withdrawFailures(_ ids: [Int64]) throws(AuthError) {
        try write { db in
            for id in ids { try db.execute(sql: "DELETE FROM auth_failures WHERE id = ?", arguments: [id]) }
        }
    }

    func clearFailures(_ kind: FailureKind, key: String) throws(AuthError) {
        let keyHash = storedKey(kind, key)
        try write { db in
            try db.execute(
                sql: "DELETE FROM auth_failures WHERE kind = ? AND key = ?", arguments: [kind.rawValue, keyHash])
        }
    }

    private func storedKey(_ kind: FailureKind, _ key: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data((kind.rawValue + "\n" + key).utf8), using: csrfKey)
        return AuthRandom.hex(code.prefix(16))
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds) seconds" }
        if seconds < 7200 { return "\((seconds + 59) / 60) minutes" }
        return "\((seconds + 3599) / 3600) hours"
    }
}
