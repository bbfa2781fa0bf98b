import Foundation
import HTTPTypes
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
import Yams

@Suite("Docs/openapi.yaml")
struct OpenAPISpecTests {
    static let specPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Docs/openapi.yaml").path

    static func spec() throws -> [String: Any] {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    @Test("the routes the server registers and the spec agree, both ways")
    func routesMatch() throws {
        let fixture = try OwnerHTTPFixture()
        let registered = Set(
            fixture.router.routes.map { "\($0.method.rawValue) \($0.path.description)" }.filter {
                $0.contains(" /api/")
            })
        let paths = try #require(try Self.spec()["paths"] as? [String: Any])
        var documented = Set<String>()
        for (path, value) in paths {
            let operations = try #require(value as? [String: Any])
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(registered.count >= 14)
        // Every /api route was declared in the group of an access rule: none was registered without one.
        for route in registered {
            let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
            #expect(fixture.routeTable.access(parts[0], parts[1]) != nil, "\(route) has no access rule")
        }
        #expect(registered.subtracting(documented).isEmpty, "undocumented: \(registered.subtracting(documented))")
        #expect(documented.subtracting(registered).isEmpty, "not served: \(documented.subtracting(registered))")
    }

    @Test("every operation states its auth and its errors, matching the access rule its route was declared with")
    func authAndErrors() throws {
        let fixture = try OwnerHTTPFixture()
        _ = fixture.router
        let spec = try Self.spec()
        let paths = try #require(spec["paths"] as? [String: [String: Any]])
        for (path, operations) in paths {
            for (method, value) in operations {
                let operation = try #require(value as? [String: Any])
                let name = "\(method.uppercased()) \(path)"
                let responses = try #require(operation["responses"] as? [String: Any], "\(name) has no responses")
                #expect(responses.keys.contains { $0.hasPrefix("4") }, "\(name) documents no error")
                let access = try #require(fixture.routeTable.access(method, path), "\(name) is not served")
                let isPublic = access.isPublic
                let security = operation["security"] as? [Any]
                #expect(
                    (security?.isEmpty == true) == isPublic, "\(name): security [] must mark exactly the public routes")
                if !isPublic && access != .liveToken {
                    #expect(responses["401"] != nil, "\(name) must document 401")
                }
                let scope = operation["x-moat-scope"] as? String
                if isPublic {
                    #expect(scope == nil, "\(name): a public route has no scope")
                } else {
                    let required: String? = if case .owner(let needed) = access { needed.rawValue } else { "read" }
                    #expect(
                        scope == required,
                        "\(name): x-moat-scope \(scope ?? "missing"), the route is declared \(access)")
                }
            }
        }
    }

    /// Every operation in the spec, as (name, operation).
    static func operations() throws -> [(String, [String: Any])] {
        let paths = try #require(try Self.spec()["paths"] as? [String: [String: Any]])
        return try paths.flatMap { path, operations in
            try operations.map { method, value in
                ("\(method.uppercased()) \(path)", try #require(value as? [String: Any]))
            }
        }
    }

    @Test("an operation that reads a body documents 400; one that checks a password or code documents 429")
    func badRequestAndRateLimitDocumented() throws {
        // The routes whose handler calls a rate-limited check of a password, setup token or code.
        let limited = [
            "POST /api/setup", "POST /api/auth/login", "POST /api/auth/password", "POST /api/auth/totp/enrol",
            "POST /api/auth/totp/confirm",
        ]
        for (name, operation) in try Self.operations() {
            let responses = try #require(operation["responses"] as? [String: Any])
            let query = (operation["parameters"] as? [[String: Any]] ?? []).contains { $0["in"] as? String == "query" }
            if operation["requestBody"] != nil || query {
                #expect(responses["400"] != nil, "\(name) reads input but documents no 400")
            }
            if limited.contains(name) {
                #expect(responses["429"] != nil, "\(name) checks a secret but documents no 429")
            }
        }
    }

    @Test("no schema in the spec is nullable except the token timestamps, and the server refuses null elsewhere")
    func nullRefused() async throws {
        let text = try String(contentsOfFile: Self.specPath, encoding: .utf8)
        let nullable = text.split(separator: "\n").filter { $0.contains("\"null\"") || $0.contains("nullable: true") }
        #expect(nullable.allSatisfy { $0.contains("_at:") }, "\(nullable)")
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            for body in [
                #"{"purpose":null}"#
            ] {
                let response = try await client.browser(
                    "POST", "/api/auth/live-token", cookie: cookie, csrf: csrf, json: body)
                #expect(response.status == 400, "\(body): \(response.status)")
                #expect(response.body.contains("purpose"))
            }
            for body in [
                #"{"name":"ci","expires":null}"#, #"{"name":"ci","scope":null}"#, #"{"name":null}"#,
            ] {
                let response = try await client.browser("POST", "/api/tokens", cookie: cookie, csrf: csrf, json: body)
                #expect(response.status == 400, "\(body): \(response.status)")
            }
            let revoke = try await client.browser(
                "POST", "/api/auth/revoke-all", cookie: cookie, csrf: csrf, json: #"{"api_tokens":null}"#)
            #expect(revoke.status == 400)
            for query in ["limit=null", "limit=", "limit=+5", "limit=0", "limit=501"] {
                let response = try await client.browser("GET", "/api/audit?\(query)", cookie: cookie, csrf: csrf)
                #expect(response.status == 400, "\(query): \(response.status)")
            }
            let audit = try await client.browser("GET", "/api/audit?limit=5", cookie: cookie, csrf: csrf)
            #expect(audit.status == 200)
            let list = try await client.browser("GET", "/api/tokens", cookie: cookie, csrf: csrf)
            #expect(list.body.contains("\"tokens\":[]"), "a refused request created a token")
        }
    }

    @Test("TokenRequest.expires: the spec's pattern and the server accept and refuse the same values")
    func expiresPattern() throws {
        let spec = try Self.spec()
        let schemas = try #require((spec["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let request = try #require(schemas["TokenRequest"] as? [String: Any])
        let expires = try #require((request["properties"] as? [String: Any])?["expires"] as? [String: Any])
        let pattern = try Regex(try #require(expires["pattern"] as? String))
        for value in ["30d", "12h", "90m", "never", "NEVER", "7D", "030d", "3650d"] {
            #expect(value.wholeMatch(of: pattern) != nil, "\(value) should match the pattern")
            #expect(throws: Never.self, "\(value)") { try TokenLifetime.parse(value) }
        }
        for value in ["", "0d", "d", "30", "+5d", "-5d", " 30d", "30d ", "30 d", "30w", "soon", "1.5h"] {
            #expect(value.wholeMatch(of: pattern) == nil, "\(value) should not match the pattern")
            #expect(throws: AuthError.self, "\(value)") { try TokenLifetime.parse(value) }
        }
    }

    @Test("a known path with a method it does not have answers 405 with Allow; an unknown path stays 404")
    func methodNotAllowed() async throws {
        let fixture = try OwnerHTTPFixture()
        try await fixture.live { client in
            let (cookie, csrf) = try await fixture.setUp(client)
            for (method, path, allow) in [
                ("TRACE", "/api/tokens", "GET, POST"), ("PUT", "/api/tokens", "GET, POST"),
                ("TRACE", "/api/tokens/abcdefgh", "DELETE"), ("GET", "/api/auth/login", "POST"),
                ("TRACE", "/healthz", "GET"),
            ] {
                let response = try await client.browser(method, path, cookie: cookie, csrf: csrf)
                #expect(response.status == 405, "\(method) \(path): \(response.status)")
                #expect(response.header("Allow") == allow, "\(method) \(path)")
            }
            let unknown = try await client.browser("TRACE", "/api/nothing-here", cookie: cookie, csrf: csrf)
            #expect(unknown.status == 404)
            // Authentication still comes first: without credentials a protected path is 401, not 405.
            let anonymous = try await client.send("TRACE", "/api/tokens")
            #expect(anonymous.status == 401)
        }
    }
}
