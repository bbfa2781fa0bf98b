public import Foundation
public import MoatAgent
public import MoatAuth
public import MoatChannels
public import MoatHTTP
public import MoatPolicy

/// Everything `config.yaml` can set, with the safe defaults Moat runs on when there is no file.
///
/// Each section's value is declared by the module that uses it (``HTTPSettings`` in MoatHTTP,
/// `AuthSettings` in MoatAuth, `PolicySettings` in MoatPolicy); this type only aggregates them.
/// `config.yaml.example` and Docs/Configuration.md document each key; ``ConfigurationLoader`` is the
/// only place that reads the file.
public struct GatewayConfiguration: Sendable, Equatable {
    /// The default port, chosen to stay out of the way of common development servers.
    public static let defaultPort = HTTPSettings.defaultPort

    /// `gateway`: listening, TLS and the owner's authentication mode (MoatHTTP).
    public var http = HTTPSettings()
    /// `gateway.auth.limits`: brute-force limits and session lifetimes (Docs/Authentication.md).
    public var auth = AuthSettings()
    /// `log.format`.
    public var logFormat: LogFormat = .auto
    /// `log.level`.
    public var logLevel: LogLevel = .info
    /// `policy`: trust defaults per domain, evidence rule, approval lifetime, SSRF lists (MoatPolicy).
    public var policy = PolicySettings()
    /// `channels:` (signed webhooks).
    public var channels = ChannelsSettings()
    /// `agent`: the provider to use, the system prompt and the budgets of a turn (MoatAgent).
    public var agent = AgentSettings()

    public init() {}

    public typealias TLSFiles = HTTPSettings.TLSFiles
    public typealias AuthMode = HTTPSettings.AuthMode

    /// `gateway.host`.
    public var host: String {
        get { http.host }
        set { http.host = newValue }
    }
    /// `gateway.port`.
    public var port: Int {
        get { http.port }
        set { http.port = newValue }
    }
    /// `gateway.allowed_hosts`.
    public var allowedHosts: [String] {
        get { http.allowedHosts }
        set { http.allowedHosts = newValue }
    }
    /// `gateway.tls`.
    public var tls: TLSFiles? {
        get { http.tls }
        set { http.tls = newValue }
    }
    /// `gateway.auth.mode`.
    public var authMode: AuthMode {
        get { http.authMode }
        set { http.authMode = newValue }
    }
    /// `gateway.auth.tailscale.owner`.
    public var tailscaleOwner: String? {
        get { http.tailscaleOwner }
        set { http.tailscaleOwner = newValue }
    }
    /// `gateway.auth.tailscale.socket`.
    public var tailscaleSocket: String {
        get { http.tailscaleSocket }
        set { http.tailscaleSocket = newValue }
    }
    /// `gateway.auth.tailscale.proxy_uid`.
    public var tailscaleProxyUID: UInt32 {
        get { http.tailscaleProxyUID }
        set { http.tailscaleProxyUID = newValue }
    }

    /// The shape of log lines on stderr.
    public enum LogFormat: String, Sendable, CaseIterable {
        /// Text on a terminal, JSON lines otherwise.
        case auto
        case text
        case json
    }

    /// The lowest level that is logged.
    public enum LogLevel: String, Sendable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }
}
