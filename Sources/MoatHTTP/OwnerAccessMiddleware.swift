import Foundation
public import HTTPTypes
public import Hummingbird
public import MoatAuth
public import MoatCore
public import MoatStore
import NIOCore
import Synchronization

/// Everything the HTTP side needs to authenticate the owner.
public struct GatewayAuth: Sendable {
    public let authority: OwnerAuthority
    /// `moat.db`, for the audit views (`/api/audit`, `/api/events`).
    public let database: MoatDatabase
    /// `gateway.auth.tailscale.owner` set: the `tailscale serve` identity check.
    public let tailscale: TailscaleIdentity?
    /// Whether the listener speaks TLS (cookie name and `Secure`).
    public let tls: Bool
    /// `gateway.auth.mode`: `token` turns browser login off.
    public let mode: HTTPSettings.AuthMode
    /// Issues and checks the short-lived JWTs of live connections.
    public let liveTokens: LiveTokenIssuer
    /// Where `moat serve` wrote the setup link (removed once setup succeeds).
    public let setupLinkFile: String?
    /// The user tailscaled runs as (`gateway.auth.tailscale.proxy_uid`, root by default): its HTTPS
    /// requests carry a `Secure` cookie, which the console's pages accept alone (``ConsolePageMiddleware``).
    public let tailscaleProxyUID: UInt32
    let tailscaleAudits = TailscaleAuditThrottle()

    public init(
        authority: OwnerAuthority,
        database: MoatDatabase,
        tailscale: TailscaleIdentity?,
        tls: Bool,
        mode: HTTPSettings.AuthMode,
        liveTokens: LiveTokenIssuer,
        setupLinkFile: String? = nil,
        tailscaleProxyUID: UInt32 = 0
    ) {
        self.authority = authority
        self.database = database
        self.tailscale = tailscale
        self.tls = tls
        self.mode = mode
        self.liveTokens = liveTokens
        self.setupLinkFile = setupLinkFile
        self.tailscaleProxyUID = tailscaleProxyUID
    }

    /// Whether the browser reached Moat over HTTPS: Moat's own TLS, or `tailscale serve` (or another
    /// local proxy) terminating TLS and saying so in `X-Forwarded-Proto`. Trusting that header can only
    /// make the cookie stricter (`Secure`, `__Host-`), never grant anything.
    public func isHTTPS(_ request: Request) -> Bool {
        tls || request.headers[.xForwardedProto]?.lowercased() == "https"
    }

    /// `__Host-moat_session` over HTTPS (the prefix makes browsers insist on Secure, Path=/ and no
    /// Domain), `moat_session` on plain-HTTP loopback.
    public func cookieName(https: Bool) -> String { https ? "__Host-moat_session" : "moat_session" }

    /// The `Set-Cookie` value for a new session.
    public func sessionCookie(_ id: String, for request: Request) -> String {
        let https = isHTTPS(request)
        return "\(cookieName(https: https))=\(id); Path=/; HttpOnly; SameSite=Strict" + (https ? "; Secure" : "")
    }

    /// The `Set-Cookie` value that removes the session cookie.
    public func expiredCookie(for request: Request) -> String {
        let https = isHTTPS(request)
        return "\(cookieName(https: https))=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (https ? "; Secure" : "")
    }
}

/// Audits Tailscale identity decisions without writing an entry for every request: each (address,
/// outcome) pair at most once per 15 minutes.
final class TailscaleAuditThrottle: Sendable {
    private let last = Mutex<[String: ContinuousClock.Instant]>([:])

    func shouldAudit(_ key: String) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { seen in
            if let previous = seen[key], now - previous < .seconds(900) { return false }
            if seen.count > 10_000 { seen.removeAll() }
            seen[key] = now
            return true
        }
    }
}

/// Who may call a route. Declared with the route — each route is added to the group of its rule
/// (``AccessRoutes``) — never looked up in a path table, so a route cannot be registered without one.
public enum RouteAccess: Sendable, Equatable, CustomStringConvertible {
    /// Setup (`/api/setup`): the only routes that answer before an owner exists.
    case setup
    /// No identity needed once there is an owner (login). A POST still needs a same-origin browser.
    case anonymous
    /// Authenticated in the handler by a short-lived JWT (live streams); never by an API token.
    case liveToken
    /// An owner identity — API token, session cookie or Tailscale identity — whose scope allows this.
    case owner(TokenScope)

    /// Whether the route answers without an identity.
    public var isPublic: Bool { self == .setup || self == .anonymous }

    public var description: String {
        switch self {
        case .setup: "setup"
        case .anonymous: "anonymous"
        case .liveToken: "live token"
        case .owner(let scope): "owner (\(scope.rawValue))"
        }
    }
}

/// The access rule of every route, as the routes were declared: what the OpenAPI check and the CSRF
/// tests read instead of a second table.
public final class RouteTable: Sendable {
    /// Each declared path's rule and the methods declared for it.
    private let rules = Mutex<[String: (access: RouteAccess, methods: Set<String>)]>([:])

    public init() {}

    func record(_ method: HTTPRequest.Method, _ path: String, _ access: RouteAccess) {
        rules.withLock { rules in
            // One rule per path: the 405 answer for a path is guarded by its rule, which must not depend
            // on which of the path's methods is looked at.
            let declared = rules[path, default: (access, [])]
            precondition(
                declared.access == access, "\(path) is declared with two access rules (\(declared.access), \(access))")
            rules[path] = (access, declared.methods.union([method.rawValue]))
        }
    }

    /// The rule of the routes at `path` (as declared), whatever their method.
    public func access(path: String) -> RouteAccess? {
        rules.withLock { $0[path]?.access }
    }

    /// The rule of `method path` (the path as declared, e.g. `/api/tokens/{prefix}`), nil when no such route.
    public func access(_ method: String, _ path: String) -> RouteAccess? {
        rules.withLock { rules in rules[path].flatMap { $0.methods.contains(method.uppercased()) ? $0.access : nil } }
    }
}

/// A group of `/api/` routes that share one access rule: every route added through it gets the
/// ``OwnerAccessMiddleware`` for that rule and is recorded in the ``RouteTable``.
public struct AccessRoutes: Sendable {
    let group: RouterGroup<GatewayRequestContext>
    let prefix: String
    let access: RouteAccess
    let table: RouteTable

    /// The routes under `prefix` (e.g. `/api`) that follow `access`.
    public init(
        _ router: Router<GatewayRequestContext>, _ prefix: String, _ access: RouteAccess, auth: GatewayAuth,
        table: RouteTable
    ) {
        self.group = router.group(RouterPath(prefix)).add(middleware: OwnerAccessMiddleware(auth, access))
        self.prefix = prefix
        self.access = access
        self.table = table
    }

    public typealias Handler = @Sendable (Request, GatewayRequestContext) async throws -> Response

    @discardableResult public func get(_ path: String, use handler: @escaping Handler) -> Self {
        on(path, .get, handler)
    }

    @discardableResult public func post(_ path: String, use handler: @escaping Handler) -> Self {
        on(path, .post, handler)
    }

    @discardableResult public func delete(_ path: String, use handler: @escaping Handler) -> Self {
        on(path, .delete, handler)
    }

    private func on(_ path: String, _ method: HTTPRequest.Method, _ handler: @escaping Handler) -> Self {
        table.record(method, prefix + "/" + path, access)
        group.on(RouterPath(path), method: method, use: handler)
        return self
    }
}

/// Refuses a request path that is not canonical (repeated slashes, dot segments): the router ignores
/// empty segments, so `//api/tokens` would reach `/api/tokens`; nothing may depend on a path's text.
public struct CanonicalPathMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let raw = request.uri.path
        let segments = raw.split(separator: "/", omittingEmptySubsequences: true)
        guard !raw.contains("//"), !segments.contains("."), !segments.contains("..") else {
            return APIError.response(
                status: .badRequest, "the path is not canonical (repeated slashes or dot segments)")
        }
        return try await next(request, context)
    }
}

/// The guard of one ``RouteAccess`` rule, added to the route group that declares it. Before setup only
/// setup answers (503 otherwise); afterwards an owner route needs an identity — an API token, a session
/// cookie, or a confirmed Tailscale identity — whose scope allows the route. Every request made with
/// the session cookie needs its CSRF token (reads too: the cookie can reach other local ports, the token
/// only this origin's page), and a state-changing request made with a cookie or Tailscale identity also
/// needs a same-origin `Origin` or `Sec-Fetch-Site`. There is no path on which a loopback peer counts as
/// the owner.
public struct OwnerAccessMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext
    let auth: GatewayAuth
    let access: RouteAccess

    public init(_ auth: GatewayAuth, _ access: RouteAccess) {
        self.auth = auth
        self.access = access
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // One reading of moat.db's version serves every check of this request (``AuthMoment``).
        let moment = auth.authority.moment()
        let state: OwnerState
        do {
            state = try await auth.authority.state(at: moment)
        } catch {
            return APIError.response(error)
        }
        switch state {
        case .needsSetup:
            guard access == .setup else {
                return APIError.response(
                    AuthError(
                        .setupRequired,
                        "Moat has no owner yet: open the setup link `moat serve` printed, or run `moat owner setup`"))
            }
            if request.method == .post, !Self.sameOrigin(request, allowMissing: true) {
                return APIError.response(status: .forbidden, "cross-site request refused")
            }
            return try await next(request, context)
        case .damaged:
            return APIError.response(AuthError(.tampered, OwnerState.damagedAdvice))
        case .ready:
            break
        }
        let required: TokenScope
        switch access {
        case .setup, .anonymous:
            if request.method == .post, !Self.sameOrigin(request, allowMissing: true) {
                return APIError.response(status: .forbidden, "cross-site request refused")
            }
            return try await next(request, context)
        case .liveToken:
            return try await next(request, context)
        case .owner(let scope):
            required = scope
        }
        var context = context
        context.ownerState = state
        do {
            context.identity = try await identify(request, context: context, at: moment)
        } catch {
            return APIError.response(error)
        }
        guard let identity = context.identity else {
            var response = APIError.response(
                status: .unauthorized,
                "log in first (POST /api/auth/login) or send an API token as Authorization: Bearer")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"moat\""
            return response
        }
        let mutates = HostGuardMiddleware<Context>.changesState(request.method)
        if let expected = identity.csrfToken, mutates || identity.needsCSRFOnReads {
            if mutates, !Self.sameOrigin(request, allowMissing: false) {
                return APIError.response(status: .forbidden, "cross-site request refused (Origin or Sec-Fetch-Site)")
            }
            guard auth.authority.csrfMatches(request.headers[.csrfToken], expected: expected) else {
                return APIError.response(
                    status: .forbidden,
                    "missing or wrong X-CSRF-Token header: send the csrf_token the login answered with, or log in again"
                )
            }
        }
        if case .session(let session) = identity {
            do {
                try await auth.authority.touchSession(session)
            } catch {
                return APIError.response(error)
            }
        }
        guard identity.scope.allows(required) else {
            return APIError.response(
                status: .forbidden,
                "this API token's scope (\(identity.scope.rawValue)) does not allow this; it needs \(required.rawValue)"
            )
        }
        return try await next(request, context)
    }

    /// The identity behind a request, or nil. A malformed or revoked bearer token is an error (401),
    /// not a fall-through to the cookie. Query strings are never read: tokens in URLs leak into logs.
    /// With `bearer` false (the console's pages) the Authorization header is not looked at.
    func identify(_ request: Request, context: Context, at moment: AuthMoment, bearer: Bool = true)
        async throws(AuthError) -> OwnerIdentity?
    {
        // Built only where it is recorded (audit entries), not on every request.
        let client: @Sendable () -> ClientInfo = { Self.client(request, context) }
        if bearer, let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw AuthError(.unauthorized, "the Authorization header must be `Bearer <API token>`")
            }
            return .token(try await auth.authority.authenticate(bearer: String(parts[1]), client: client(), at: moment))
        }
        if auth.mode != .token {
            // Every session cookie is tried, not only the first: a program on another local port can set
            // `moat_session=junk; Path=/api`, which browsers send before the owner's `Path=/` cookie.
            let names = [auth.cookieName(https: true), auth.cookieName(https: false)]
            for id in Self.cookies(named: names, in: request.headers) {
                if let session = try await auth.authority.session(id: id, touch: false) {
                    return .session(session)
                }
            }
        }
        // Token mode turns every ambient browser identity off: the cookie above and Tailscale's headers.
        if auth.mode != .token, let tailscale = auth.tailscale {
            let peerInfo = client()
            let peer = IPAddress(peerInfo.sourceIP)
            let peerUID = {
                guard let remote = context.remoteAddress, let local = context.localAddress else { return UInt32?.none }
                return SocketOwner.uid(peer: remote, local: local)
            }
            switch await tailscale.evaluate(peer: peer, peerUID: peerUID, headers: request.headers) {
            case .absent:
                return nil
            case .owner(let login, let address):
                if auth.tailscaleAudits.shouldAudit("ok " + address) {
                    await auth.authority.recordTailscale(login: login, accepted: true, reason: nil, client: peerInfo)
                }
                return .tailscale(login: login, csrfToken: try await auth.authority.tailscaleCSRFToken(login: login))
            case .refused(let reason):
                if auth.tailscaleAudits.shouldAudit("no " + peerInfo.limitKey + reason) {
                    await auth.authority.recordTailscale(login: nil, accepted: false, reason: reason, client: peerInfo)
                }
                return nil
            }
        }
        return nil
    }

    /// A browser request is same-origin when its `Origin` is this gateway (``HostGuard`` already refused
    /// foreign origins) or, without `Origin`, `Sec-Fetch-Site` says `same-origin`. With `allowMissing`,
    /// a request with neither header (curl, a script) passes: it cannot be a browser's cross-site request.
    public static func sameOrigin(_ request: Request, allowMissing: Bool) -> Bool {
        let site = request.headers[.secFetchSite]?.lowercased()
        if let site, site != "same-origin", site != "none" { return false }
        if request.headers[.origin] != nil { return true }
        if site == "same-origin" { return true }
        return allowMissing && site == nil
    }

    public static func client(_ request: Request, _ context: Context) -> ClientInfo {
        // Only a local proxy (tailscale serve) can stand in front of Moat, so only a loopback peer's
        // X-Forwarded-For is recorded; it stays a claim either way.
        let local = IPAddress(context.sourceIP)?.isLoopback == true
        return ClientInfo(
            sourceIP: context.sourceIP, userAgent: request.headers[.userAgent] ?? "",
            forwardedFor: local ? request.headers[values: .xForwardedFor].joined(separator: ",") : nil)
    }

    /// How many session cookies one request may offer; the rest are ignored (each one costs a lookup).
    static let sessionCookieLimit = 8

    /// The values of every cookie named one of `names`, in the order sent, at most
    /// ``sessionCookieLimit`` of them (cookie values are never logged).
    public static func cookies(named names: [String], in headers: HTTPFields) -> [String] {
        var values: [String] = []
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, names.contains(parts[0].trimmingCharacters(in: .whitespaces)) else { continue }
                values.append(parts[1].trimmingCharacters(in: .whitespaces))
                if values.count == sessionCookieLimit { return values }
            }
        }
        return values
    }
}

/// JSON error responses: `{"error": "…"}` with the right status, and `Retry-After` for 429.
/// The one error → HTTP mapping: every route answers a failed operation through here, by the error's
/// ``FailureKind`` (a `ClassifiedError` of any module) with `{"error": message}`.
public enum APIError {
    public static func response(_ error: any ClassifiedError) -> Response {
        var response = response(status: status(error.kind), error.message)
        if let retry = (error as? AuthError)?.retryAfter { response.headers[.retryAfter] = String(retry) }
        return response
    }

    /// The status of each kind of failure.
    public static func status(_ kind: FailureKind) -> HTTPResponse.Status {
        switch kind {
        case .invalidInput: .badRequest
        case .setupRequired: .serviceUnavailable
        case .conflict: .conflict
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .rateLimited: .tooManyRequests
        case .notFound: .notFound
        default: .internalServerError
        }
    }

    public static func response(status: HTTPResponse.Status, _ message: String) -> Response {
        json(status: status, ["error": message])
    }

    /// `body` as JSON (sorted keys, `/` unescaped; ``jsonData(_:)``): the one writer of every answer.
    public static func json<Body: Encodable>(status: HTTPResponse.Status, encoding body: Body) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: jsonData(body))))
    }

    public static func json(status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
