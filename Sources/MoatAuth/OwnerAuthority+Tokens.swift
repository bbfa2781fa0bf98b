public import Foundation
import GRDB
import MoatAudit
import MoatCore
public import MoatStore
import Synchronization

/// An API token as listed: never the token itself, only its prefix.
public struct APITokenRecord: Sendable, Equatable, AuthenticatedRow {
    public static let macTable = "auth_api_tokens"

    /// The 8-character public prefix (`moat_<prefix>_…`); logs and audit show only this.
    public let prefix: String
    public let name: String
    public let scope: TokenScope
    /// Hex SHA-256 of the whole token.
    let tokenHash: String
    /// The same hash as bytes, what a bearer token is compared with (empty when the hex is malformed:
    /// then nothing matches).
    let tokenDigest: [UInt8]
    /// Milliseconds since 1970.
    public let createdAt: Int64
    public let expiresAt: Int64?
    public internal(set) var lastUsedAt: Int64?
    public internal(set) var revokedAt: Int64?

    /// What the row MAC covers: every field but `last_used_at` (bookkeeping, never a grant). Holds the
    /// token's hash, not the token.
    public var macFields: [String] {
        [
            prefix, name, scope.rawValue, tokenHash, String(createdAt), expiresAt.map(String.init) ?? "",
            revokedAt.map(String.init) ?? "",
        ]
    }

    init(row: Row) {
        prefix = row["prefix"]
        name = row["name"]
        scope = TokenScope(rawValue: row["scope"]) ?? .read
        tokenHash = row["token_hash"]
        tokenDigest = Hex.decode(tokenHash) ?? []
        createdAt = row["created_at"]
        expiresAt = row["expires_at"]
        lastUsedAt = row["last_used_at"]
        revokedAt = row["revoked_at"]
    }

    init(prefix: String, name: String, scope: TokenScope, tokenHash: String, createdAt: Int64, expiresAt: Int64?) {
        self.prefix = prefix
        self.name = name
        self.scope = scope
        self.tokenHash = tokenHash
        self.tokenDigest = Hex.decode(tokenHash) ?? []
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// Whether the token is usable at `now` (milliseconds).
    public func isActive(at now: Int64) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// A newly created API token: ``token`` is shown once and never stored.
public struct CreatedAPIToken: Sendable {
    public let token: String
    public let record: APITokenRecord
}

extension OwnerAuthority {
    /// `moat_` + 8 base62 characters of prefix + `_` + 40 base62 characters of secret (about 238 bits).
    static let tokenSecretLength = 40

    /// Creates an API token. `lifetime` nil uses ``AuthSettings/defaultTokenLifetime``; `.infinity`
    /// means no expiry.
    public func createToken(
        name: String,
        scope: TokenScope,
        lifetime: TimeInterval?,
        actor: String = "owner",
        client: ClientInfo
    ) async throws(AuthError) -> CreatedAPIToken {
        let owner = try await requireOwner()
        let cleanName = name.trimmingCharacters(in: .whitespaces)
        guard (1...64).contains(cleanName.count),
            PrintableText.isPrintable(cleanName)
        else {
            throw AuthError(.invalidInput, "a token name must be 1 to 64 characters without control characters")
        }
        let prefix = AuthRandom.string(8)
        let token = "moat_" + prefix + "_" + AuthRandom.string(Self.tokenSecretLength)
        let now = nowMillis()
        let seconds = lifetime ?? settings.defaultTokenLifetime
        let expires = seconds.flatMap { $0.isFinite ? now + Int64($0 * 1000) : nil }
        let record = APITokenRecord(
            prefix: prefix, name: cleanName, scope: scope, tokenHash: AuthRandom.sha256Hex(token), createdAt: now,
            expiresAt: expires)
        do {
            try await audited(
                "auth.token.create", actor: actor, target: "token:" + prefix, client: client,
                metadata: [
                    "name": .string(cleanName), "scope": .string(scope.rawValue),
                    "expires_at": expires.map { .string(Self.timestamp($0)) } ?? .null,
                ]
            ) {
                try await self.database.pool.write { db in
                    // The owner checked above must still be the owner: a reset or revoke-all that ran while
                    // the audit entry was written would otherwise miss this token.
                    guard try self.currentOwner(in: db).sameCredentials(owner) else { throw Self.ownerChanged }
                    try self.storeToken(record, in: db, new: true)
                }
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not store the token: \(error)")
        }
        return CreatedAPIToken(token: token, record: record)
    }

    /// Writes `record`; a `new` one never replaces an existing row (a prefix collision fails instead).
    nonisolated func storeToken(_ record: APITokenRecord, in db: Database, new: Bool = false) throws {
        try db.execute(
            sql: (new ? "INSERT" : "INSERT OR REPLACE") + """
                 INTO auth_api_tokens
                  (prefix, name, scope, token_hash, created_at, expires_at, last_used_at, revoked_at, mac)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                record.prefix, record.name, record.scope.rawValue, record.tokenHash, record.createdAt,
                record.expiresAt, record.lastUsedAt, record.revokedAt, rows.mac(record),
            ])
    }

    /// Every API token whose row verifies, newest first (tampered rows are audited and left out). The
    /// last-used time includes uses not written to `moat.db` yet (``UsageLedger``).
    public func tokens() async throws(AuthError) -> [APITokenRecord] {
        let all = try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM auth_api_tokens ORDER BY created_at DESC").map {
                (APITokenRecord(row: $0), $0["mac"] as String)
            }
        }
        var out: [APITokenRecord] = []
        for (record, mac) in all {
            if rows.verify(mac, of: record) {
                var record = record
                record.lastUsedAt = tokenUse.withLock { $0.latest(record.prefix, stored: record.lastUsedAt) }
                out.append(record)
            } else {
                await reportTamper(table: "auth_api_tokens", key: record.prefix)
            }
        }
        return out
    }

    /// Revokes the token with `prefix`; it answers 401 from then on.
    public func revokeToken(prefix: String, actor: String = "owner", client: ClientInfo) async throws(AuthError) {
        let missing = AuthError(
            .notFound, "no API token with prefix \(Self.printable(prefix)); `moat token list` shows them")
        guard let record = try await tokens().first(where: { $0.prefix == prefix }) else { throw missing }
        guard record.revokedAt == nil else { return }
        let now = nowMillis()
        do {
            try await audited("auth.token.revoke", actor: actor, target: "token:" + prefix, client: client) {
                // The row as it is now, not the copy read before the audit append: a revoke-all or a
                // last-used write in between is kept, and the first revocation time stands.
                try await self.database.pool.write { db in
                    guard
                        let row = try Row.fetchOne(
                            db, sql: "SELECT * FROM auth_api_tokens WHERE prefix = ?", arguments: [prefix])
                    else { throw missing }
                    var current = APITokenRecord(row: row)
                    guard self.rows.verify(row["mac"], of: current) else { throw missing }
                    guard current.revokedAt == nil else { return }
                    current.revokedAt = now
                    try self.storeToken(current, in: db)
                }
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.storage, "could not revoke the token: \(error)")
        }
    }

    /// The token a bearer credential names, when it is well-formed, known, intact, unexpired and not
    /// revoked. Use of a revoked token is audited. The hash is compared in constant time.
    ///
    /// Every call sees the token's row as of the latest commit (a revocation counts from the next
    /// request): from the verified copy in ``snapshot`` while `moat.db` has not changed since it was
    /// read, else from the database. The use itself is written at most once per ``usageWriteInterval``
    /// (``UsageLedger``): a read never waits for an fsync, and a request whose rows are in the snapshot
    /// waits for neither the actor nor the database.
    ///
    /// `client` is evaluated only when the database path needs it (to audit a revoked token's use).
    /// `moment` is the version the request read once (``AuthMoment``); nil reads it now.
    public nonisolated func authenticate(
        bearer token: String, client: @autoclosure @Sendable () -> ClientInfo, at moment: AuthMoment? = nil
    ) async throws(AuthError) -> APITokenRecord {
        guard let prefix = Self.tokenPrefix(token) else { throw AuthError(.unauthorized, "invalid API token") }
        let version = (moment ?? self.moment()).version
        // A revoked token takes the database path, which audits its use.
        guard let version, let cached = snapshotToken(prefix, at: version), cached.revokedAt == nil else {
            return try await authenticateFromDatabase(token, prefix: prefix, client: client(), version: version)
        }
        return try await accept(token, cached)
    }

    /// ``authenticate(bearer:client:)`` reading the row and the owner from `moat.db` (one transaction),
    /// remembering both in the snapshot of `version` when they verify.
    private func authenticateFromDatabase(
        _ token: String, prefix: String, client: ClientInfo, version: Int64?
    ) async throws(AuthError) -> APITokenRecord {
        let (found, owner) = try await read { db in
            let token = try Row.fetchOne(db, sql: "SELECT * FROM auth_api_tokens WHERE prefix = ?", arguments: [prefix])
                .map { (APITokenRecord(row: $0), $0["mac"] as String) }
            return (token, try self.ownerResult(in: db))
        }
        guard let (record, mac) = found else { throw AuthError(.unauthorized, "invalid API token") }
        guard rows.verify(mac, of: record) else {
            await reportTamper(table: "auth_api_tokens", key: prefix)
            throw AuthError(.unauthorized, "invalid API token")
        }
        guard AuthRandom.sha256(of: token, matches: record.tokenDigest) else {
            throw AuthError(.unauthorized, "invalid API token")
        }
        if record.revokedAt != nil {
            await self.record(
                "auth.token.use_revoked", actor: "token:" + prefix, target: "token:" + prefix, outcome: "denied",
                client: client)
            throw AuthError(.unauthorized, "this API token was revoked")
        }
        // The owner must exist and be intact for any token to count (a damaged owner row fails closed).
        switch owner {
        case .some(.success(let owner)):
            if let version { remember(owner: owner, token: record, at: version) }
        case .some(.failure(let error)): throw error
        case .none: throw AuthError(.setupRequired, Self.setupMessage)
        }
        return try await accept(token, record)
    }

    /// The last checks of a verified, unrevoked row: the token's hash and expiry; then its use is noted.
    private nonisolated func accept(_ token: String, _ row: APITokenRecord) async throws(AuthError) -> APITokenRecord {
        var record = row
        guard AuthRandom.sha256(of: token, matches: record.tokenDigest) else {
            throw AuthError(.unauthorized, "invalid API token")
        }
        let now = nowMillis()
        if let expires = record.expiresAt, now >= expires {
            throw AuthError(.unauthorized, "this API token expired; create a new one with `moat token create`")
        }
        if tokenUse.withLock({ $0.use(record.prefix, at: now, stored: record.lastUsedAt) }) {
            await storeUse(token: record.prefix, at: now)
        }
        record.lastUsedAt = now
        return record
    }

    /// The prefix of a well-formed token (`moat_` + 8 base62 + `_` + at least 32 base62), else nil.
    public nonisolated static func tokenPrefix(_ token: String) -> String? {
        let parts = token.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "moat", parts[1].utf8.count == 8, (32...128).contains(parts[2].utf8.count),
            parts[1].utf8.allSatisfy(AuthRandom.isBase62), parts[2].utf8.allSatisfy(AuthRandom.isBase62)
        else { return nil }
        return String(parts[1])
    }

    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 }.prefix(40)))
    }
}

extension AuthRandom {
    static func isBase62(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
