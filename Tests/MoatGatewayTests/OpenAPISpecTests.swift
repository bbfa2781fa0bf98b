import Foundation
import HTTPTypes
import Hummingbird
import MoatAuth
import MoatGateway
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
        #expect(registered.subtracting(documented).isEmpty, "undocumented: \(registered.subtracting(documented))")
        #expect(documented.subtracting(registered).isEmpty, "not served: \(documented.subtracting(registered))")
    }

    @Test("every operation states its auth and its errors, matching what the middleware enforces")
    func authAndErrors() throws {
        let spec = try Self.spec()
        let paths = try #require(spec["paths"] as? [String: [String: Any]])
        for (path, operations) in paths {
            for (method, value) in operations {
                let operation = try #require(value as? [String: Any])
                let name = "\(method.uppercased()) \(path)"
                let responses = try #require(operation["responses"] as? [String: Any], "\(name) has no responses")
                #expect(responses.keys.contains { $0.hasPrefix("4") }, "\(name) documents no error")
                let isPublic = OwnerAuthMiddleware.isPublicRoute(method.uppercased(), path)
                let security = operation["security"] as? [Any]
                #expect(
                    (security?.isEmpty == true) == isPublic, "\(name): security [] must mark exactly the public routes")
                if !isPublic && path != "/api/events" {
                    #expect(responses["401"] != nil, "\(name) must document 401")
                }
                let scope = operation["x-moat-scope"] as? String
                if isPublic {
                    #expect(scope == nil, "\(name): a public route has no scope")
                } else {
                    let required = OwnerAuthMiddleware.requiredScope(HTTPRequest.Method(method.uppercased())!, path)
                    #expect(
                        scope == required.rawValue,
                        "\(name): x-moat-scope \(scope ?? "missing"), the middleware requires \(required.rawValue)")
                }
            }
        }
    }
}
