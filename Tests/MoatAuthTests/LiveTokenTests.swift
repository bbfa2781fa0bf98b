import Crypto
import Foundation
import MoatAuth
import Synchronization
import Testing

@Suite("Short-lived JWTs")
struct LiveTokenTests {
    static let key = Array(repeating: UInt8(7), count: 32)
    static let audience = "moat:test-installation"

    final class Clock: Sendable {
        let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        var now: Date { value.withLock { $0 } }
        func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
    }

    static func issuer(_ clock: Clock, audience: String = audience, issuer: String = "moat") -> LiveTokenIssuer {
        LiveTokenIssuer(key: key, issuer: issuer, audience: audience, now: { clock.now })
    }

    static func b64(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func json(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// A token built by hand, signed with `key` by the HMAC the header names (or not at all).
    static func forge(header: [String: Any], claims: [String: Any], key: [UInt8] = LiveTokenTests.key) -> String {
        let input = b64(json(header)) + "." + b64(json(claims))
        let symmetric = SymmetricKey(data: key)
        let signature: [UInt8]
        switch header["alg"] as? String {
        case "HS256": signature = Array(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: symmetric))
        case "HS512": signature = Array(HMAC<SHA512>.authenticationCode(for: Data(input.utf8), using: symmetric))
        case "HS384": signature = Array(HMAC<SHA384>.authenticationCode(for: Data(input.utf8), using: symmetric))
        // RS256 "signed" with the shared secret as HMAC: the classic algorithm-confusion forgery.
        case "RS256": signature = Array(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: symmetric))
        default: signature = []
        }
        return input + "." + b64(signature)
    }

    static func claims(
        _ clock: Clock, lifetime: TimeInterval = 300, nbfOffset: TimeInterval = 0, aud: String = audience,
        iss: String = "moat", typ: String = "moat.events", ver: Int64 = 1, jti: String? = "abc"
    ) -> [String: Any] {
        let now = clock.now.timeIntervalSince1970
        var object: [String: Any] = [
            "iss": iss, "aud": [aud], "sub": "owner", "iat": now, "nbf": now + nbfOffset, "exp": now + lifetime,
            "typ": typ, "ver": ver,
        ]
        if let jti { object["jti"] = jti }
        return object
    }

    static func refused(_ issuer: LiveTokenIssuer, _ token: String, version: Int64 = 1) async -> Bool {
        do {
            _ = try await issuer.verify(token, purpose: .events, tokenVersion: version)
            return false
        } catch {
            return error.code == .unauthorized
        }
    }

    @Test("a fresh token verifies; the hand-built control token verifies too")
    func valid() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let token = try await issuer.issue(purpose: .events, tokenVersion: 1)
        let claims = try await issuer.verify(token, purpose: .events, tokenVersion: 1)
        #expect(claims.purpose == .events && claims.tokenVersion == 1 && !claims.jti.isEmpty)
        #expect(claims.expires == clock.now.addingTimeInterval(300))
        let control = Self.forge(header: ["alg": "HS256", "typ": "JWT"], claims: Self.claims(clock))
        #expect(try await issuer.verify(control, purpose: .events, tokenVersion: 1).jti == "abc")
        let second = try await issuer.issue(purpose: .events, tokenVersion: 1)
        #expect(try await issuer.verify(second, purpose: .events, tokenVersion: 1).jti != claims.jti)
    }

    @Test("a token opens one connection: the second use is refused, another fresh token works")
    func singleUse() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let token = try await issuer.issue(purpose: .events, tokenVersion: 1)
        _ = try await issuer.verify(token, purpose: .events, tokenVersion: 1)
        let again = await authError { try await issuer.verify(token, purpose: .events, tokenVersion: 1) }
        #expect(again?.code == .unauthorized && again?.message.contains("already used") == true)
        // A token refused for another reason (wrong version) does not use up its id.
        let other = try await issuer.issue(purpose: .events, tokenVersion: 1)
        #expect(await Self.refused(issuer, other, version: 2))
        _ = try await issuer.verify(other, purpose: .events, tokenVersion: 1)
    }

    @Test("none, HS512, RS256-with-the-secret, kid and jku headers are refused")
    func pinnedAlgorithm() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let claims = Self.claims(clock)
        let none = Self.b64(Self.json(["alg": "none", "typ": "JWT"])) + "." + Self.b64(Self.json(claims)) + "."
        #expect(await Self.refused(issuer, none))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "none"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "HS512", "typ": "JWT"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "HS384"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "RS256", "typ": "JWT"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "HS256", "kid": "other"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "HS256", "jku": "https://x/"], claims: claims)))
        #expect(await Self.refused(issuer, Self.forge(header: ["alg": "HS256", "typ": "JWS"], claims: claims)))
    }

    @Test("wrong key, flipped signature or payload byte are refused")
    func integrity() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let wrongKey = Self.forge(
            header: ["alg": "HS256"], claims: Self.claims(clock), key: Array(repeating: 8, count: 32))
        #expect(await Self.refused(issuer, wrongKey))
        let token = try await issuer.issue(purpose: .events, tokenVersion: 1)
        var characters = Array(token)
        let last = characters.count - 2
        characters[last] = characters[last] == "A" ? "B" : "A"
        #expect(await Self.refused(issuer, String(characters)))
        let parts = token.split(separator: ".").map(String.init)
        let payload = Self.b64(Self.json(Self.claims(clock, ver: 2)))
        #expect(await Self.refused(issuer, parts[0] + "." + payload + "." + parts[2], version: 2))
    }

    @Test("expired, not yet valid, too long-lived, wrong aud/iss/typ, other version, no jti: all refused")
    func claimsChecked() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let header: [String: Any] = ["alg": "HS256", "typ": "JWT"]
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, nbfOffset: 60))))
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, lifetime: 600))))
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, aud: "moat:other"))))
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, iss: "evil"))))
        #expect(
            await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, typ: "moat.websocket"))))
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, ver: 2))))
        #expect(await Self.refused(issuer, Self.forge(header: header, claims: Self.claims(clock, jti: nil))))
        let token = try await issuer.issue(purpose: .events, tokenVersion: 1, lifetime: 60)
        let twin = try await issuer.issue(purpose: .events, tokenVersion: 1, lifetime: 60)
        clock.advance(59)
        _ = try await issuer.verify(token, purpose: .events, tokenVersion: 1)
        clock.advance(1)
        #expect(await Self.refused(issuer, twin))
        // Another installation's issuer (different audience) refuses this one's tokens.
        let fresh = try await issuer.issue(purpose: .events, tokenVersion: 1)
        #expect(await Self.refused(Self.issuer(clock, audience: "moat:elsewhere"), fresh))
        // Revoke everything: the version moved on.
        #expect(await Self.refused(issuer, fresh, version: 2))
        await #expect(throws: AuthError.self) {
            try await issuer.issue(purpose: .events, tokenVersion: 1, lifetime: 301)
        }
    }

    @Test(
        "a chat token carries the session it was minted for, opens nothing else, and a session changed in the payload breaks its signature"
    )
    func chatTokenBinding() async throws {
        let clock = Clock()
        let issuer = Self.issuer(clock)
        let session = String(repeating: "ab", count: 32)
        let token = try await issuer.issue(purpose: .chat, tokenVersion: 1, lifetime: 60, session: session)
        // Another purpose does not accept it (and, refused before the id check, does not use it up).
        #expect(await Self.refused(issuer, token))
        let claims = try await issuer.verify(token, purpose: .chat, tokenVersion: 1)
        #expect(claims.session == session && claims.purpose == .chat)
        #expect(claims.expires == clock.now.addingTimeInterval(60))
        // An events token names no session.
        let events = try await issuer.issue(purpose: .events, tokenVersion: 1)
        #expect(try await issuer.verify(events, purpose: .events, tokenVersion: 1).session == nil)
        // The same claims with another session, re-encoded under the original signature: refused.
        let fresh = try await issuer.issue(purpose: .chat, tokenVersion: 1, session: session)
        let parts = fresh.split(separator: ".").map(String.init)
        var padded = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while padded.count % 4 != 0 { padded += "=" }
        let decoded = try #require(Data(base64Encoded: padded))
        var payload = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
        payload["sid"] = String(repeating: "cd", count: 32)
        let swapped = parts[0] + "." + Self.b64(Self.json(payload)) + "." + parts[2]
        await #expect(throws: AuthError.self) { try await issuer.verify(swapped, purpose: .chat, tokenVersion: 1) }
        #expect(try await issuer.verify(fresh, purpose: .chat, tokenVersion: 1).session == session)
    }
}
