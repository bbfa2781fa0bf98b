import HTTPTypes
public import Hummingbird

/// Sets the browser-hardening headers on every response, refusals included.
///
/// The Content-Security-Policy allows only same-origin scripts, styles and images (no inline script:
/// the dashboard's JavaScript is a separate file), no framing, no `<base>` and forms posting only here.
public struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let tls: Bool

    public init(tls: Bool) {
        self.tls = tls
    }

    public static var contentSecurityPolicy: String {
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    }

    public static var permissionsPolicy: String {
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), hid=(), "
            + "display-capture=(), clipboard-read=(), interest-cohort=()"
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        apply(to: &response.headers, path: request.uri.path)
        return response
    }

    func apply(to headers: inout HTTPFields, path: String) {
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.referrerPolicy] = "no-referrer"
        headers[.xFrameOptions] = "DENY"
        headers[.crossOriginOpenerPolicy] = "same-origin"
        headers[.crossOriginResourcePolicy] = "same-origin"
        headers[.permissionsPolicy] = Self.permissionsPolicy
        // Everything but the console's content-hashed assets is private and current: never stored.
        if !path.hasPrefix("/assets/") {
            headers[.cacheControl] = "no-store"
        }
        if tls {
            headers[.strictTransportSecurity] = "max-age=31536000"
        }
    }
}

extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let crossOriginOpenerPolicy = HTTPField.Name("Cross-Origin-Opener-Policy")!
    static let crossOriginResourcePolicy = HTTPField.Name("Cross-Origin-Resource-Policy")!
    static let permissionsPolicy = HTTPField.Name("Permissions-Policy")!
    static let csrfToken = HTTPField.Name("X-CSRF-Token")!
}
