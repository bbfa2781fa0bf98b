import Foundation
import HTTPTypes
import Hummingbird
import MoatAdmin
import MoatApp
import MoatAuth
import MoatConfig
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing
import Yams

@testable import MoatConsole

@Suite("Docs/openapi.yaml", .promptScheduling)
struct OpenAPISpecTests {
    static let specPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Docs/openapi.yaml").path

    /// The spec, parsed once for the suite (a parse takes a quarter of a second of CPU in a debug build, on
    /// the suite's high-priority threads). Never mutated after it is made, so shared reads are safe.
    nonisolated(unsafe) private static let parsed = Result {
        try Yams.load(yaml: try String(contentsOfFile: specPath, encoding: .utf8)) as? [String: Any]
    }

    static func spec() throws -> [String: Any] {
        try #require(try parsed.get())
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
            // The whole answer, as a client reads it: the decoder's message through the one error mapping.
            let name = try await client.browser(
                "POST", "/api/tokens", cookie: cookie, csrf: csrf, json: #"{"name":null}"#)
            #expect(name.body == #"{"error":"the field \"name\" must be a string"}"#)
            let revoke = try await client.browser(
                "POST", "/api/auth/revoke-all", cookie: cookie, csrf: csrf, json: #"{"api_tokens":null}"#)
            #expect(revoke.status == 400)
            #expect(revoke.body == #"{"error":"the field \"api_tokens\" must be true or false"}"#)
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

    /// A schema of the spec by `#/components/...` reference or inline, `$ref` resolved.
    static func schema(_ value: Any?, in spec: [String: Any]) throws -> [String: Any] {
        let object = try #require(value as? [String: Any])
        guard let reference = object["$ref"] as? String else { return object }
        var node: Any = spec
        for part in reference.dropFirst(2).split(separator: "/") {
            node = try #require((node as? [String: Any])?[String(part)], "\(reference) is not in the spec")
        }
        return try #require(node as? [String: Any])
    }

    /// The JSON schema of an operation's request body or of one of its responses.
    static func body(_ method: String, _ path: String, response: String? = nil) throws -> [String: Any] {
        let spec = try Self.spec()
        let operation = try #require(
            ((spec["paths"] as? [String: Any])?[path] as? [String: Any])?[method] as? [String: Any])
        let holder =
            if let response {
                try Self.schema((operation["responses"] as? [String: Any])?[response], in: spec)
            } else {
                try #require(operation["requestBody"] as? [String: Any])
            }
        let content = try #require(holder["content"] as? [String: Any])
        return try Self.schema((content["application/json"] as? [String: Any])?["schema"], in: spec)
    }

    static func properties(_ schema: [String: Any]) throws -> [String: [String: Any]] {
        try #require(schema["properties"] as? [String: [String: Any]])
    }

    @Test("each request body type reads exactly the fields its schema names")
    func requestFieldNames() throws {
        let readers: [(String, String, [String])] = [
            ("post", "/api/setup", OwnerAPI.SetupRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/login", OwnerAPI.LoginRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/password", OwnerAPI.PasswordChange.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/revoke-all", OwnerAPI.RevokeAllRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/totp/enrol", OwnerAPI.TOTPEnrolRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/totp/confirm", OwnerAPI.TOTPConfirmRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/auth/live-token", OwnerAPI.LiveTokenRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/tokens", OwnerAPI.TokenRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/chat", OwnerAPI.ChatRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/chat/live-token", OwnerAPI.ChatTokenRequest.CodingKeys.allCases.map(\.stringValue)),
            ("post", "/api/approvals/{id}/deny", OwnerAPI.DenyRequest.CodingKeys.allCases.map(\.stringValue)),
        ]
        var documented = 0
        for (method, path, fields) in readers {
            let schema = try Self.body(method, path)
            #expect(Set(try Self.properties(schema).keys) == Set(fields), "\(method.uppercased()) \(path)")
            for required in schema["required"] as? [String] ?? [] {
                #expect(fields.contains(required), "\(path): required \(required) is not read")
            }
        }
        for (_, operation) in try Self.operations() where operation["requestBody"] != nil { documented += 1 }
        #expect(documented == readers.count, "a documented request body has no reader type here")
    }

    @Test("each response body round-trips through its schema: the same field names, each of the schema's type")
    func responseFieldNames() throws {
        let view = try JSONDecoder().decode(
            TokenView.self,
            from: Data(#"{"prefix":"abcdefgh","name":"ci","scope":"read","created_at":"t","active":true}"#.utf8))
        let time = "2026-12-06T10:00:00.000Z"
        let written: [(String, String, String, Data)] = [
            ("get", "/api/setup", "200", APIError.jsonData(OwnerAPI.SetupState(required: true))),
            ("post", "/api/setup", "201", APIError.jsonData(OwnerAPI.LoggedIn(csrfToken: "c", expiresAt: time))),
            ("post", "/api/auth/login", "200", APIError.jsonData(OwnerAPI.LoggedIn(csrfToken: "c", expiresAt: time))),
            (
                "get", "/api/auth/session", "200",
                APIError.jsonData(
                    OwnerAPI.Session(
                        via: "session", scope: "admin", username: "owner", totpEnabled: false, csrfToken: "c",
                        expiresAt: time))
            ),
            (
                "post", "/api/auth/totp/enrol", "200",
                APIError.jsonData(OwnerAPI.TOTPEnrolment(uri: "otpauth://totp/x", secret: "ABC", qrSVG: "<svg/>"))
            ),
            ("post", "/api/auth/totp/confirm", "200", APIError.jsonData(OwnerAPI.RecoveryCodes(recoveryCodes: ["a"]))),
            ("post", "/api/auth/live-token", "200", APIError.jsonData(OwnerAPI.LiveToken(token: "j", expiresIn: 300))),
            ("post", "/api/chat/live-token", "200", APIError.jsonData(OwnerAPI.LiveToken(token: "j", expiresIn: 60))),
            ("get", "/api/tokens", "200", APIError.jsonData(OwnerAPI.TokenList(tokens: [view]))),
            ("post", "/api/tokens", "201", APIError.jsonData(OwnerAPI.CreatedToken(view: view, token: "moat_x"))),
        ]
        for (method, path, status, data) in written {
            let name = "\(method.uppercased()) \(path) \(status)"
            let schema = try Self.body(method, path, response: status)
            let object = try JSONDecoder().decode([String: JSONValue].self, from: data)
            let properties = try Self.properties(schema)
            #expect(Set(object.keys) == Set(properties.keys), "\(name): \(object.keys.sorted())")
            for (key, value) in object {
                let property = try #require(properties[key], "\(name): \(key) is not in the schema")
                #expect(Self.matches(value, property), "\(name): \(key) = \(value) is not \(property["type"] ?? "?")")
            }
        }
    }

    /// A JSON value by its type, read strictly (JSONDecoder reads neither 1 as true nor true as 1).
    enum JSONValue: Decodable {
        case null, boolean, integer, number, string, array, object

        init(from decoder: any Decoder) throws {
            let value = try decoder.singleValueContainer()
            if value.decodeNil() {
                self = .null
            } else if (try? value.decode(Bool.self)) != nil {
                self = .boolean
            } else if (try? value.decode(Int.self)) != nil {
                self = .integer
            } else if (try? value.decode(Double.self)) != nil {
                self = .number
            } else if (try? value.decode(String.self)) != nil {
                self = .string
            } else if (try? value.decode([JSONValue].self)) != nil {
                self = .array
            } else {
                self = .object
            }
        }
    }

    /// Whether a value has the schema's `type` (a name or a list of names).
    static func matches(_ value: JSONValue, _ property: [String: Any]) -> Bool {
        let types = (property["type"] as? [String]) ?? [property["type"] as? String ?? ""]
        return types.contains { "\(value)" == $0 }
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
