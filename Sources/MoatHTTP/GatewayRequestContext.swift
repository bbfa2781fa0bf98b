public import Hummingbird
public import MoatAuth
public import NIOCore

/// Who a request was proven to come from, set by ``OwnerAccessMiddleware``.
public enum OwnerIdentity: Sendable {
    /// A browser session (cookie). Every request needs its CSRF token, reads too: browsers send a
    /// cookie to every port of the host, so a listener on another local port can receive the cookie,
    /// but only this origin's page holds the token.
    case session(SessionInfo)
    /// An API token (`Authorization: Bearer moat_…`); limited by its scope.
    case token(APITokenRecord)
    /// `tailscale serve` identity, confirmed with tailscaled; mutations need the CSRF token bound to it.
    case tailscale(login: String, csrfToken: String)

    /// The audit actor: `owner` for the owner's browser, `token:<prefix>` for a script.
    public var actor: String {
        switch self {
        case .session, .tailscale: return "owner"
        case .token(let record): return "token:" + record.prefix
        }
    }

    /// How the request authenticated, for `/api/auth/session`.
    public var via: String {
        switch self {
        case .session: return "session"
        case .token: return "token"
        case .tailscale: return "tailscale"
        }
    }

    /// The token's scope; the owner's own browser has every scope.
    public var scope: TokenScope {
        if case .token(let record) = self { return record.scope }
        return .admin
    }

    /// Whether every request (not only a state change) must carry the CSRF token: true for the
    /// session cookie, whose value can reach other local ports.
    public var needsCSRFOnReads: Bool {
        if case .session = self { return true }
        return false
    }

    /// The CSRF token the client must echo, for identities that ride on ambient credentials.
    public var csrfToken: String? {
        switch self {
        case .session(let info): return info.csrfToken
        case .tailscale(_, let token): return token
        case .token: return nil
        }
    }
}

/// The request context of every gateway route: the TCP peer and, after authentication, the identity.
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer. Behind `tailscale serve` or any local proxy this is 127.0.0.1: it is used for rate
    /// limits and the audit log, never as proof of identity.
    public let remoteAddress: SocketAddress?
    /// This end of the connection (the listener's address and port).
    public let localAddress: SocketAddress?
    /// Set by ``OwnerAccessMiddleware`` on requests to owner routes.
    public var identity: OwnerIdentity?
    /// The owner's state as ``OwnerAccessMiddleware`` read it for this request (nil before it ran).
    public var ownerState: OwnerState?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        localAddress = source.channel.localAddress
    }

    /// The peer address as text (`127.0.0.1`), or `unknown`.
    public var sourceIP: String { remoteAddress?.ipAddress ?? "unknown" }
}
