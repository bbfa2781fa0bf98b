import Foundation
import MoatAuth
import MoatConsole
import MoatHTTP
import MoatTestSupport
import Testing

/// `POST /api/chat/live-token` for an owner reached through `tailscale serve` (a real server on loopback,
/// the fake LocalAPI): a Tailscale identity mints a chat token with its CSRF token and a same origin; the
/// token names no session (there is none) and so is bound to the owner's token version alone.
@Suite struct ChatTokenTests {
    @Test("a Tailscale identity mints a chat token bound to no session, only with its CSRF token and same origin")
    func tailscaleMints() async throws {
        try await TailscaleIdentityTests.withFake { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [TailscaleHTTPTests.tailnet])
            try await fixture.live { client in
                _ = try await fixture.setUp(client)
                let session = try await TailscaleHTTPTests.send(
                    client, "GET", "/api/auth/session", TailscaleHTTPTests.headers())
                let csrf = try #require(session.json["csrf_token"] as? String)
                let origin = ("Origin", "https://\(TailscaleHTTPTests.tailnet)")
                let headers = TailscaleHTTPTests.headers()
                let noCSRF = try await TailscaleHTTPTests.send(
                    client, "POST", "/api/chat/live-token", headers + [origin])
                #expect(noCSRF.status == 403, "\(noCSRF.body)")
                let crossSite = try await TailscaleHTTPTests.send(
                    client, "POST", "/api/chat/live-token",
                    headers + [("Origin", "https://attacker.example"), ("X-CSRF-Token", csrf)])
                #expect(crossSite.status == 403, "\(crossSite.body)")
                let minted = try await TailscaleHTTPTests.send(
                    client, "POST", "/api/chat/live-token", headers + [origin, ("X-CSRF-Token", csrf)],
                    json: #"{"lifetime":120}"#)
                #expect(minted.status == 200, "\(minted.body)")
                #expect(minted.json["expires_in"] as? Int == 120)
                let token = try #require(minted.json["token"] as? String)
                let version = try await fixture.authority.tokenVersion()
                let claims = try await fixture.auth.liveTokens.verify(token, purpose: .chat, tokenVersion: version)
                #expect(claims.session == nil)
            }
        }
    }
}
