public import HTTPTypes
public import Hummingbird
public import MoatCore
import Synchronization

/// The DNS-rebinding and cross-site defence: which `Host` and `Origin` values the gateway answers.
///
/// Loopback is never "trusted": `tailscale serve`, every local proxy and a browser tricked by DNS
/// rebinding all arrive from 127.0.0.1. What a rebinding page cannot forge is the `Host` header its
/// browser sends (the attacker's name), so a request is only answered when `Host` is a loopback name or
/// address with the bound port, the bound address itself, or an entry of `gateway.allowed_hosts`.
public final class HostGuard: Sendable {
    private let allowedNames: Set<String>
    private let allowedAuthorities: Set<String>
    private let loopbackNames: Set<String>
    private let scheme: String
    private let boundPort: Atomic<Int>
    private let boundAddress: String?

    /// - Parameters:
    ///   - boundAddress: the address the server listens on.
    ///   - port: the configured port (0 until ``setBoundPort(_:)`` reports the real one).
    ///   - tls: whether the listener speaks TLS (sets the default port of a bare `Host`).
    ///   - allowedHosts: `gateway.allowed_hosts`, already validated.
    public init(boundAddress: IPAddress, port: Int, tls: Bool, allowedHosts: [String]) {
        var names = Set<String>()
        var authorities = Set<String>()
        for entry in allowedHosts.map({ $0.lowercased() }) {
            if Self.splitAuthority(entry).port != nil {
                authorities.insert(entry)
            } else {
                names.insert(entry)
            }
        }
        self.allowedNames = names
        self.allowedAuthorities = authorities
        self.loopbackNames = ["localhost", "127.0.0.1", "[::1]"]
        self.scheme = tls ? "https" : "http"
        self.boundPort = Atomic(port)
        // A loopback address other than 127.0.0.1 (127.0.0.2, say) is named here too: the setup link
        // printed at start-up uses it, so it must be answered.
        if boundAddress.isUnspecified {
            self.boundAddress = nil
        } else if case .v6 = boundAddress {
            self.boundAddress = "[\(boundAddress)]"
        } else {
            self.boundAddress = boundAddress.description
        }
    }

    /// Records the port the listener really got (when 0 was asked for).
    public func setBoundPort(_ port: Int) {
        boundPort.store(port, ordering: .releasing)
    }

    /// Whether a request with this `Host` header value is for this gateway.
    public func allowsHost(_ header: String?) -> Bool {
        guard let header, !header.isEmpty else { return false }
        return allows(authority: header.lowercased(), defaultPort: scheme == "https" ? 443 : 80)
    }

    /// Whether a browser `Origin` header value is one of this gateway's own origins.
    public func allowsOrigin(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        let defaultPort: Int
        let rest: Substring
        if origin.hasPrefix("https://") {
            defaultPort = 443
            rest = origin.dropFirst(8)
        } else if origin.hasPrefix("http://") {
            defaultPort = 80
            rest = origin.dropFirst(7)
        } else {
            return false  // "null", file:, other schemes: never our origin
        }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return false }
        return allows(authority: String(rest), defaultPort: defaultPort)
    }

    private func allows(authority: String, defaultPort: Int) -> Bool {
        let (host, port) = Self.splitAuthority(authority)
        guard !host.isEmpty else { return false }
        let effectivePort = port ?? defaultPort
        let bound = boundPort.load(ordering: .acquiring)
        if loopbackNames.contains(host) || host == boundAddress {
            return effectivePort == bound
        }
        if allowedAuthorities.contains(authority) {
            return true
        }
        if allowedNames.contains(host) {
            return port == nil || port == 80 || port == 443
        }
        return false
    }

    /// Splits `host[:port]` or `[v6][:port]`; a malformed port yields an empty host (never allowed).
    static func splitAuthority(_ authority: String) -> (host: String, port: Int?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return ("", nil) }
            let host = String(authority[...close])
            let rest = authority[authority.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let port = parsePort(rest.dropFirst()) else { return ("", nil) }
            return (host, port)
        }
        let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            return (authority, nil)
        case 2:
            guard let port = parsePort(parts[1]) else { return ("", nil) }
            return (String(parts[0]), port)
        default:
            return ("", nil)
        }
    }

    private static func parsePort(_ text: Substring) -> Int? {
        guard (1...5).contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(text), (1...65535).contains(port)
        else { return nil }
        return port
    }

    /// Whether a `gateway.allowed_hosts` entry is a plain host name, IP literal, or either with a port.
    public static func isValidAllowedHost(_ entry: String) -> Bool {
        let (host, _) = splitAuthority(entry.lowercased())
        if host.isEmpty { return false }
        if host.hasPrefix("[") { return IPAddress(host) != nil }
        if IPAddress(host) != nil { return true }
        guard host.utf8.count <= 253, !host.hasPrefix("."), !host.hasSuffix(".") else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        }
    }
}

/// Applies ``HostGuard`` to every request: 421 for a foreign `Host`, 403 for a state-changing request
/// from a foreign origin.
public struct HostGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let hostGuard: HostGuard

    public init(_ hostGuard: HostGuard) {
        self.hostGuard = hostGuard
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard hostGuard.allowsHost(request.head.authority) else {
            // The offending name is not echoed: it is attacker-chosen text.
            return .plainText(
                status: .misdirectedRequest,
                "421 Misdirected Request: this gateway does not answer to that host name. "
                    + "If you reach Moat through a proxy or tailscale serve, add the name you use "
                    + "to gateway.allowed_hosts in config.yaml.\n"
            )
        }
        if Self.changesState(request.method) {
            if let origin = request.headers[.origin], !hostGuard.allowsOrigin(origin) {
                return .plainText(
                    status: .forbidden,
                    "403 Forbidden: cross-origin request refused (the Origin is not this gateway).\n"
                )
            }
            if request.headers[.secFetchSite]?.lowercased() == "cross-site" {
                return .plainText(status: .forbidden, "403 Forbidden: cross-site request refused.\n")
            }
        }
        return try await next(request, context)
    }

    public static func changesState(_ method: HTTPRequest.Method) -> Bool {
        switch method {
        case .get, .head, .options, .trace: false
        default: true
        }
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}

extension Response {
    /// A small `text/plain` response.
    public static func plainText(status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }
}
