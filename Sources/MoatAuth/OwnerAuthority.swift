import Crypto
public import Foundation
import GRDB
public import MoatAudit
import MoatCore
public import MoatStore
public import MoatVault
import Synchronization

/// The one owner's credentials and everything that proves a request comes from them: setup links,
/// password login, sessions, CSRF tokens, API tokens, TOTP with recovery codes, and "revoke everything".
///
/// State lives in `moat.db`; every row that grants power carries an HMAC keyed by the vault entry
/// ``macKeyName`` (``RowAuthenticator``), so someone who can write the database but not read the vault
/// cannot create a session, a token or an owner. A row whose MAC fails is treated as absent and audited
/// once as `auth.tamper`; an owner row that fails makes every login fail closed until the owner resets
/// it from the terminal (`moat owner setup --reset`). Secrets (session ids, tokens, setup tokens,
/// recovery codes) are stored only as SHA-256 hashes; the password only as an Argon2id hash.
///
/// Every change is audited before it happens (``AuditLog/performAfterAudit(_:_:)``); audit entries carry
/// the source address and user agent but never a secret, and a failed login never says whether the
/// account exists.
public actor OwnerAuthority {
    /// The vault entry keying the row MACs and CSRF tokens.
    public static let macKeyName = "MOAT_AUTH_MAC_KEY"
    /// The vault entry keying the short-lived JWTs.
    public static let jwtKeyName = "MOAT_AUTH_JWT_KEY"
    /// The vault entry holding the enrolled TOTP secret.
    public static let totpSecretName = "MOAT_TOTP_SECRET"
    /// The vault entry holding a TOTP secret whose enrolment is not confirmed yet.
    public static let pendingTOTPSecretName = "MOAT_TOTP_PENDING"

    let database: MoatDatabase
    let rows: RowAuthenticator
    let audit: AuditLog
    let vault: UnlockedVault
    /// The limits in force (`gateway.auth.limits`); a config reload replaces them (``apply(_:)``).
    public nonisolated var settings: AuthSettings { liveSettings.withLock { $0 } }
    private nonisolated let liveSettings: Mutex<AuthSettings>
    let now: @Sendable () -> Date
    /// Keys CSRF tokens and the stored form of limit keys (in secret memory; see ``hmac(_:with:)``).
    let csrfKey: SecretBytes
    /// Keys the stored form of recovery codes.
    let recoveryKey: SecretBytes
    let jwtKey: SecretBytes
    let slots: PasswordSlots
    /// The hash unknown usernames are checked against, so they cost exactly what a wrong password costs.
    let dummyHash: String
    var reportedTamper = Set<String>()
    /// The highest token-version floor this process has read or written: a floor lowered in the vault
    /// (two processes racing a raise) or a vault that cannot be read for a moment does not lower the
    /// guard below what was already seen.
    let floorSeen = Mutex<Int64>(0)
    /// Whether a link setup is being stored right now (a second one at once is refused, not audited twice).
    var setupRunning = false
    /// When each repeated refusal was last audited (see ``shouldRecordRefusal(_:)``).
    var recentRefusals: [String: Int64] = [:]
    /// The global refusal budget's window (see ``refusalAuditDecision(outcome:)``).
    var refusalBudget = RefusalBudget()
    /// When each API token was last used, written at most once per ``usageWriteInterval`` per token.
    /// Behind a lock, not the actor: a request whose rows are in ``snapshot`` never waits for the actor.
    let tokenUse = Mutex(UsageLedger(interval: OwnerAuthority.usageWriteInterval))
    /// The verified owner state and API tokens as of one version of `moat.db` (see ``AuthSnapshot``).
    let snapshot = Mutex<AuthSnapshot?>(nil)
    /// When each session was last used (its idle deadline), written like ``tokenUse``.
    var sessionUse = UsageLedger(interval: OwnerAuthority.usageWriteInterval)

    /// Opens the authority over `database`, taking its keys from `vault` (created on first use).
    public init(
        database: MoatDatabase,
        vault: UnlockedVault,
        audit: AuditLog,
        settings: AuthSettings = AuthSettings(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        let macKey = try vault.internalKey(named: Self.macKeyName)
        self.database = database
        self.rows = RowAuthenticator(secret: macKey)
        self.csrfKey = Self.hmac(Data("moat-csrf-v1".utf8), with: macKey)
        self.recoveryKey = Self.hmac(Data("moat-recovery-v1".utf8), with: macKey)
        self.jwtKey = try vault.internalKey(named: Self.jwtKeyName)
        self.audit = audit
        self.vault = vault
        self.liveSettings = Mutex(settings)
        self.now = now
        self.slots = PasswordSlots(limit: settings.concurrentPasswordChecks)
        self.dummyHash = try Self.sharedDummyHash.get()
    }

    /// One dummy hash per process, made with the same parameters as real ones (so checking it costs the
    /// same); it hashes a random password nobody knows.
    static let sharedDummyHash: Result<String, VaultError> = {
        var random = AuthRandom.bytes(24)
        return Result { () throws(VaultError) -> String in try PasswordHash.make(SecretBytes(wiping: &random)) }
    }()

    /// Puts new limits in force (a config reload): failures are counted against the new numbers from the
    /// next check on, and sessions are judged by the new timeouts the next time they are used; rows
    /// already written (an API token's expiry) keep what they were given.
    public nonisolated func apply(_ settings: AuthSettings) {
        liveSettings.withLock { $0 = settings }
        slots.limit = settings.concurrentPasswordChecks
    }

    /// HMAC-SHA256 of `data` keyed by `key`, itself kept in secret memory (a derived key or a MAC that
    /// is only compared).
    static func hmac(_ data: Data, with key: SecretBytes) -> SecretBytes {
        key.withSymmetricKey { key in
            let code = HMAC<SHA256>.authenticationCode(for: data, using: key)
            return code.withUnsafeBytes { SecretBytes(copying: $0) }
        }
    }

    /// The key for ``LiveTokenIssuer`` (short-lived JWTs), from the vault: a copy for jwt-kit, which
    /// keeps its own for the life of the issuer.
    public nonisolated var liveTokenKey: [UInt8] { jwtKey.withUnsafeBytes { Array($0) } }

    nonisolated func nowMillis() -> Int64 { Int64((now().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// RFC 3339 UTC with milliseconds, for display.
    public nonisolated static func timestamp(_ millis: Int64) -> String {
        AuditLog.timestamp(Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    /// Appends an audit entry and only then runs `body` (nothing changes when the append fails).
    func audited<T: Sendable>(
        _ action: String,
        actor: String = "owner",
        target: String = "",
        outcome: String = "success",
        client: ClientInfo,
        metadata: [String: AuditValue] = [:],
        _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let event = AuditEvent(
            actor: actor, action: action, target: target, sourceIP: client.sourceIP,
            userAgent: client.userAgent, outcome: outcome, metadata: Self.withForwarded(metadata, client))
        do {
            return try await audit.performAfterAudit(event, body)
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not record \(action) in the audit log, so nothing changed: \(error)")
        }
    }

    /// Records an event that changes nothing (a failure, a refusal). Best effort: the refusal stands
    /// whether or not the entry could be written. Refusals share one budget per minute across all
    /// sources (``refusalAuditDecision(outcome:)``), so traffic that proves nothing cannot grow the log
    /// without bound.
    func record(
        _ action: String,
        actor: String = "anonymous",
        target: String = "",
        outcome: String,
        client: ClientInfo,
        metadata: [String: AuditValue] = [:]
    ) async {
        let decision = refusalAuditDecision(outcome: outcome)
        if let summary = decision.summary {
            _ = try? await audit.append(summary)
        }
        guard decision.record else { return }
        _ = try? await audit.append(
            AuditEvent(
                actor: actor, action: action, target: target, sourceIP: client.sourceIP,
                userAgent: client.userAgent, outcome: outcome, metadata: Self.withForwarded(metadata, client)))
    }

    /// `metadata` plus `forwarded_for` when a proxy reported the original client's address.
    static func withForwarded(_ metadata: [String: AuditValue], _ client: ClientInfo) -> [String: AuditValue] {
        guard let forwarded = client.forwardedFor else { return metadata }
        var metadata = metadata
        metadata["forwarded_for"] = .string(forwarded)
        return metadata
    }

    /// Audits a row whose MAC failed (once per row per process).
    func reportTamper(table: String, key: String) async {
        guard reportedTamper.insert(table + ":" + key).inserted else { return }
        _ = try? await audit.append(
            AuditEvent(
                actor: "system", action: "auth.tamper", target: table + ":" + key, outcome: "ignored",
                metadata: ["table": .string(table)]))
    }

    /// Runs `body` in a read transaction on the database's own queue: no thread of the cooperative pool
    /// waits for SQLite. The actor may run other calls meanwhile, so a check that a later change relies
    /// on belongs in the same transaction as the change.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(AuthError) -> T {
        do {
            return try await database.pool.read(body)
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not read moat.db: \(error)")
        }
    }

    /// Runs `body` in one write transaction on the database's own queue (see ``read(_:)``).
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(AuthError) -> T {
        do {
            return try await database.pool.write(body)
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not write moat.db: \(error)")
        }
    }
}

/// A counter of Argon2 checks in flight; a check that finds every slot taken is refused (429), never queued.
final class PasswordSlots: Sendable {
    private let inUse = Mutex(0)
    private let cap: Mutex<Int>

    /// How many checks may run at once (at least one); a lower limit leaves checks already running alone.
    var limit: Int {
        get { cap.withLock { $0 } }
        set { cap.withLock { $0 = max(1, newValue) } }
    }

    init(limit: Int) { cap = Mutex(max(1, limit)) }

    func acquire() -> Bool {
        let limit = self.limit
        return inUse.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { inUse.withLock { $0 -= 1 } }

    /// Runs an Argon2 verification on its own thread (it blocks for tens of milliseconds and must not
    /// hold a thread of the cooperative pool), or refuses when all slots are busy.
    func verify(_ password: SecretBytes, against hash: String) async throws(AuthError) -> Bool {
        guard acquire() else {
            throw AuthError(.rateLimited, "too many password checks at once; try again in a second", retryAfter: 1)
        }
        defer { release() }
        return await onThreadOfItsOwn { PasswordHash.verify(password, against: hash) }
    }
}
