import Foundation
import GRDB
import MoatAdmin
import MoatApp
import MoatAuth
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatStore
import MoatTestSupport
import Testing

/// Tailscale identity wired into the HTTP side: a real server on loopback, the fake LocalAPI of
/// ``TailscaleIdentityTests`` and raw requests carrying exactly the headers `tailscale serve` sets.
@Suite(.promptScheduling) struct TailscaleHTTPTests {
    static let tailnet = "laptop.tail1234.ts.net"

    static func headers(from address: String = "100.101.102.103", login: String = TailscaleIdentityTests.owner)
        -> [(String, String)]
    {
        [
            ("X-Forwarded-For", address), ("X-Forwarded-Host", tailnet), ("X-Forwarded-Proto", "https"),
            ("Tailscale-User-Login", login), ("Tailscale-User-Name", "Alice"),
        ]
    }

    static func send(
        _ client: OwnerHTTPFixture.Client, _ method: String, _ path: String, _ headers: [(String, String)],
        json: String? = nil
    )
        async throws -> RawHTTP.Response
    {
        try await RawHTTP.sendOffPool(
            RawHTTP.request(method, path, headers: [("Host", tailnet)] + headers, body: json), port: client.port)
    }

    @Test("a confirmed tailnet owner is the owner; mutations still need the CSRF token and same origin")
    func confirmedOwner() async throws {
        try await TailscaleIdentityTests.withFake { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [Self.tailnet])
            try await fixture.live { client in
                _ = try await fixture.setUp(client)
                let session = try await Self.send(client, "GET", "/api/auth/session", Self.headers())
                #expect(session.status == 200)
                let body = session.json
                #expect(body["via"] as? String == "tailscale")
                let csrf = try #require(body["csrf_token"] as? String)
                let origin = ("Origin", "https://\(Self.tailnet)")
                let noToken = try await Self.send(
                    client, "POST", "/api/tokens", Self.headers() + [origin], json: #"{"name":"ts"}"#)
                #expect(noToken.status == 403)
                let crossSite = try await Self.send(
                    client, "POST", "/api/tokens",
                    Self.headers() + [("Origin", "https://attacker.example"), ("X-CSRF-Token", csrf)],
                    json: #"{"name":"ts"}"#)
                #expect(crossSite.status == 403)
                let made = try await Self.send(
                    client, "POST", "/api/tokens", Self.headers() + [origin, ("X-CSRF-Token", csrf)],
                    json: #"{"name":"ts"}"#)
                #expect(made.status == 201)
                // Revoke everything changes the token version: the old CSRF token stops working.
                let revoke = try await Self.send(
                    client, "POST", "/api/auth/revoke-all", Self.headers() + [origin, ("X-CSRF-Token", csrf)],
                    json: "{}")
                #expect(revoke.status == 204)
                let stale = try await Self.send(
                    client, "POST", "/api/tokens", Self.headers() + [origin, ("X-CSRF-Token", csrf)],
                    json: #"{"name":"late"}"#)
                #expect(stale.status == 403)
                #expect(try fixture.auditActions().contains("auth.tailscale"))
            }
        }
    }

    @Test("forged login, tagged node, Funnel, missing forwarded headers: not the owner (401), and audited")
    func refusals() async throws {
        try await TailscaleIdentityTests.withFake { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [Self.tailnet])
            try await fixture.live { client in
                _ = try await fixture.setUp(client)
                let cases: [[(String, String)]] = [
                    // A local process forges the owner's login for an address whois says is someone else.
                    Self.headers(from: "100.101.102.104"),
                    // A tagged node has no user identity.
                    Self.headers(from: "100.101.102.105", login: "tagged-devices"),
                    Self.headers() + [("Tailscale-Funnel-Request", "?1")],
                    Self.headers().filter { $0.0 != "X-Forwarded-For" },
                    Self.headers().filter { $0.0 != "X-Forwarded-Host" },
                    Self.headers().filter { $0.0 != "X-Forwarded-Proto" },
                    Self.headers(login: "mallory@example.com"),
                ]
                for headers in cases {
                    let response = try await Self.send(client, "GET", "/api/auth/session", headers)
                    #expect(response.status == 401, "\(headers)")
                }
                let actions = try fixture.auditActions()
                #expect(actions.filter { $0 == "auth.tailscale" }.count >= 3)
            }
        }
    }

    @Test("genuine headers from a process that does not run as tailscaled's user are not the owner")
    func otherLocalUser() async throws {
        // This process stands in for "another local program": tailscaled is configured as another uid.
        try await TailscaleIdentityTests.withFake(proxyUID: getuid() &+ 1) { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [Self.tailnet])
            try await fixture.live { client in
                _ = try await fixture.setUp(client)
                #expect(try await Self.send(client, "GET", "/api/auth/session", Self.headers()).status == 401)
            }
        }
        // And, where the test may switch users (root, as in CI), a real process of another user.
        guard getuid() == 0 else { return }
        try await TailscaleIdentityTests.withFake(proxyUID: 0) { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [Self.tailnet])
            try await fixture.live { client in
                _ = try await fixture.setUp(client)
                #expect(try await Self.send(client, "GET", "/api/auth/session", Self.headers()).status == 200)
                let status = try await Self.curlAsNobody(port: client.port, headers: Self.headers())
                #expect(status == "401")
            }
        }
    }

    /// `GET /api/auth/session` with `headers`, sent by curl running as the user `nobody` (65534).
    static func curlAsNobody(port: Int, headers: [(String, String)]) async throws -> String {
        try await offCooperativePool {
            let output = Pipe()
            let process = try ChildProcess(
                "/usr/bin/setpriv",
                [
                    "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w",
                    "%{http_code}",
                ]
                    + ["-H", "Host: \(tailnet)"] + headers.flatMap { ["-H", "\($0.0): \($0.1)"] }
                    + ["http://127.0.0.1:\(port)/api/auth/session"], standardOutput: .pipe(output))
            let text = String(decoding: output.fileHandleForReading.readAll(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
    }

    @Test("behind tailscale serve (X-Forwarded-Proto: https) the login cookie is __Host- and Secure")
    func secureCookieBehindServe() async throws {
        let fixture = try OwnerHTTPFixture(allowedHosts: [Self.tailnet])
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            let login = try await Self.send(
                client, "POST", "/api/auth/login",
                [("Origin", "https://\(Self.tailnet)"), ("X-Forwarded-Proto", "https")],
                json: #"{"username":"owner","password":"\#(OwnerHTTPFixture.password)"}"#)
            #expect(login.status == 200)
            let cookie = try #require(login.header("Set-Cookie"))
            #expect(cookie.hasPrefix("__Host-moat_session=") && cookie.hasSuffix("; Secure"))
            let pair = OwnerHTTPFixture.cookiePair(login)
            let csrf = try #require(login.json["csrf_token"] as? String)
            let session = try await Self.send(
                client, "GET", "/api/auth/session", [("Cookie", pair), ("X-CSRF-Token", csrf)])
            #expect(session.status == 200)
        }
    }

    @Test("token mode: setup sets no cookie, login is refused, and neither a cookie nor Tailscale is the owner")
    func tokenMode() async throws {
        try await TailscaleIdentityTests.withFake { _, identity in
            let fixture = try OwnerHTTPFixture(tailscale: identity, allowedHosts: [Self.tailnet], mode: .token)
            try await fixture.live { client in
                let token = try await fixture.authority.createSetupToken(client: .local("test"))
                let setup = try await client.send(
                    "POST", "/api/setup", headers: [("Origin", client.origin)],
                    json: #"{"token":"\#(token)","password":"\#(OwnerHTTPFixture.password)"}"#)
                #expect(setup.status == 201 && setup.header("Set-Cookie") == nil)
                #expect(setup.json["csrf_token"] == nil && setup.body.contains("moat token create"))
                let sessions = try await fixture.database.pool.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM auth_sessions")
                }
                #expect(sessions == 0)
                #expect(try !fixture.auditActions().contains("auth.login"))
                let login = try await fixture.login(client)
                #expect(login.status == 403 && login.header("Set-Cookie") == nil)
                #expect(try await Self.send(client, "GET", "/api/auth/session", Self.headers()).status == 401)
            }
        }
    }

    @Test("without the opt-in, Tailscale headers mean nothing")
    func notConfigured() async throws {
        let fixture = try OwnerHTTPFixture(allowedHosts: [Self.tailnet])
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            #expect(try await Self.send(client, "GET", "/api/auth/session", Self.headers()).status == 401)
        }
    }
}
