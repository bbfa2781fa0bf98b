public import Foundation
import HTTPTypes
public import Hummingbird
public import MoatAuth
import MoatCore
public import MoatHTTP
import NIOCore

/// The owner-access API under `/api/` (Docs/openapi.yaml describes each route, its auth and its errors).
///
/// Each route is declared in the group of its access rule (``RouteAccess``), whose middleware has
/// already decided who the caller is; these handlers parse input strictly (unknown JSON types are a 400
/// that says which field), never echo a secret, and never change state on GET.
public enum OwnerRoutes {
    /// Registers every owner route, each with its access rule.
    public static func register(on router: Router<GatewayRequestContext>, auth: GatewayAuth, table: RouteTable) {
        let authority = auth.authority
        let setup = AccessRoutes(router, "/api", .setup, auth: auth, table: table)
        let anonymous = AccessRoutes(router, "/api", .anonymous, auth: auth, table: table)
        // `read` also covers the two POSTs that change nothing an attacker could use: a live token for the
        // caller's own stream, and logging out.
        let read = AccessRoutes(router, "/api", .owner(.read), auth: auth, table: table)
        let admin = AccessRoutes(router, "/api", .owner(.admin), auth: auth, table: table)
        setup.get("setup") { _, _ -> Response in
            let state = try? await authority.state()
            return APIError.json(status: .ok, ["required": state == .needsSetup])
        }
        setup.post("setup") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context)
                var password = try body.secret("password")
                let token = try body.string("token")
                let username = try body.optionalString("username")
                let client = OwnerAccessMiddleware.client(request, context)
                guard auth.mode != .token else {
                    // Browser sessions are off: no session, no cookie; the owner continues with an API token.
                    try await authority.completeSetupWithoutLogin(
                        token: token, username: username, password: password.take(), client: client)
                    if let file = auth.setupLinkFile { unlink(file) }
                    return APIError.json(
                        status: .created,
                        [
                            "setup": "done",
                            "next":
                                "browser login is off (gateway.auth.mode: token); create an API token with `moat token create`",
                        ])
                }
                let result = try await authority.completeSetup(
                    token: token, username: username, password: password.take(), client: client)
                if let file = auth.setupLinkFile { unlink(file) }
                return loggedIn(result, status: .created, auth: auth, request: request)
            }
        }
        anonymous.post("auth/login") { request, context -> Response in
            try await respond {
                guard auth.mode != .token else {
                    throw AuthError(.forbidden, "browser login is off (gateway.auth.mode: token); use an API token")
                }
                let body = try await JSONBody.read(request, context)
                var password = try body.secret("password")
                let result = try await authority.login(
                    username: try body.string("username"), password: password.take(),
                    code: try body.optionalString("code"), client: OwnerAccessMiddleware.client(request, context))
                return loggedIn(result, status: .ok, auth: auth, request: request)
            }
        }
        read.post("auth/logout") { request, context -> Response in
            try await respond {
                if case .session(let session) = context.identity {
                    try await authority.logout(session, client: OwnerAccessMiddleware.client(request, context))
                }
                var response = Response(status: .noContent)
                response.headers[.setCookie] = auth.expiredCookie(for: request)
                return response
            }
        }
        read.get("auth/session") { _, context -> Response in
            try await respond {
                guard let identity = context.identity else { throw AuthError(.unauthorized, "not logged in") }
                let state: OwnerState
                if let known = context.ownerState { state = known } else { state = try await authority.state() }
                var session = SessionView(via: identity.via, scope: identity.scope.rawValue)
                if case .ready(let username, let totp) = state {
                    session.username = username
                    session.totpEnabled = totp
                }
                // Only the Tailscale identity learns its token here. A cookie session's token is given
                // once, by login or setup: a listener on another local port that received the cookie
                // must not be able to fetch it.
                if case .tailscale(_, let csrf) = identity { session.csrfToken = csrf }
                if case .session(let active) = identity { session.expiresAt = AuditTime.text(active.expires) }
                return APIError.json(status: .ok, encoding: session)
            }
        }
        admin.post("auth/password") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context)
                var current = try body.secret("current_password")
                var new = try body.secret("new_password")
                try await authority.changePassword(
                    current: current.take(), new: new.take(), client: OwnerAccessMiddleware.client(request, context))
                var response = Response(status: .noContent)
                response.headers[.setCookie] = auth.expiredCookie(for: request)
                return response
            }
        }
        admin.post("auth/revoke-all") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context, allowEmpty: true)
                try await authority.revokeAll(
                    tokens: try body.optionalBool("api_tokens") ?? false, actor: context.identity?.actor ?? "owner",
                    client: OwnerAccessMiddleware.client(request, context))
                var response = Response(status: .noContent)
                response.headers[.setCookie] = auth.expiredCookie(for: request)
                return response
            }
        }
        admin.post("auth/totp/enrol") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context)
                var password = try body.secret("password")
                let enrolment = try await authority.beginTOTPEnrolment(
                    currentPassword: password.take(), client: OwnerAccessMiddleware.client(request, context))
                return APIError.json(
                    status: .ok,
                    ["uri": enrolment.uri, "secret": enrolment.secretBase32, "qr_svg": enrolment.qrSVG])
            }
        }
        admin.post("auth/totp/confirm") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context)
                let codes = try await authority.confirmTOTP(
                    code: try body.string("code"), client: OwnerAccessMiddleware.client(request, context))
                return APIError.json(status: .ok, ["recovery_codes": codes])
            }
        }
        read.post("auth/live-token") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context, allowEmpty: true)
                let name = try body.optionalString("purpose") ?? "events"
                guard let purpose = LiveTokenPurpose.allCases.first(where: { $0.rawValue == "moat." + name }) else {
                    throw AuthError(.invalidInput, "purpose must be one of: events, websocket")
                }
                let version = try await authority.tokenVersion()
                let token = try await auth.liveTokens.issue(purpose: purpose, tokenVersion: version)
                return APIError.json(
                    status: .ok, ["token": token, "expires_in": Int(LiveTokenIssuer.maximumLifetime)])
            }
        }
        admin.get("tokens") { _, _ -> Response in
            try await respond {
                let tokens = try await authority.tokens()
                return APIError.json(status: .ok, ["tokens": tokens.map { TokenView($0).jsonObject }])
            }
        }
        admin.post("tokens") { request, context -> Response in
            try await respond {
                let body = try await JSONBody.read(request, context)
                let scopeText = try body.optionalString("scope") ?? "read"
                guard let scope = TokenScope(rawValue: scopeText) else {
                    throw AuthError(.invalidInput, "scope must be read, write or admin")
                }
                let lifetime = try TokenLifetime.parse(try body.optionalString("expires"))
                let created = try await authority.createToken(
                    name: try body.string("name"), scope: scope, lifetime: lifetime,
                    actor: context.identity?.actor ?? "owner", client: OwnerAccessMiddleware.client(request, context))
                var object = TokenView(created.record).jsonObject
                object["token"] = created.token
                return APIError.json(status: .created, object)
            }
        }
        admin.delete("tokens/{prefix}") { request, context -> Response in
            try await respond {
                let prefix = context.parameters.get("prefix") ?? ""
                try await authority.revokeToken(
                    prefix: prefix, actor: context.identity?.actor ?? "owner",
                    client: OwnerAccessMiddleware.client(request, context))
                return Response(status: .noContent)
            }
        }
    }

    /// Runs a handler, turning a module's error into its JSON response (``APIError``).
    static func respond(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as any ClassifiedError {
            return APIError.response(error)
        }
    }

    static func loggedIn(
        _ result: LoginResult, status: HTTPResponse.Status, auth: GatewayAuth, request: Request
    ) -> Response {
        var response = APIError.json(
            status: status, ["csrf_token": result.csrfToken, "expires_at": AuditTime.text(result.expires)])
        response.headers[.setCookie] = auth.sessionCookie(result.sessionID, for: request)
        return response
    }
}

/// RFC 3339 UTC text of a date.
enum AuditTime {
    static func text(_ date: Date) -> String { OwnerAuthority.timestamp(Int64(date.timeIntervalSince1970 * 1000)) }
}

/// A JSON request body read strictly: at most 64 KiB, an object, fields of the declared types.
struct JSONBody {
    let object: [String: Any]

    static func read(
        _ request: Request, _ context: GatewayRequestContext, allowEmpty: Bool = false
    ) async throws -> JSONBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 64 * 1024)
        } catch {
            throw AuthError(.invalidInput, "the request body is larger than 64 KiB")
        }
        if buffer.readableBytes == 0 && allowEmpty { return JSONBody(object: [:]) }
        guard let any = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)),
            let object = any as? [String: Any]
        else {
            throw AuthError(.invalidInput, "the request body must be a JSON object (Content-Type: application/json)")
        }
        return JSONBody(object: object)
    }

    func string(_ key: String) throws(AuthError) -> String {
        guard let value = try optionalString(key) else {
            throw AuthError(.invalidInput, "the field \"\(key)\" is required")
        }
        return value
    }

    /// An optional field: absent is nil; `null` is refused like any other wrong type, because no field of
    /// the API is nullable (Docs/openapi.yaml) and a client sending null has a bug worth hearing about.
    func optionalString(_ key: String) throws(AuthError) -> String? {
        guard let value = object[key] else { return nil }
        guard let text = value as? String else {
            throw AuthError(.invalidInput, "the field \"\(key)\" must be a string")
        }
        return text
    }

    func optionalBool(_ key: String) throws(AuthError) -> Bool? {
        guard let value = object[key] else { return nil }
        guard let flag = value as? Bool else {
            throw AuthError(.invalidInput, "the field \"\(key)\" must be true or false")
        }
        return flag
    }

    /// A password field, moved into secret memory (the JSON text itself cannot be wiped).
    func secret(_ key: String) throws(AuthError) -> SecretField {
        SecretField(bytes: Array(try string(key).utf8))
    }
}

/// Bytes of a secret field on their way into ``SecretBytes``.
struct SecretField {
    var bytes: [UInt8]

    mutating func take() -> SecretBytes { SecretBytes(wiping: &bytes) }
}

/// The answer of `GET /api/auth/session` (Docs/openapi.yaml `Session`): absent fields are left out.
struct SessionView: Encodable {
    let via: String
    let scope: String
    var username: String?
    var totpEnabled: Bool?
    var csrfToken: String?
    var expiresAt: String?

    init(via: String, scope: String) {
        self.via = via
        self.scope = scope
    }

    enum CodingKeys: String, CodingKey {
        case via, scope, username
        case totpEnabled = "totp_enabled"
        case csrfToken = "csrf_token"
        case expiresAt = "expires_at"
    }
}
