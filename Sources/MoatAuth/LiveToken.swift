public import Foundation
import JWTKit
import Synchronization

/// What a short-lived token may be used for: exactly one kind of live connection.
public enum LiveTokenPurpose: String, Sendable, CaseIterable {
    /// The server-sent event stream `/api/events`.
    case events = "moat.events"
    /// A WebSocket connection.
    case websocket = "moat.websocket"
    /// The console's chat socket (`/api/chat/socket`): issued only to an identity with the `write` scope
    /// (`POST /api/chat/live-token`), bound to the browser session that asked for it.
    case chat = "moat.chat"
}

/// The checked claims of a live token.
public struct LiveTokenClaims: Sendable {
    public let purpose: LiveTokenPurpose
    /// The token's unique id.
    public let jti: String
    public let expires: Date
    /// The owner's token version when it was issued ("revoke everything" bumps it).
    public let tokenVersion: Int64
    /// The browser session that asked for it (its id hash, ``SessionInfo/idHash``), when one did: a
    /// connection opened with the token lasts only as long as that session.
    public let session: String?
}

/// Short-lived JWTs for live connections, HS256 through jwt-kit with the algorithm pinned.
///
/// The header's `alg` is never trusted: a token whose header says anything but `HS256` (including
/// `none`, `HS512`, `RS256` — algorithm confusion) is refused before jwt-kit sees it, and the key
/// collection holds only the one HS256 key. `iss`, `aud`, `exp`, `nbf`, `jti`, `typ` (the purpose) and
/// `ver` (the token version) are all checked against an injected clock, with no clock-skew leeway
/// (issuer and verifier are the same process). A token may live at most ``maximumLifetime``, and it is
/// accepted once: its `jti` is remembered until it expires.
public struct LiveTokenIssuer: Sendable {
    /// Five minutes.
    public static let maximumLifetime: TimeInterval = 300

    private let keys: JWTKeyCollection
    private let issuer: String
    private let audience: String
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - key: at least 32 bytes (Moat's comes from the vault).
    ///   - audience: this installation (`moat:<installation id>`), so a token from another Moat is refused.
    public init(
        key: [UInt8], issuer: String = "moat", audience: String, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        precondition(key.count >= 32, "LiveTokenIssuer: the key must be at least 32 bytes")
        keys = JWTKeyCollection()
        let collection = keys
        let hmacKey = HMACKey(from: key)
        // The collection is an actor; adding the one key is done before any use, on first access.
        self.keyReady = Task { await collection.add(hmac: hmacKey, digestAlgorithm: .sha256) }
        self.issuer = issuer
        self.audience = audience
        self.now = now
    }

    private let keyReady: Task<JWTKeyCollection, Never>
    private let usedIDs = UsedTokenIDs()

    /// A token for `purpose`, valid from now for `lifetime` seconds (at most five minutes), bound to
    /// `session` (a ``SessionInfo/idHash``) when given.
    public func issue(
        purpose: LiveTokenPurpose, tokenVersion: Int64, lifetime: TimeInterval = LiveTokenIssuer.maximumLifetime,
        session: String? = nil
    ) async throws(AuthError) -> String {
        guard lifetime > 0, lifetime <= Self.maximumLifetime else {
            throw AuthError(.invalidInput, "a live token lives at most 5 minutes")
        }
        let start = now()
        let payload = LivePayload(
            iss: IssuerClaim(value: issuer), aud: AudienceClaim(value: [audience]), sub: SubjectClaim(value: "owner"),
            exp: ExpirationClaim(value: start.addingTimeInterval(lifetime)), nbf: NotBeforeClaim(value: start),
            iat: IssuedAtClaim(value: start), jti: IDClaim(value: AuthRandom.base64URL(AuthRandom.bytes(16))),
            typ: purpose.rawValue, ver: tokenVersion, sid: session)
        do {
            _ = await keyReady.value
            return try await keys.sign(payload, header: ["alg": "HS256", "typ": "JWT"])
        } catch {
            throw AuthError(.storage, "could not sign a live token")
        }
    }

    /// The claims of `token` when it is an intact HS256 token of this issuer and audience, for
    /// `purpose`, currently valid, and made under `tokenVersion`; otherwise ``AuthError/Code/unauthorized``.
    public func verify(_ token: String, purpose: LiveTokenPurpose, tokenVersion: Int64) async throws(AuthError)
        -> LiveTokenClaims
    {
        guard token.utf8.count <= 4096, Self.headerIsPinned(token) else { throw Self.refused("algorithm not allowed") }
        let payload: LivePayload
        do {
            _ = await keyReady.value
            payload = try await keys.verify(token, as: LivePayload.self)
        } catch {
            throw Self.refused("bad signature or malformed token")
        }
        let at = now()
        guard payload.iss.value == issuer else { throw Self.refused("wrong issuer") }
        guard payload.aud.value == [audience] else { throw Self.refused("wrong audience") }
        guard payload.typ == purpose.rawValue else { throw Self.refused("wrong purpose") }
        guard at < payload.exp.value else { throw Self.refused("expired") }
        guard at >= payload.nbf.value else { throw Self.refused("not valid yet") }
        guard payload.exp.value.timeIntervalSince(payload.nbf.value) <= Self.maximumLifetime else {
            throw Self.refused("lifetime too long")
        }
        guard !payload.jti.value.isEmpty else { throw Self.refused("no token id") }
        guard payload.ver == tokenVersion else { throw Self.refused("revoked") }
        // Last, so only a token that passed every other check uses up its id: it opens one connection.
        guard usedIDs.claim(payload.jti.value, until: payload.exp.value, now: at) else {
            throw Self.refused("already used; get a new one for each connection")
        }
        return LiveTokenClaims(
            purpose: purpose, jti: payload.jti.value, expires: payload.exp.value, tokenVersion: payload.ver,
            session: payload.sid)
    }

    static func refused(_ reason: String) -> AuthError { AuthError(.unauthorized, "live token refused: \(reason)") }

    /// Whether the token's header is exactly an HS256 JWT header (read by hand, before any library
    /// decides anything from it).
    static func headerIsPinned(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty, let data = base64URLDecode(String(parts[0])),
            let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        guard header["alg"] as? String == "HS256" else { return false }
        if let typ = header["typ"], typ as? String != "JWT" { return false }
        // No key selection or critical extensions from the header: there is one key.
        return header["kid"] == nil && header["jku"] == nil && header["jwk"] == nil && header["crit"] == nil
            && header["x5u"] == nil && header["x5c"] == nil
    }

    static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// The ids of live tokens already used, each kept until its token expires (at most five minutes), so a
/// token captured on its way (a proxy log, a browser extension) cannot open a second connection.
final class UsedTokenIDs: Sendable {
    private let seen = Mutex<[String: Date]>([:])

    /// Records `id`; false when it was recorded already (and has not expired since).
    func claim(_ id: String, until expiry: Date, now: Date) -> Bool {
        seen.withLock { seen in
            if seen.count > 1024 { seen = seen.filter { $0.value > now } }
            if let known = seen[id], known > now { return false }
            seen[id] = expiry
            return true
        }
    }
}

/// The claims Moat puts in a live token.
struct LivePayload: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    var typ: String
    var ver: Int64
    /// The session the token is bound to (``LiveTokenClaims/session``); absent when none is.
    var sid: String?

    /// The claims are checked by ``LiveTokenIssuer/verify(_:purpose:tokenVersion:)`` against its clock.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
