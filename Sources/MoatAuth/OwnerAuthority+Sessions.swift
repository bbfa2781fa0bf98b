import Crypto
public import Foundation
import GRDB
import MoatAudit
public import MoatCore
import MoatStore
import MoatVault

/// A stored session: only the hash of its id. `last_seen_at`, the source and the user agent are left out
/// of the MAC (bookkeeping; the token version and the lifetimes decide).
struct SessionRow: AuthenticatedRow {
    static let macTable = "auth_sessions"
    let idHash: String
    let tokenVersion: Int64
    let createdAt: Int64

    var macFields: [String] { [idHash, String(tokenVersion), String(createdAt)] }
}

/// A verified browser session.
public struct SessionInfo: Sendable, Equatable {
    /// SHA-256 of the session id (what the database stores; safe to log a prefix of).
    public let idHash: String
    /// The token the client must echo in `X-CSRF-Token`.
    public let csrfToken: String
    /// When it ends unless used again (idle expiry), or at the latest (absolute expiry).
    public let expires: Date
    /// The last use its row held when it was looked up (``UsageLedger`` decides from it whether a use
    /// is written).
    let storedLastSeen: Int64
}

/// A session row as read, before its MAC is checked.
struct StoredSession: Sendable {
    let version: Int64
    let created: Int64
    let lastSeen: Int64
    let mac: String

    init(row: Row) {
        version = row["token_version"]
        created = row["created_at"]
        lastSeen = row["last_seen_at"]
        mac = row["mac"]
    }
}

extension OwnerAuthority {
    // MARK: Login

    /// Checks the owner's password (and TOTP code or recovery code when enrolled) and starts a session.
    ///
    /// Every failure — unknown username, wrong password, missing or wrong code — throws the same
    /// ``AuthError/Code/unauthorized`` with the same message, after the same Argon2 work (an unknown
    /// username is checked against a dummy hash).
    public func login(
        username: String,
        password: SecretBytes,
        code: String?,
        client: ClientInfo
    ) async throws(AuthError) -> LoginResult {
        let owner = try await requireOwner()
        let account = username.trimmingCharacters(in: .whitespaces).lowercased()
        let needsCode = try totpRequired(owner)
        var limits = [
            FailureLimit(kind: .passwordAddress, key: client.limitKey, limit: settings.passwordFailuresPerAddress),
            FailureLimit(kind: .passwordAccount, key: account, limit: settings.passwordFailuresPerAccount),
        ]
        // A TOTP lockout refuses every login before the password is checked, whatever the username:
        // answering 429 only after a correct password would tell an attacker the password is right.
        if needsCode {
            limits.append(FailureLimit(kind: .totp, key: owner.username.lowercased(), limit: settings.totpFailures))
        }
        // Counted as failures in the transaction that checks the limits, so logins running at once cannot
        // slip past the limit together; a success clears them, a refused slot takes them back.
        let provisional: [Int64]
        do {
            provisional = try await admitAttempt(
                within: limits, counting: [(.passwordAccount, account), (.passwordAddress, client.limitKey)])
        } catch  where error.code == .rateLimited {
            // Throttled per source address only: a key with the attempted username in it would let an
            // attacker grow this table (and the audit log) by trying many names.
            if shouldRecordRefusal("login " + client.limitKey) {
                await record(
                    "auth.login", outcome: "rate-limited", client: client,
                    metadata: ["retry_after": .int(Int64(error.retryAfter ?? 0))])
            }
            throw error
        }
        let known = account == owner.username.lowercased()
        let matches: Bool
        do {
            matches = try await slots.verify(password, against: known ? owner.passwordHash : dummyHash)
        } catch {
            try await withdrawFailures(provisional)
            if shouldRecordRefusal("busy " + client.limitKey) {
                await record(
                    "auth.login", outcome: "rate-limited", client: client, metadata: ["reason": .string("busy")])
            }
            throw error
        }
        guard known && matches else {
            await record("auth.login", outcome: "failure", client: client, metadata: ["reason": .string("credentials")])
            throw Self.invalidCredentials
        }
        // Read again after the Argon2 wait: the password checked must still be the owner's, and whether
        // TOTP is needed is decided on the current row (it may have been turned on meanwhile).
        let current = try await requireOwner()
        guard current.sameCredentials(owner) else { throw Self.invalidCredentials }
        if try totpRequired(current) {
            try await checkSecondFactor(code, owner: current, client: client)
        }
        try await clearFailures([(.passwordAccount, account), (.passwordAddress, client.limitKey)])
        return try await startSession(owner: current, client: client)
    }

    static let invalidCredentials = AuthError(.unauthorized, "invalid username, password or code")

    /// Creates a session for `owner` (a new random id every time) and audits the login. The session is
    /// stored only if the owner row still holds `owner`'s credentials (checked in the same transaction).
    func startSession(owner: OwnerRecord, client: ClientInfo) async throws(AuthError) -> LoginResult {
        let id = AuthRandom.base64URL(AuthRandom.bytes(16))
        let hash = AuthRandom.sha256Hex(id)
        let now = nowMillis()
        let mac = rows.mac(SessionRow(idHash: hash, tokenVersion: owner.tokenVersion, createdAt: now))
        // A session's stored last use may be up to one write interval behind its real one (UsageLedger),
        // so expired rows are removed only once they are idle for longer than that as well.
        let idleCutoff = now - Int64(settings.sessionIdleTimeout * 1000) - Self.usageWriteInterval
        let absoluteCutoff = now - Int64(settings.sessionAbsoluteTimeout * 1000)
        do {
            try await audited(
                "auth.login", target: "session:" + hash.prefix(12), client: client
            ) {
                try await self.database.pool.write { db in
                    guard try self.currentOwner(in: db).sameCredentials(owner) else { throw Self.invalidCredentials }
                    try db.execute(
                        sql: "DELETE FROM auth_sessions WHERE last_seen_at <= ? OR created_at <= ?",
                        arguments: [idleCutoff, absoluteCutoff])
                    try db.execute(
                        sql: """
                            INSERT INTO auth_sessions (id_hash, token_version, created_at, last_seen_at, source, user_agent, mac)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [hash, owner.tokenVersion, now, now, client.sourceIP, client.userAgent, mac])
                }
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the session: \(error)")
        }
        let expires = Date(timeIntervalSince1970: Double(now) / 1000 + settings.sessionAbsoluteTimeout)
        return LoginResult(sessionID: id, csrfToken: csrfToken(sessionHash: hash), expires: expires)
    }

    // MARK: Sessions

    /// The session a cookie value names, when it is valid: known, MAC intact, made under the current
    /// token version, within its idle and absolute lifetimes. Marks it used.
    ///
    /// With `touch` false the session is only looked up: the HTTP side marks it used
    /// (``touchSession(_:)``) once the request has also shown its CSRF token, so a stolen cookie sent
    /// alone cannot keep a session alive.
    public func session(id: String, touch: Bool = true) async throws(AuthError) -> SessionInfo? {
        guard (16...64).contains(id.utf8.count) else { return nil }
        return try await session(hash: AuthRandom.sha256Hex(id), touch: touch)
    }

    /// The session whose id hash (``SessionInfo/idHash``) is `idHash`, when it is still valid — the
    /// checks of ``session(id:touch:)`` — without marking it used. A connection that outlives its
    /// request (the chat socket) asks this before each message, so a logout, a revoke-all or the
    /// session's expiry ends it.
    public func session(idHash: String) async throws(AuthError) -> SessionInfo? {
        guard idHash.utf8.count == 64, idHash.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        return try await session(hash: idHash, touch: false)
    }

    private func session(hash: String, touch: Bool) async throws(AuthError) -> SessionInfo? {
        // The owner and the session in one read transaction: one trip to the database's queue.
        let (ownerResult, found) = try await read { db in
            let owner = try self.ownerResult(in: db)
            guard case .some(.success) = owner else { return (owner, StoredSession?.none) }
            let row = try Row.fetchOne(db, sql: "SELECT * FROM auth_sessions WHERE id_hash = ?", arguments: [hash])
            return (owner, row.map(StoredSession.init(row:)))
        }
        let owner: OwnerRecord
        switch ownerResult {
        case .some(.success(let verified)): owner = verified
        case .some(.failure):
            await reportTamper(table: "auth_owner", key: "1")
            return nil
        case .none: return nil
        }
        guard let found else { return nil }
        guard
            rows.verify(found.mac, of: SessionRow(idHash: hash, tokenVersion: found.version, createdAt: found.created))
        else {
            await reportTamper(table: "auth_sessions", key: String(hash.prefix(12)))
            return nil
        }
        let now = nowMillis()
        let lastSeen = sessionUse.latest(hash, stored: found.lastSeen) ?? found.lastSeen
        let absoluteEnd = found.created + Int64(settings.sessionAbsoluteTimeout * 1000)
        guard found.version == owner.tokenVersion, now < absoluteEnd,
            now < lastSeen + Int64(settings.sessionIdleTimeout * 1000)
        else { return nil }
        let info = SessionInfo(
            idHash: hash, csrfToken: csrfToken(sessionHash: hash),
            expires: Date(
                timeIntervalSince1970: Double(min(absoluteEnd, now + Int64(settings.sessionIdleTimeout * 1000))) / 1000),
            storedLastSeen: found.lastSeen
        )
        if touch { try await touchSession(info) }
        return info
    }

    /// Marks a session used now (its idle expiry starts again). The use counts at once in this process;
    /// it is written to `moat.db` at most once per ``usageWriteInterval`` (``UsageLedger``), never
    /// failing the request it came with.
    public func touchSession(_ session: SessionInfo) async throws(AuthError) {
        let now = nowMillis()
        if sessionUse.use(session.idHash, at: now, stored: session.storedLastSeen) {
            await storeUse(session: session.idHash, at: now)
        }
    }

    /// Ends the session on the server; its cookie is worthless afterwards.
    public func logout(_ session: SessionInfo, client: ClientInfo) async throws(AuthError) {
        do {
            try await audited("auth.logout", target: "session:" + session.idHash.prefix(12), client: client) {
                try await self.database.pool.write { db in
                    try db.execute(sql: "DELETE FROM auth_sessions WHERE id_hash = ?", arguments: [session.idHash])
                }
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not end the session: \(error)")
        }
    }

    /// The CSRF token of a session: an HMAC of its id hash, so it needs no storage and cannot be
    /// derived without the vault key.
    nonisolated func csrfToken(sessionHash: String) -> String {
        let code = csrfKey.withSymmetricKey {
            HMAC<SHA256>.authenticationCode(for: Data(("session\n" + sessionHash).utf8), using: $0)
        }
        return AuthRandom.base64URL(Array(code))
    }

    /// The CSRF token for a request identified by Tailscale (no session): bound to the login and the
    /// token version, so "revoke everything" ends it too.
    public func tailscaleCSRFToken(login: String) async throws(AuthError) -> String {
        let owner = try await requireOwner()
        let text = "tailscale\n" + login.lowercased() + "\n" + String(owner.tokenVersion)
        let code = csrfKey.withSymmetricKey { HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: $0) }
        return AuthRandom.base64URL(Array(code))
    }

    /// Whether `presented` is the expected CSRF token (constant time).
    public nonisolated func csrfMatches(_ presented: String?, expected: String) -> Bool {
        guard let presented else { return false }
        return AuthRandom.constantTimeEquals(presented, expected)
    }

    /// The current token version, which every JWT carries (``LiveTokenIssuer``).
    public func tokenVersion() async throws(AuthError) -> Int64 {
        try await requireOwner().tokenVersion
    }

    // MARK: Revoking

    /// Ends every session and short-lived JWT at once (bumps the token version), and with `tokens`
    /// revokes every API token as well.
    public func revokeAll(tokens: Bool, actor: String = "owner", client: ClientInfo) async throws(AuthError) {
        _ = try await requireOwner()
        let now = nowMillis()
        do {
            try await audited(
                "auth.revoke_all", actor: actor, client: client, metadata: ["api_tokens": .bool(tokens)]
            ) {
                let owner = try await self.database.pool.write { db in
                    let owner = try self.updateOwner(in: db) { owner in
                        owner.tokenVersion += 1
                        owner.updatedAt = now
                    }
                    try db.execute(sql: "DELETE FROM auth_sessions")
                    if tokens {
                        for row in try Row.fetchAll(db, sql: "SELECT * FROM auth_api_tokens WHERE revoked_at IS NULL") {
                            var record = APITokenRecord(row: row)
                            guard self.rows.verify(row["mac"], of: record) else { continue }
                            record.revokedAt = now
                            try self.storeToken(record, in: db)
                        }
                    }
                    return owner
                }
                self.raiseOwnerFloor(to: owner.tokenVersion)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not revoke: \(error)")
        }
    }

    /// Checks the owner's current password before a sensitive change (counted like a failed login).
    func confirmPassword(
        _ password: SecretBytes, owner: OwnerRecord, action: String, client: ClientInfo
    ) async throws(AuthError) {
        let account = owner.username.lowercased()
        // Counted in the transaction that checks the limit, as at login, so checks running at once cannot
        // pass the limit together.
        let provisional = try await admitAttempt(
            within: [FailureLimit(kind: .passwordAccount, key: account, limit: settings.passwordFailuresPerAccount)],
            counting: [(.passwordAccount, account)])
        let matches: Bool
        do {
            matches = try await slots.verify(password, against: owner.passwordHash)
        } catch {
            try await withdrawFailures(provisional)
            throw error
        }
        if matches {
            try await withdrawFailures(provisional)
            return
        }
        await record(
            action, actor: "owner", outcome: "failure", client: client,
            metadata: ["reason": .string("current password")])
        throw AuthError(.unauthorized, "the current password is not correct")
    }

    /// Changes the owner's password after checking the current one; ends every session and JWT.
    public func changePassword(
        current: SecretBytes,
        new: SecretBytes,
        client: ClientInfo
    ) async throws(AuthError) {
        let owner = try await requireOwner()
        try await confirmPassword(current, owner: owner, action: "auth.password.change", client: client)
        try await storeNewPassword(new, owner: owner, clearFailures: false, client: client)
    }

    /// Sets a new password from the terminal (`moat owner password`), where the vault is already open:
    /// the current password is not needed, and the account's failure counts are cleared (the way out of
    /// a lockout). Ends every session and JWT.
    public func resetPassword(_ new: SecretBytes, client: ClientInfo) async throws(AuthError) {
        try await storeNewPassword(new, owner: try await requireOwner(), clearFailures: true, client: client)
    }

    /// Hashes and stores a new password, bumps the token version and ends every session, audited first.
    private func storeNewPassword(
        _ new: SecretBytes, owner: OwnerRecord, clearFailures: Bool, client: ClientInfo
    ) async throws(AuthError) {
        try Self.checkPasswordRules(new)
        let hash = try await Self.hashPassword(new)
        let now = nowMillis()
        // From the web the current password was checked against `owner`: the change applies only if the
        // row still holds it. From the terminal (the vault is open) it applies to whatever is there.
        let checked = clearFailures ? nil : owner
        let metadata: [String: AuditValue] = clearFailures ? ["via": .string("terminal")] : [:]
        do {
            try await audited("auth.password.change", client: client, metadata: metadata) {
                let owner = try await self.database.pool.write { db in
                    let owner = try self.updateOwner(in: db, checked: checked) { owner in
                        owner.passwordHash = hash
                        owner.tokenVersion += 1
                        owner.updatedAt = now
                    }
                    try db.execute(sql: "DELETE FROM auth_sessions")
                    if clearFailures {
                        try db.execute(
                            sql: "DELETE FROM auth_failures WHERE kind IN (?, ?, ?)",
                            arguments: [
                                FailureKind.passwordAccount.rawValue, FailureKind.passwordAddress.rawValue,
                                FailureKind.totp.rawValue,
                            ])
                    }
                    return owner
                }
                self.raiseOwnerFloor(to: owner.tokenVersion)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not change the password: \(error)")
        }
    }
}

extension OwnerAuthority {
    /// Audits a `tailscale serve` identity decision (the caller throttles how often).
    public func recordTailscale(login: String?, accepted: Bool, reason: String?, client: ClientInfo) async {
        var metadata: [String: AuditValue] = [:]
        if let reason { metadata["reason"] = .string(reason) }
        if let login { metadata["login"] = .string(login) }
        await record(
            "auth.tailscale", actor: accepted ? "owner" : "anonymous", outcome: accepted ? "success" : "denied",
            client: client, metadata: metadata)
    }
}

extension OwnerAuthority {
    /// Audits a connection to the admin socket from a user other than Moat's own (or root).
    public func recordAdminRefusal(uid: UInt32, pid: Int32) async {
        await record(
            "admin.refused", actor: "uid:\(uid)", outcome: "denied", client: ClientInfo.local("admin-socket"),
            metadata: ["uid": .int(Int64(uid)), "pid": .int(Int64(pid))])
    }
}

extension OwnerAuthority {
    /// Whether a repeated refusal (a locked-out login hammered again) should be audited: once per key
    /// per minute, so an attacker cannot grow the audit log without bound by retrying while locked.
    func shouldRecordRefusal(_ key: String) -> Bool {
        let now = nowMillis()
        if let last = recentRefusals[key], now - last < 60_000 { return false }
        if recentRefusals.count > 10_000 { recentRefusals.removeAll() }
        recentRefusals[key] = now
        return true
    }
}
