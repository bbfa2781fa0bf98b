public import Foundation
import GRDB
import MoatAudit
public import MoatCore
import MoatStore
import MoatVault
import Synchronization

/// Whether the installation has an owner.
public enum OwnerState: Sendable, Equatable {
    /// Nobody has set up Moat yet: only setup and `/healthz` answer.
    case needsSetup
    /// The owner exists.
    case ready(username: String, totpEnabled: Bool)
    /// The owner row fails its MAC (the database was changed outside Moat): every login fails closed.
    case damaged

    /// What a damaged owner means and how to get out of it, for every place that reports it.
    public static let damagedAdvice =
        "the owner record in moat.db fails its integrity check (it was changed, rolled back or deleted outside "
        + "Moat), so nobody can log in; restore moat.db from a backup or run `moat owner setup --reset` on this machine"
}

/// The owner row, as verified.
struct OwnerRecord: Sendable, AuthenticatedRow {
    static let macTable = "auth_owner"

    var username: String
    var passwordHash: String
    var totpEnabled: Bool
    var totpLastStep: Int64
    var tokenVersion: Int64
    var createdAt: Int64
    var updatedAt: Int64

    /// Every field but the MAC itself.
    var macFields: [String] {
        [
            username, passwordHash, totpEnabled ? "1" : "0", String(totpLastStep), String(tokenVersion),
            String(createdAt), String(updatedAt),
        ]
    }

    /// Whether `other` holds the same credentials: the password, whether TOTP is on, and the token
    /// version. A password checked against one copy proves nothing once they differ.
    func sameCredentials(_ other: OwnerRecord) -> Bool {
        username == other.username && passwordHash == other.passwordHash && totpEnabled == other.totpEnabled
            && tokenVersion == other.tokenVersion
    }

    init(row: Row) {
        username = row["username"]
        passwordHash = row["password_hash"]
        totpEnabled = row["totp_enabled"] as Int64 != 0
        totpLastStep = row["totp_last_step"]
        tokenVersion = row["token_version"]
        createdAt = row["created_at"]
        updatedAt = row["updated_at"]
    }

    init(username: String, passwordHash: String, now: Int64) {
        self.username = username
        self.passwordHash = passwordHash
        totpEnabled = false
        totpLastStep = 0
        tokenVersion = 1
        createdAt = now
        updatedAt = now
    }
}

/// A stored setup token: only its hash, never the token. `used_at` is left out of the MAC (marking a token
/// used can only take power away).
struct SetupTokenRow: AuthenticatedRow {
    static let macTable = "auth_setup_tokens"
    let tokenHash: String
    let createdAt: Int64
    let expiresAt: Int64

    var macFields: [String] { [tokenHash, String(createdAt), String(expiresAt)] }
}

/// The result of a successful login or setup: the new session's cookie value and CSRF token.
public struct LoginResult: Sendable {
    /// The session id for the cookie (128 random bits, base64url). Shown to the client once; the
    /// database keeps only its hash.
    public let sessionID: String
    /// The CSRF token the client sends back in `X-CSRF-Token` on every state-changing request.
    public let csrfToken: String
    /// When the session ends at the latest (absolute expiry).
    public let expires: Date
}

extension OwnerAuthority {
    /// The owner's state; a tampered owner row is audited. While `moat.db` has not changed since the owner
    /// was last verified, the verified state is answered from memory (``AuthSnapshot``).
    public nonisolated func state() async throws(AuthError) -> OwnerState {
        try await state(at: moment())
    }

    /// ``state()`` as of `moment` (the version one request read once; see ``AuthMoment``).
    public nonisolated func state(at moment: AuthMoment) async throws(AuthError) -> OwnerState {
        if let version = moment.version, let owner = snapshotOwner(at: version) { return owner }
        return try await loadState(version: moment.version)
    }

    private func loadState(version: Int64?) async throws(AuthError) -> OwnerState {
        switch try await loadOwner() {
        case .none: return .needsSetup
        case .some(.success(let owner)):
            if let version { remember(owner: owner, token: nil, at: version) }
            return .ready(username: owner.username, totpEnabled: owner.totpEnabled)
        case .some(.failure):
            await reportTamper(table: "auth_owner", key: "1")
            return .damaged
        }
    }

    /// The owner row: nil when there is none (and this vault never had an owner), `.failure` when its
    /// MAC does not verify, when it is older than the vault's floor, or when it is missing although the
    /// vault has had an owner.
    func loadOwner() async throws(AuthError) -> Result<OwnerRecord, AuthError>? {
        try await read { db in try self.ownerResult(in: db) }
    }

    /// ``loadOwner()`` inside the caller's transaction.
    nonisolated func ownerResult(in db: Database) throws -> Result<OwnerRecord, AuthError>? {
        do {
            guard let owner = try verifiedOwner(try Row.fetchOne(db, sql: "SELECT * FROM auth_owner WHERE id = 1"))
            else { return nil }
            return .success(owner)
        } catch let error as AuthError where error.code == .tampered {
            return .failure(error)
        }
    }

    /// `row` checked against its MAC and against the token-version floor kept in the vault
    /// (``ownerFloor()``): a database-only attacker can put back an older genuine row (an old password,
    /// a version before a revoke-all) or delete the row to reopen setup, but cannot move the floor.
    nonisolated func verifiedOwner(_ row: Row?) throws(AuthError) -> OwnerRecord? {
        let floor = try ownerFloor()
        guard let row else {
            if floor != nil { throw AuthError(.tampered, Self.missingMessage) }
            return nil
        }
        let owner = OwnerRecord(row: row)
        guard rows.verify(row["mac"], of: owner) else {
            throw AuthError(.tampered, Self.damagedMessage)
        }
        if let floor, owner.tokenVersion < floor { throw AuthError(.tampered, Self.rolledBackMessage) }
        // A genuine row above the floor (set up before the floor existed, or a raise that did not reach
        // the vault after its change was committed): bring the floor up to it.
        if owner.tokenVersion > floor ?? 0 { raiseOwnerFloor(to: owner.tokenVersion) }
        return owner
    }

    /// The vault entry holding the least token version the owner row may carry. It only rises: it is
    /// written after every change that raises the version (setup, revoke-all, a new password).
    public static let ownerFloorName = "MOAT_AUTH_OWNER_FLOOR"

    /// The floor, or nil when this vault never had an owner.
    nonisolated func ownerFloor() throws(AuthError) -> Int64? {
        let seen = floorSeen.withLock { $0 }
        let value: SecretBytes?
        do {
            value = try vault.value(named: Self.ownerFloorName)
        } catch {
            // The vault cannot be read right now: what this process saw still guards.
            guard seen > 0 else { throw AuthError(.storage, "could not read the vault: \(error.description)") }
            return seen
        }
        guard let value else { return seen > 0 ? seen : nil }
        guard let version = Self.floorVersion(value) else { throw AuthError(.tampered, Self.damagedMessage) }
        return floorSeen.withLock { seen in
            seen = max(seen, version)
            return seen
        }
    }

    /// The version in a floor entry: "<random>.<version>" (the random part keeps the value from being a
    /// short number the log scrubber would then hide everywhere).
    static func floorVersion(_ value: SecretBytes) -> Int64? {
        value.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }.split(separator: ".").last.flatMap { Int64($0) }
    }

    /// Raises the floor to `version` (never lowers it). Best effort, after the change is committed: a raise
    /// that fails leaves the floor lower than it could be — never above the owner row — and the next
    /// ``verifiedOwner(_:)`` raises it again.
    nonisolated func raiseOwnerFloor(to version: Int64) {
        floorSeen.withLock { $0 = max($0, version) }
        forgetSnapshot()
        if let stored = try? vault.value(named: Self.ownerFloorName), let current = Self.floorVersion(stored),
            current >= version
        {
            return
        }
        var bytes = Array((AuthRandom.hex(AuthRandom.bytes(16)) + "." + String(version)).utf8)
        try? vault.add(
            Self.ownerFloorName, value: SecretBytes(wiping: &bytes), policy: SecretPolicy(tools: [], hosts: []),
            replace: true)
    }

    /// The verified owner, or the error that explains why there is none.
    func requireOwner() async throws(AuthError) -> OwnerRecord {
        switch try await loadOwner() {
        case .none:
            throw AuthError(.setupRequired, Self.setupMessage)
        case .some(.success(let owner)):
            return owner
        case .some(.failure(let error)):
            await reportTamper(table: "auth_owner", key: "1")
            throw error
        }
    }

    static let setupMessage =
        "Moat has no owner yet: open the setup link `moat serve` printed, or run `moat owner setup` in a terminal"
    static let rolledBackMessage =
        "the owner record in moat.db is older than the vault says (an earlier copy was put back); "
        + "restore the latest moat.db or run `moat owner setup --reset` on this machine"
    static let missingMessage =
        "the owner record is missing from moat.db although this vault has had an owner; "
        + "restore moat.db from a backup or run `moat owner setup --reset` on this machine"
    static let damagedMessage =
        "the owner record in moat.db fails its integrity check (it was changed outside Moat); "
        + "restore moat.db from a backup or run `moat owner setup --reset` on this machine"

    /// The owner row as it is inside the caller's transaction, MAC verified. Every change to the owner
    /// starts from this copy, never from one read before a suspension or in another process: a
    /// concurrent change (a revoke-all during a login's Argon2 check) would otherwise be overwritten.
    nonisolated func currentOwner(in db: Database) throws -> OwnerRecord {
        guard let owner = try verifiedOwner(try Row.fetchOne(db, sql: "SELECT * FROM auth_owner WHERE id = 1")) else {
            throw AuthError(.setupRequired, Self.setupMessage)
        }
        return owner
    }

    /// The token version a new owner starts at: above the floor and above any version a row in the
    /// database carries, so no session or JWT of an earlier owner can ever match it.
    nonisolated func firstTokenVersion(in db: Database) throws -> Int64 {
        let sessions = try Int64.fetchOne(db, sql: "SELECT max(token_version) FROM auth_sessions") ?? 0
        let owner = try Int64.fetchOne(db, sql: "SELECT token_version FROM auth_owner WHERE id = 1") ?? 0
        // Only the database's values are capped (a forged huge one must not overflow or push the floor up
        // for good); the floor comes from the vault.
        let floor = try ownerFloor() ?? 0
        return max(floor, [sessions, owner].filter { $0 < 1 << 52 }.max() ?? 0) + 1
    }

    /// Changes the owner row within the caller's write transaction: read again, verified, changed,
    /// written. With `checked`, the row must still hold the credentials that copy held (see
    /// ``OwnerRecord/sameCredentials(_:)``), else `refusal` is thrown and nothing changes.
    @discardableResult
    nonisolated func updateOwner(
        in db: Database,
        checked: OwnerRecord? = nil,
        refusal: AuthError = OwnerAuthority.ownerChanged,
        _ change: (inout OwnerRecord) throws -> Void
    ) throws -> OwnerRecord {
        var owner = try currentOwner(in: db)
        if let checked, !owner.sameCredentials(checked) { throw refusal }
        try change(&owner)
        try storeOwner(owner, in: db)
        return owner
    }

    static let ownerChanged = AuthError(
        .unauthorized, "the owner's password, two-factor login or sessions changed meanwhile; try again")

    nonisolated func storeOwner(_ owner: OwnerRecord, in db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO auth_owner
                  (id, username, password_hash, totp_enabled, totp_last_step, token_version, created_at, updated_at, mac)
                VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                owner.username, owner.passwordHash, owner.totpEnabled ? 1 : 0, owner.totpLastStep,
                owner.tokenVersion, owner.createdAt, owner.updatedAt, rows.mac(owner),
            ]
        )
    }

    // MARK: Setup

    /// A fresh single-use setup token (valid ``AuthSettings/setupTokenLifetime``); earlier unused ones stop
    /// working. Refused once an owner exists.
    public func createSetupToken(client: ClientInfo) async throws(AuthError) -> String {
        switch try await loadOwner() {
        case .none: break
        case .some(.success): throw AuthError(.alreadySetUp, "Moat already has an owner; log in instead")
        case .some(.failure(let error)): throw error
        }
        let token = AuthRandom.base64URL(AuthRandom.bytes(32))
        let hash = AuthRandom.sha256Hex(token)
        let created = nowMillis()
        let expires = created + Int64(settings.setupTokenLifetime * 1000)
        let mac = rows.mac(SetupTokenRow(tokenHash: hash, createdAt: created, expiresAt: expires))
        do {
            try await audited(
                "auth.setup.link", actor: "system", client: client,
                metadata: ["expires_at": .string(Self.timestamp(expires))]
            ) {
                try await self.database.pool.write { db in
                    try db.execute(sql: "DELETE FROM auth_setup_tokens")
                    try db.execute(
                        sql:
                            "INSERT INTO auth_setup_tokens (token_hash, created_at, expires_at, mac) VALUES (?, ?, ?, ?)",
                        arguments: [hash, created, expires, mac])
                }
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the setup token: \(error)")
        }
        return token
    }

    /// Sets up the owner with a setup token from the link, and logs them in.
    public func completeSetup(
        token: String,
        username: String?,
        password: SecretBytes,
        client: ClientInfo
    ) async throws(AuthError) -> LoginResult {
        let owner = try await storeLinkSetup(token: token, username: username, password: password, client: client)
        return try await startSession(owner: owner, client: client)
    }

    /// Sets up the owner with a setup token from the link without logging in: for
    /// `gateway.auth.mode: token`, where browser sessions are off.
    public func completeSetupWithoutLogin(
        token: String,
        username: String?,
        password: SecretBytes,
        client: ClientInfo
    ) async throws(AuthError) {
        _ = try await storeLinkSetup(token: token, username: username, password: password, client: client)
    }

    private func storeLinkSetup(
        token: String,
        username: String?,
        password: SecretBytes,
        client: ClientInfo
    ) async throws(AuthError) -> OwnerRecord {
        // Counted as a failure in the transaction that checks the limit (guesses sent at once cannot pass
        // it together), taken back once the link proves valid.
        let provisional = try await admitAttempt(
            within: [FailureLimit(kind: .setup, key: client.limitKey, limit: settings.setupFailuresPerAddress)],
            counting: [(.setup, client.limitKey)])
        let hash = AuthRandom.sha256Hex(token)
        let now = nowMillis()
        let found: (created: Int64, expires: Int64, used: Int64?, mac: String)?
        do {
            found = try await read { db -> (created: Int64, expires: Int64, used: Int64?, mac: String)? in
                try Row.fetchOne(db, sql: "SELECT * FROM auth_setup_tokens WHERE token_hash = ?", arguments: [hash])
                    .map { ($0["created_at"], $0["expires_at"], $0["used_at"], $0["mac"]) }
            }
        } catch {
            try? await withdrawFailures(provisional)
            throw error
        }
        var problem: String?
        if let (created, expires, used, mac) = found {
            if !rows.verify(mac, of: SetupTokenRow(tokenHash: hash, createdAt: created, expiresAt: expires)) {
                await reportTamper(table: "auth_setup_tokens", key: String(hash.prefix(12)))
                problem = "unknown"
            } else if used != nil {
                problem = "used"
            } else if now >= expires {
                problem = "expired"
            }
        } else {
            problem = "unknown"
        }
        if let problem {
            await record("auth.setup", outcome: "failure", client: client, metadata: ["reason": .string(problem)])
            throw AuthError(
                .unauthorized,
                "this setup link is not valid (unknown, used or expired); get a new one with `moat owner setup --link` "
                    + "or by restarting `moat serve`")
        }
        try await withdrawFailures(provisional)
        let name = try Self.validUsername(username ?? "owner")
        try Self.checkPasswordRules(password)
        let passwordHash = try await Self.hashPassword(password)
        let fresh = OwnerRecord(username: name, passwordHash: passwordHash, now: now)
        // Two setups with one link at once: the second is refused here rather than audited as a setup
        // that then fails to store.
        guard !setupRunning else { throw AuthError(.alreadySetUp, "setup is already being completed; log in instead") }
        setupRunning = true
        defer { setupRunning = false }
        let owner: OwnerRecord
        do {
            owner = try await audited("auth.setup", client: client, metadata: ["via": .string("link")]) {
                try await self.writeSetup(owner: fresh, tokenHash: hash, now: now)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the owner: \(error)")
        }
        try await clearFailures([(.setup, client.limitKey)])
        return owner
    }

    private func writeSetup(owner fresh: OwnerRecord, tokenHash: String, now: Int64) async throws -> OwnerRecord {
        let owner = try await database.pool.write { db -> OwnerRecord in
            if try self.hasOwner(in: db) {
                throw AuthError(.alreadySetUp, "Moat already has an owner; log in instead")
            }
            try db.execute(
                sql: "UPDATE auth_setup_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
                arguments: [now, tokenHash])
            guard db.changesCount == 1 else {
                throw AuthError(.unauthorized, "this setup link was used already")
            }
            return try self.replaceOwner(with: fresh, in: db, keepSetupTokens: true)
        }
        try finishNewOwner(owner)
        return owner
    }

    /// After a new owner is committed: an earlier owner's TOTP secret must go (the vault's secret makes
    /// login ask for a code), and the floor rises to the new token version.
    nonisolated func finishNewOwner(_ owner: OwnerRecord) throws(AuthError) {
        for name in [Self.totpSecretName, Self.pendingTOTPSecretName] {
            do {
                if try vault.value(named: name) != nil { try vault.remove(name) }
            } catch {
                throw AuthError(
                    .storage,
                    "the owner was stored, but an earlier owner's TOTP secret could not be removed from the vault "
                        + "(\(error.description)); run `moat owner setup --reset` on this machine")
            }
        }
        raiseOwnerFloor(to: owner.tokenVersion)
    }

    /// Whether there is an owner row, or this vault has had an owner (its floor is set).
    nonisolated func hasOwner(in db: Database) throws -> Bool {
        try Row.fetchOne(db, sql: "SELECT 1 FROM auth_owner") != nil || (try ownerFloor()) != nil
    }

    /// Stores `fresh` as the owner, starting above every earlier token version, and removes everything
    /// an earlier owner left: sessions, API tokens, recovery codes (and setup tokens, unless asked).
    private nonisolated func replaceOwner(
        with fresh: OwnerRecord, in db: Database, keepSetupTokens: Bool = false
    ) throws -> OwnerRecord {
        var owner = fresh
        owner.tokenVersion = try firstTokenVersion(in: db)
        try db.execute(sql: "DELETE FROM auth_sessions")
        try db.execute(sql: "DELETE FROM auth_api_tokens")
        try db.execute(sql: "DELETE FROM auth_recovery_codes")
        if !keepSetupTokens { try db.execute(sql: "DELETE FROM auth_setup_tokens") }
        try storeOwner(owner, in: db)
        return owner
    }

    /// Sets up the owner from the terminal (`moat owner setup`): the person at this machine's account
    /// already holds the vault, so no link is needed. With `replace`, an existing (or damaged) owner,
    /// every session and every API token are removed first.
    public func setUpLocally(
        username: String?,
        password: SecretBytes,
        replace: Bool,
        client: ClientInfo
    ) async throws(AuthError) {
        let name = try Self.validUsername(username ?? "owner")
        try Self.checkPasswordRules(password)
        let exists = try await read { db in try self.hasOwner(in: db) }
        let existing = AuthError(
            .alreadySetUp,
            "Moat already has an owner; change the password with `moat owner password`, or start over with "
                + "`moat owner setup --reset` (ends every session and revokes every API token)")
        if exists && !replace { throw existing }
        let owner = OwnerRecord(username: name, passwordHash: try await Self.hashPassword(password), now: nowMillis())
        do {
            try await audited(
                "auth.setup", client: client,
                metadata: ["via": .string("terminal"), "replaced": .bool(exists)]
            ) {
                let stored = try await self.database.pool.write { db in
                    // Checked again where the owner is written: a setup that finished meanwhile (a link,
                    // another terminal) is never replaced without `--reset`.
                    if !replace, try self.hasOwner(in: db) { throw existing }
                    return try self.replaceOwner(with: owner, in: db)
                }
                try self.finishNewOwner(stored)
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the owner: \(error)")
        }
    }

    // MARK: Rules

    static func validUsername(_ text: String) throws(AuthError) -> String {
        let name = text.trimmingCharacters(in: .whitespaces)
        guard (1...64).contains(name.count), PrintableText.isPrintable(name)
        else {
            throw AuthError(.invalidInput, "the username must be 1 to 64 characters without control characters")
        }
        return name
    }

    /// 12 to 1024 characters (user-perceived characters, so any script counts fairly); nothing else is
    /// required (ASVS: no composition rules).
    static func checkPasswordRules(_ password: SecretBytes) throws(AuthError) {
        let count = password.withUnsafeBytes { bytes in
            String(decoding: bytes, as: UTF8.self).count
        }
        guard count >= 12 else {
            throw AuthError(
                .invalidInput, "the password is too short: use at least 12 characters (a passphrase is fine)")
        }
        guard count <= 1024 else {
            throw AuthError(.invalidInput, "the password is too long: use at most 1024 characters")
        }
    }

    /// The Argon2id hash of `password`, for the owner row. Argon2 takes tens of milliseconds of CPU (more
    /// on a busy machine), so it runs on a thread of its own: on a cooperative thread it would stall every
    /// request of the server meanwhile (2 threads on 2 cores).
    static func hashPassword(_ password: SecretBytes) async throws(AuthError) -> String {
        let hashed = await onThreadOfItsOwn { Result { () throws(VaultError) in try PasswordHash.make(password) } }
        do {
            return try hashed.get()
        } catch {
            throw AuthError(.storage, "could not hash the password: \(error.description)")
        }
    }
}
