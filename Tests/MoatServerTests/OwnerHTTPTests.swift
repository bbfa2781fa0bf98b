import Foundation
import Hummingbird
import MoatAdmin
import MoatApp
import MoatAuth
import MoatConfig
import MoatConsole
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing

@Suite("Owner access over HTTP", .promptScheduling)
struct OwnerHTTPTests {
    /// Every state-changing `/api/` route the router registers (the OpenAPI test checks the list is complete).
    static func mutatingRoutes(_ fixture: OwnerHTTPFixture) -> [(String, String)] {
        fixture.router.routes.compactMap { route in
            let path = route.path.description
            guard path.hasPrefix("/api/"), route.method != .get, route.method != .head else { return nil }
            return (route.method.rawValue, path.replacingOccurrences(of: "{prefix}", with: "ABCDEFGH"))
        }
    }

    @Test("before setup every API but setup answers 503 pointing to setup; /healthz answers")
    func beforeSetup() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            #expect(try await client.send("GET", "/healthz").status == 200)
            let setup = try await client.send("GET", "/api/setup")
            #expect(setup.status == 200 && setup.body.contains("\"required\":true"))
            for path in ["/api/auth/session", "/api/tokens", "/api/audit"] {
                let response = try await client.send("GET", path)
                #expect(response.status == 503)
                #expect(response.body.contains("moat owner setup"))
            }
            let login = try await client.send(
                "POST", "/api/auth/login", json: #"{"username":"owner","password":"whatever whatever"}"#)
            #expect(login.status == 503)
        }
    }

    @Test("non-canonical paths cannot walk around authentication", arguments: [false, true])
    func nonCanonicalPaths(afterSetup: Bool) async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            if afterSetup { _ = try await fixture.setUp(client) }
            for path in [
                "//api/tokens", "///api/tokens", "/api//tokens", "//api/auth/session", "/./api/tokens",
                "/x/../api/tokens", "//api/audit", "/api/tokens/", "/api/./tokens",
            ] {
                let response = try await client.send("GET", path)
                #expect(response.status != 200, "\(path) answered 200 without authentication")
                #expect(!response.body.contains("\"tokens\""), "\(path)")
            }
            let post = try await client.send(
                "POST", "//api/tokens", headers: [("Origin", client.origin)], json: #"{"name":"sneaky"}"#)
            #expect(post.status == 400)
        }
    }

    @Test("security headers on every response; no-store on /api/")
    func securityHeaders() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            for path in ["/healthz", "/", "/login", "/api/tokens", "/nothing-here", "/assets/moat.js"] {
                let response = try await client.send("GET", path)
                #expect(
                    response.header("Content-Security-Policy")
                        == "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
                #expect(response.header("X-Content-Type-Options") == "nosniff")
                #expect(response.header("Referrer-Policy") == "no-referrer")
                #expect(response.header("X-Frame-Options") == "DENY")
                #expect(response.header("Cross-Origin-Opener-Policy") == "same-origin")
                #expect(response.header("Cross-Origin-Resource-Policy") == "same-origin")
                #expect(response.header("Permissions-Policy")?.contains("camera=()") == true)
                #expect(response.header("Strict-Transport-Security") == nil)
                if path.hasPrefix("/api/") { #expect(response.header("Cache-Control") == "no-store") }
            }
            // A refusal by the Host guard carries them too.
            let misdirected = try await RawHTTP.sendOffPool(
                RawHTTP.request("GET", "/healthz", headers: [("Host", "attacker.example")]), port: client.port)
            #expect(misdirected.status == 421)
            #expect(misdirected.header("X-Frame-Options") == "DENY")
        }
    }

    @Test("setup and login set HttpOnly SameSite=Strict Path=/ cookies without Secure on plain HTTP")
    func cookieWithoutTLS() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            let login = try await fixture.login(client)
            #expect(login.status == 200)
            let cookie = try #require(login.header("Set-Cookie"))
            #expect(cookie.hasPrefix("moat_session="))
            let attributes = Set(
                cookie.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(attributes == ["Path=/", "HttpOnly", "SameSite=Strict"])
            let id = String(cookie.split(separator: ";")[0].dropFirst("moat_session=".count))
            #expect(id.count == 22)  // 128 bits, base64url
        }
    }

    @Test("unknown account and wrong password: identical status and body")
    func identicalFailures() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            let unknown = try await client.send(
                "POST", "/api/auth/login", json: #"{"username":"nobody","password":"a long owner passphrase"}"#)
            let wrong = try await client.send(
                "POST", "/api/auth/login", json: #"{"username":"owner","password":"not the right passphrase"}"#)
            #expect(unknown.status == 401)
            #expect(unknown.status == wrong.status)
            #expect(unknown.body == wrong.body)
            #expect(unknown.header("Set-Cookie") == nil)
        }
    }

    @Test("a proxy's X-Forwarded-For is recorded with the audit entry when it holds only addresses")
    func forwardedForAudited() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            for forwarded in ["100.64.0.7", "not-an-address", "1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4, 5.5.5.5"] {
                _ = try await client.send(
                    "POST", "/api/auth/login", headers: [("Origin", client.origin), ("X-Forwarded-For", forwarded)],
                    json: #"{"username":"owner","password":"not the right passphrase"}"#)
            }
            // The setup's own login comes first.
            let all = try fixture.auditMetadata("auth.login")
            #expect(all.count == 4)
            let entries = Array(all.suffix(3))
            #expect(entries.first?.contains(#""forwarded_for":"100.64.0.7""#) == true, "\(entries)")
            #expect(entries.dropFirst().allSatisfy { !$0.contains("forwarded_for") }, "\(entries)")
        }
    }

    @Test("the 11th failed login in 15 minutes is 429 with Retry-After — from 127.0.0.1 as well")
    func bruteForceFromLoopback() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            for _ in 0..<10 {
                #expect(try await fixture.login(client, password: "wrong passphrase here").status == 401)
            }
            let locked = try await fixture.login(client)
            #expect(locked.status == 429)
            let retry = try #require(locked.header("Retry-After").flatMap(Int.init))
            #expect(retry > 0 && retry <= 900)
        }
    }

    @Test("logins from 127.0.0.2, 127.0.0.3, … share one per-address limit: rotating loopback sources does not help")
    func loopbackSourcesShareOneLimit() async throws {
        var settings = AuthSettings()
        settings.passwordFailuresPerAddress = 4
        let fixture = try OwnerHTTPFixture(settings: settings)
        try await fixture.live { client in
            _ = try await fixture.setUp(client)
            // A new username each time, so only the per-address limit can stop these.
            for index in 0..<4 {
                let wrong = try await client.send(
                    "POST", "/api/auth/login", headers: [("Origin", client.origin)],
                    json: #"{"username":"user\#(index)","password":"wrong passphrase here"}"#,
                    from: "127.0.0.\(index + 2)")
                #expect(wrong.status == 401)
            }
            let locked = try await client.send(
                "POST", "/api/auth/login", headers: [("Origin", client.origin)],
                json: #"{"username":"user9","password":"wrong passphrase here"}"#, from: "127.0.0.99")
            #expect(locked.status == 429)
            #expect(try await fixture.login(client).status == 429)
        }
    }

    @Test("wrong setup tokens from rotating loopback sources add at most the per-address limit to the audit log")
    func setupTokensFromRotatingSources() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            var statuses: [Int] = []
            for index in 0..<30 {
                let response = try await client.send(
                    "POST", "/api/setup", headers: [("Origin", client.origin)],
                    json: #"{"token":"wrong-token-\#(index)","password":"\#(OwnerHTTPFixture.password)"}"#,
                    from: "127.0.\(index / 200).\(index % 200 + 2)")
                statuses.append(response.status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == 401 }, "\(statuses)")
            #expect(statuses.dropFirst(10).allSatisfy { $0 == 429 }, "\(statuses)")
            #expect(try fixture.auditMetadata("auth.setup").count == 10)
        }
    }

    @Test("an old cookie after logout is 401; the session id changes at every login")
    func logoutAndRotation() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (setupCookie, setupCSRF) = try await fixture.setUp(client)
            let login = try await fixture.login(client)
            let cookie = OwnerHTTPFixture.cookiePair(login)
            #expect(cookie != setupCookie)
            let csrf = try #require(login.json["csrf_token"] as? String)
            #expect(csrf != setupCSRF)
            let session = try await client.browser("GET", "/api/auth/session", cookie: cookie, csrf: csrf)
            #expect(session.status == 200)
            let logout = try await client.browser("POST", "/api/auth/logout", cookie: cookie, csrf: csrf)
            #expect(logout.status == 204)
            #expect(logout.header("Set-Cookie")?.contains("Max-Age=0") == true)
            #expect(try await client.browser("GET", "/api/auth/session", cookie: cookie, csrf: csrf).status == 401)
            // The setup session is unaffected by another session's logout.
            let setupSession = try await client.browser(
                "GET", "/api/auth/session", cookie: setupCookie, csrf: setupCSRF)
            #expect(setupSession.status == 200)
        }
    }

    @Test(
        "a session cookie alone — as a listener on another local port receives it — reads nothing and cannot learn the CSRF token"
    )
    func cookieAloneIsNotEnough() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            // Browsers send a host's cookies to every port, so another local listener can hold the cookie;
            // what it cannot have is the token the owner's page keeps in its port-scoped storage.
            for path in ["/api/auth/session", "/api/tokens", "/api/audit"] {
                let bare = try await client.send("GET", path, headers: [("Cookie", cookie)])
                #expect(bare.status == 403, "GET \(path) with the cookie alone: \(bare.status)")
                #expect(!bare.body.contains(csrf))
                let wrong = try await client.send(
                    "GET", path, headers: [("Cookie", cookie), ("X-CSRF-Token", "x" + csrf)])
                #expect(wrong.status == 403, "GET \(path) with a wrong token: \(wrong.status)")
            }
            let live = try await client.send("POST", "/api/auth/live-token", headers: [("Cookie", cookie)])
            #expect(live.status == 403)
            // The owner's page, which has the token, reads normally, and the session answer never repeats it.
            let session = try await client.browser("GET", "/api/auth/session", cookie: cookie, csrf: csrf)
            #expect(session.status == 200)
            #expect(session.json["csrf_token"] == nil && !session.body.contains(csrf))
            #expect(session.json["via"] as? String == "session")
        }
    }

    @Test(
        "a junk moat_session cookie tossed in front of the owner's does not log the owner out; the CSRF token is still needed"
    )
    func cookieTossing() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            // What a browser sends after a program on another local port set `moat_session=junk; Path=/api`:
            // the longer path's cookie comes first.
            let tossed = "moat_session=junkjunkjunkjunkjunk; " + cookie
            let session = try await client.browser("GET", "/api/auth/session", cookie: tossed, csrf: csrf)
            #expect(session.status == 200, "\(session.body)")
            #expect(session.json["via"] as? String == "session")
            let split = try await client.send(
                "GET", "/api/auth/session",
                headers: [("Cookie", "moat_session=x"), ("Cookie", cookie), ("X-CSRF-Token", csrf)])
            #expect(split.status == 200, "\(split.body)")
            let noToken = try await client.send("GET", "/api/auth/session", headers: [("Cookie", tossed)])
            #expect(noToken.status == 403)
            // Only the first eight session cookies are looked at.
            let flood = Array(repeating: "moat_session=junkjunkjunkjunkjunk", count: 8).joined(separator: "; ")
            let buried = try await client.browser(
                "GET", "/api/auth/session", cookie: flood + "; " + cookie, csrf: csrf)
            #expect(buried.status == 401)
        }
    }

    @Test("every mutating route: no CSRF token, a wrong one, a cross-site Origin or Sec-Fetch-Site → 403")
    func csrf() async throws {
        let fixture = try OwnerHTTPFixture()
        let routes = Self.mutatingRoutes(fixture).filter {
            fixture.routeTable.access($0.0, $0.1.replacingOccurrences(of: "ABCDEFGH", with: "{prefix}"))?.isPublic
                == false
        }
        #expect(routes.count >= 8)
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            for (method, path) in routes {
                let none = try await client.browser(method, path, cookie: cookie, csrf: nil, json: "{}")
                #expect(none.status == 403, "\(method) \(path) without CSRF token: \(none.status)")
                let wrong = try await client.browser(method, path, cookie: cookie, csrf: "x" + csrf, json: "{}")
                #expect(wrong.status == 403, "\(method) \(path) wrong CSRF token: \(wrong.status)")
                let crossOrigin = try await client.send(
                    method, path,
                    headers: [("Cookie", cookie), ("Origin", "https://attacker.example"), ("X-CSRF-Token", csrf)],
                    json: "{}")
                #expect(crossOrigin.status == 403, "\(method) \(path) cross-site Origin: \(crossOrigin.status)")
                let crossSite = try await client.send(
                    method, path,
                    headers: [("Cookie", cookie), ("Sec-Fetch-Site", "cross-site"), ("X-CSRF-Token", csrf)],
                    json: "{}")
                #expect(crossSite.status == 403, "\(method) \(path) Sec-Fetch-Site cross-site: \(crossSite.status)")
                let noOrigin = try await client.send(
                    method, path, headers: [("Cookie", cookie), ("X-CSRF-Token", csrf)], json: "{}")
                #expect(noOrigin.status == 403, "\(method) \(path) cookie without Origin: \(noOrigin.status)")
            }
            // And with both, the owner's session still works (nothing above logged it out).
            #expect(try await client.browser("GET", "/api/auth/session", cookie: cookie, csrf: csrf).status == 200)
        }
    }

    @Test("API tokens: bearer works, scope is enforced, query-string tokens are ignored, revoked is 401")
    func apiTokens() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            let created = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":"ci","scope":"read"}"#)
            #expect(created.status == 201)
            let token = try #require(created.json["token"] as? String)
            let prefix = try #require(created.json["prefix"] as? String)
            let bearer = [("Authorization", "Bearer \(token)")]
            #expect(try await client.send("GET", "/api/auth/session", headers: bearer).status == 200)
            // Read scope: no state change, no token administration.
            #expect(try await client.send("POST", "/api/auth/revoke-all", headers: bearer, json: "{}").status == 403)
            #expect(try await client.send("GET", "/api/tokens", headers: bearer).status == 403)
            // Never from a query string.
            for query in ["?token=", "?access_token=", "?api_key="] {
                #expect(try await client.send("GET", "/api/auth/session" + query + token).status == 401)
            }
            // The listing never shows the token.
            let list = try await client.browser("GET", "/api/tokens", cookie: cookie, csrf: csrf)
            #expect(list.status == 200 && list.body.contains(prefix) && !list.body.contains(token))
            let revoke = try await client.browser("DELETE", "/api/tokens/\(prefix)", cookie: cookie, csrf: csrf)
            #expect(revoke.status == 204)
            #expect(try await client.send("GET", "/api/auth/session", headers: bearer).status == 401)
            #expect(try fixture.auditActions().contains("auth.token.use_revoked"))
            // A bearer request needs no CSRF token (no ambient credential), but admin scope for admin routes.
            let admin = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":"adm","scope":"admin"}"#)
            let adminToken = try #require(admin.json["token"] as? String)
            let made = try await client.send(
                "POST", "/api/tokens", headers: [("Authorization", "Bearer \(adminToken)")],
                json: #"{"name":"from-script","scope":"read","expires":"1d"}"#)
            #expect(made.status == 201)
            let malformed = try await client.send(
                "GET", "/api/auth/session", headers: [("Authorization", "Basic b3duZXI6cGFzcw==")])
            #expect(malformed.status == 401)
        }
    }

    @Test("revoke-all ends every session at once")
    func revokeAll() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (first, csrf) = try await fixture.setUp(client)
            let second = OwnerHTTPFixture.cookiePair(try await fixture.login(client))
            let response = try await client.browser(
                "POST", "/api/auth/revoke-all", cookie: first, csrf: csrf, json: #"{"api_tokens":false}"#)
            #expect(response.status == 204)
            for cookie in [first, second] {
                #expect(try await client.send("GET", "/api/auth/session", headers: [("Cookie", cookie)]).status == 401)
            }
            #expect(try fixture.auditActions().contains("auth.revoke_all"))
        }
    }

    @Test("bad input gets a 400 that names the field and changes nothing")
    func badInput() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            let notJSON = try await client.browser("POST", "/api/tokens", cookie: cookie, csrf: csrf, json: "name=ci")
            #expect(notJSON.status == 400)
            let scope = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":"ci","scope":"root"}"#)
            #expect(scope.status == 400 && scope.body.contains("scope"))
            let expires = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":"ci","expires":"soon"}"#)
            #expect(expires.status == 400 && expires.body.contains("expires"))
            let list = try await client.browser("GET", "/api/tokens", cookie: cookie, csrf: csrf)
            #expect(list.body.contains("\"tokens\":[]"))
        }
    }
}

@Suite("TOTP over HTTP")
struct TOTPHTTPTests {
    @Test("enrolment needs the password, shows a QR SVG, and then login needs a code")
    func enrolAndLogin() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            let wrong = try await client.browser(
                "POST", "/api/auth/totp/enrol", cookie: cookie, csrf: csrf, json: #"{"password":"not it at all"}"#)
            #expect(wrong.status == 401)
            let enrol = try await client.browser(
                "POST", "/api/auth/totp/enrol", cookie: cookie, csrf: csrf,
                json: #"{"password":"\#(OwnerHTTPFixture.password)"}"#)
            #expect(enrol.status == 200)
            let body = enrol.json
            #expect((body["qr_svg"] as? String)?.hasPrefix("<svg") == true)
            let secret = try #require((body["secret"] as? String).flatMap(Base32.decode))
            let totp = TOTP(secret: secret)
            let code = totp.code(atStep: TOTP.step(at: Date()))
            let confirm = try await client.browser(
                "POST", "/api/auth/totp/confirm", cookie: cookie, csrf: csrf, json: #"{"code":"\#(code)"}"#)
            #expect(confirm.status == 200)
            let recovery = try #require(confirm.json["recovery_codes"] as? [String])
            #expect(recovery.count == 10)
            // Password alone is no longer enough; with a recovery code it is (once).
            #expect(try await fixture.login(client).status == 401)
            let withCode = try await client.send(
                "POST", "/api/auth/login",
                json: #"{"username":"owner","password":"\#(OwnerHTTPFixture.password)","code":"\#(recovery[0])"}"#)
            #expect(withCode.status == 200)
            let again = try await client.send(
                "POST", "/api/auth/login",
                json: #"{"username":"owner","password":"\#(OwnerHTTPFixture.password)","code":"\#(recovery[0])"}"#)
            #expect(again.status == 401)
        }
    }
}
