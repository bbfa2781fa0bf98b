/// The HTTP side's settings (`gateway:` in `config.yaml`): where to listen, TLS, how the owner
/// authenticates. Declared here, read by the one configuration loader (MoatConfig).
public struct HTTPSettings: Sendable, Equatable {
    /// The default port, chosen to stay out of the way of common development servers.
    public static let defaultPort = 18789

    /// `gateway.host`: the address or name to listen on.
    public var host = "127.0.0.1"
    /// `gateway.port`: the TCP port (1–65535; 0 picks a free port, for tests).
    public var port = HTTPSettings.defaultPort
    /// `gateway.allowed_hosts`: extra `Host` names the gateway answers to (e.g. a `tailscale serve` name).
    public var allowedHosts: [String] = []
    /// `gateway.tls.cert` / `gateway.tls.key`: PEM files; both or neither.
    public var tls: TLSFiles?
    /// `gateway.auth.mode`.
    public var authMode: AuthMode = .password
    /// `gateway.auth.tailscale.owner`: the Tailscale login that counts as the owner through
    /// `tailscale serve` (Docs/RemoteAccess.md); nil turns the check off.
    public var tailscaleOwner: String?
    /// `gateway.auth.tailscale.socket`: tailscaled's LocalAPI socket.
    public var tailscaleSocket = "/var/run/tailscale/tailscaled.sock"
    /// `gateway.auth.tailscale.proxy_uid`: the user tailscaled runs as; only its connections can carry
    /// the identity headers.
    public var tailscaleProxyUID: UInt32 = 0

    public init() {}

    /// Paths of the TLS certificate chain and private key.
    public struct TLSFiles: Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String

        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    /// How clients prove they are the owner.
    public enum AuthMode: String, Sendable, CaseIterable {
        /// No authentication. Never accepted from `config.yaml` (loopback is not trusted); kept so the bind
        /// policy can state its rule for every value.
        case none
        /// The owner's password (with TOTP when enrolled) and a session cookie.
        case password
        /// API tokens only (`Authorization: Bearer`).
        case token
    }
}
