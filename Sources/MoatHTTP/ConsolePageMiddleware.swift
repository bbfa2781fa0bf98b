import Foundation
import HTTPTypes
public import Hummingbird
import MoatAuth
import NIOCore

/// The guard of the owner's server-rendered console pages (`/`, `/approvals`, …).
///
/// A page is a browser navigation, which carries only the session cookie: without an owner it sends
/// the browser to `/setup`, without a browser identity (session cookie or confirmed Tailscale identity;
/// an API token is for scripts, not pages) to `/login`, both with 303. Every POST (a form: approve,
/// deny) must be same-origin and carry the session's CSRF token in the form field `csrf_token`: the
/// pages never contain the token — the console script copies it from this origin's `localStorage`
/// into the form as it is sent — so a program on another local port that received the cookie cannot
/// act. Reading with the cookie alone is allowed only where replaying it gains nothing
/// (``cookieReadAllowed(_:context:)``): any other cookie-only read gets a 403 and no page.
public struct ConsolePageMiddleware: RouterMiddleware {
    public typealias Context = GatewayRequestContext
    let auth: GatewayAuth

    /// The largest form body a page accepts.
    public static let formLimit = 16 * 1024

    public init(_ auth: GatewayAuth) {
        self.auth = auth
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let moment = auth.authority.moment()
        let state: OwnerState
        do {
            state = try await auth.authority.state(at: moment)
        } catch {
            return APIError.response(error)
        }
        switch state {
        case .needsSetup: return Self.redirect("/setup")
        case .damaged: return APIError.response(AuthError(.tampered, OwnerState.damagedAdvice))
        case .ready: break
        }
        var context = context
        context.ownerState = state
        let identity: OwnerIdentity?
        do {
            // Only browser identities: a bearer header here is ignored, not tried.
            identity = try await OwnerAccessMiddleware(auth, .owner(.admin)).identify(
                request, context: context, at: moment, bearer: false)
        } catch {
            return Self.redirect("/login")
        }
        guard let identity, let expected = identity.csrfToken else { return Self.redirect("/login") }
        var request = request
        if case .session = identity, !HostGuardMiddleware<Context>.changesState(request.method),
            !cookieReadAllowed(request, context: context)
        {
            return Self.refusal(
                "This page was asked for with the session cookie alone by a program that does not run as the "
                    + "user running moat serve, so nothing was shown. The console opens to a browser of that "
                    + "user on this machine, through tailscale serve, or over Moat's own TLS: open it from there."
            )
        }
        if HostGuardMiddleware<Context>.changesState(request.method) {
            guard OwnerAccessMiddleware.sameOrigin(request, allowMissing: false) else {
                return Self.refusal("This form was sent from another site and was refused.")
            }
            let body = try await request.collectBody(upTo: Self.formLimit)
            let token = FormBody.fields(String(buffer: body))["csrf_token"]
            guard auth.authority.csrfMatches(token, expected: expected) else {
                return Self.refusal(
                    "The form's CSRF token is missing or wrong, so nothing was done. The console needs "
                        + "JavaScript to send forms (it adds the token kept in this browser); log in again if it persists."
                )
            }
        }
        if case .session(let session) = identity {
            do {
                try await auth.authority.touchSession(session)
            } catch {
                return Self.redirect("/login")
            }
        }
        context.identity = identity
        return try await next(request, context)
    }

    /// Whether a page may be read with the session cookie alone (a browser navigation carries nothing
    /// else). Browsers send the cookie to every port of the host, so another program on another
    /// `127.0.0.1` port that the owner's browser visits holds it; the cookie then opens a page only
    /// when the program replaying it could read `moat.db` anyway, or could not have received it:
    /// - the peer's socket belongs to this server's own user (``SocketOwner``): such a program reads
    ///   `moat.db` directly and gains nothing;
    /// - the peer is tailscaled's user (`gateway.auth.tailscale.proxy_uid`, root by default) forwarding
    ///   an HTTPS request (`X-Forwarded-Proto: https`): `tailscale serve`, where the cookie is `Secure`;
    /// - Moat's own listener speaks TLS: the cookie is `__Host-` and `Secure`, never sent over plain HTTP.
    /// A peer the socket tables do not list (another host over plain HTTP) is refused.
    func cookieReadAllowed(_ request: Request, context: Context) -> Bool {
        if auth.tls { return true }
        guard let remote = context.remoteAddress, let local = context.localAddress,
            let uid = SocketOwner.uid(peer: remote, local: local)
        else { return false }
        if uid == geteuid() { return true }
        return uid == auth.tailscaleProxyUID && request.headers[.xForwardedProto]?.lowercased() == "https"
    }

    /// A 303 to `location` (a fixed path of this gateway).
    public static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// A plain 403 page for a refused form.
    static func refusal(_ message: String) -> Response {
        Response(
            status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}

/// `application/x-www-form-urlencoded` bodies.
public enum FormBody {
    /// Each field's value (the first when repeated), `+` and percent-escapes decoded; a malformed
    /// escape makes the field absent.
    public static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            let value = parts.count == 2 ? decode(parts[1]) : ""
            if let value, fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}
