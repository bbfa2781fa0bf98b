import Foundation
import HTTPTypes
public import Hummingbird
import MoatAuth
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
            return APIError.json(status: .ok, encoding: OwnerAPI.SetupState(required: state == .needsSetup))
        }
        setup.post("setup") { request, context -> Response in
            try await respond {
                var body = try await RequestBody.read(OwnerAPI.SetupRequest.self, request, context)
                let client = OwnerAccessMiddleware.client(request, context)
                guard auth.mode != .token else {
                    // Browser sessions are off: no session, no cookie; the owner continues with an API token.
                    try await authority.completeSetupWithoutLogin(
                        token: body.token, username: body.username, password: body.password.take(), client: client)
                    if let file = auth.setupLinkFile { unlink(file) }
                    return APIError.json(
                        status: .created,
                        encoding: OwnerAPI.SetupDone(
                            next:
                                "browser login is off (gateway.auth.mode: token); create an API token with `moat token create`"
                        ))
                }
                let result = try await authority.completeSetup(
                    token: body.token, username: body.username, password: body.password.take(), client: client)
                if let file = auth.setupLinkFile { unlink(file) }
                return loggedIn(result, status: .created, auth: auth, request: request)
            }
        }
        anonymous.post("auth/login") { request, context -> Response in
            try await respond {
                guard auth.mode != .token else {
                    throw AuthError(.forbidden, "browser login is off (gateway.auth.mode: token); use an API token")
                }
                var body = try await RequestBody.read(OwnerAPI.LoginRequest.self, request, context)
                let result = try await authority.login(
                    username: body.username, password: body.password.take(), code: body.code,
                    client: OwnerAccessMiddleware.client(request, context))
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
                var session = OwnerAPI.Session(via: identity.via, scope: identity.scope.rawValue)
                if case .ready(let username, let totp) = state {
                    session.username = username
                    session.totpEnabled = totp
                }
                // Only the Tailscale identity learns its token here. A cookie session's token is given
                // once, by login or setup: a listener on another local port that received the cookie
                // must not be able to fetch it.
                if case .tailscale(_, let csrf) = identity { session.csrfToken = csrf }
                if case .session(let cookie) = identity { session.expiresAt = AuditTime.text(cookie.expires) }
                return session.flat.response(status: .ok)
            }
        }
        admin.post("auth/password") { request, context -> Response in
            try await respond {
                var body = try await RequestBody.read(OwnerAPI.PasswordChange.self, request, context)
                try await authority.changePassword(
                    current: body.currentPassword.take(), new: body.newPassword.take(),
                    client: OwnerAccessMiddleware.client(request, context))
                var response = Response(status: .noContent)
                response.headers[.setCookie] = auth.expiredCookie(for: request)
                return response
            }
        }
        admin.post("auth/revoke-all") { request, context -> Response in
            try await respond {
                let body = try await RequestBody.read(
                    OwnerAPI.RevokeAllRequest.self, request, context, allowEmpty: true)
                try await authority.revokeAll(
                    tokens: body.apiTokens, actor: context.identity?.actor ?? "owner",
                    client: OwnerAccessMiddleware.client(request, context))
                var response = Response(status: .noContent)
                response.headers[.setCookie] = auth.expiredCookie(for: request)
                return response
            }
        }
        admin.post("auth/totp/enrol") { request, context -> Response in
            try await respond {
                var body = try await RequestBody.read(OwnerAPI.TOTPEnrolRequest.self, request, context)
                let enrolment = try await authority.beginTOTPEnrolment(
                    currentPassword: body.password.take(), client: OwnerAccessMiddleware.client(request, context))
                return APIError.json(
                    status: .ok,
                    encoding: OwnerAPI.TOTPEnrolment(
                        uri: enrolment.uri, secret: enrolment.secretBase32, qrSVG: enrolment.qrSVG))
            }
        }
        admin.post("auth/totp/confirm") { request, context -> Response in
            try await respond {
                let body = try await RequestBody.read(OwnerAPI.TOTPConfirmRequest.self, request, context)
                let codes = try await authority.confirmTOTP(
                    code: body.code, client: OwnerAccessMiddleware.client(request, context))
                return APIError.json(status: .ok, encoding: OwnerAPI.RecoveryCodes(recoveryCodes: codes))
            }
        }
        read.post("auth/live-token") { request, context -> Response in
            try await respond {
                let body = try await RequestBody.read(
                    OwnerAPI.LiveTokenRequest.self, request, context, allowEmpty: true)
                let version = try await authority.tokenVersion()
                let token = try await auth.liveTokens.issue(purpose: body.purpose, tokenVersion: version)
                return APIError.json(
                    status: .ok,
                    encoding: OwnerAPI.LiveToken(token: token, expiresIn: Int(LiveTokenIssuer.maximumLifetime)))
            }
        }
        admin.get("tokens") { _, _ -> Response in
            try await respond {
                let tokens = try await authority.tokens()
                return APIError.json(status: .ok, encoding: OwnerAPI.TokenList(tokens: tokens.map(TokenView.init)))
            }
        }
        admin.post("tokens") { request, context -> Response in
            try await respond {
                let body = try await RequestBody.read(OwnerAPI.TokenRequest.self, request, context)
                let created = try await authority.createToken(
                    name: body.name, scope: body.scope, lifetime: body.lifetime,
                    actor: context.identity?.actor ?? "owner", client: OwnerAccessMiddleware.client(request, context))
                return APIError.json(
                    status: .created,
                    encoding: OwnerAPI.CreatedToken(view: TokenView(created.record), token: created.token))
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
            status: status,
            encoding: OwnerAPI.LoggedIn(csrfToken: result.csrfToken, expiresAt: AuditTime.text(result.expires)))
        response.headers[.setCookie] = auth.sessionCookie(result.sessionID, for: request)
        return response
    }
}

/// RFC 3339 UTC text of a date.
enum AuditTime {
    static func text(_ date: Date) -> String { OwnerAuthority.timestamp(Int64(date.timeIntervalSince1970 * 1000)) }
}
