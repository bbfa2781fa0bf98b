public import Foundation
import MoatCore

/// The limits and lifetimes of owner authentication; `gateway.auth.*` in `config.yaml` sets them.
///
/// The defaults are the ones Docs/Authentication.md documents (OWASP ASVS 5.0 level 2). None of them
/// has an exemption for loopback: every `tailscale serve` or local-proxy request arrives from 127.0.0.1.
public struct AuthSettings: Sendable, Equatable {
    /// Failed passwords per account within ``failureWindow`` before logins for it answer 429.
    public var passwordFailuresPerAccount = 10
    /// Failed passwords from one source address within ``failureWindow`` before it gets 429.
    public var passwordFailuresPerAddress = 20
    /// Failed TOTP or recovery codes within ``failureWindow`` before TOTP checks answer 429.
    public var totpFailures = 5
    /// Failed setup-token checks from one source address within ``failureWindow``.
    public var setupFailuresPerAddress = 10
    /// The window the failure limits count in (15 minutes).
    public var failureWindow: TimeInterval = 15 * 60
    /// Audit entries for refusals (failed logins, wrong setup tokens, refused identities) per minute,
    /// all sources together; past it refusals are counted in one summary entry instead.
    public var refusalAuditsPerMinute = 20
    /// Argon2 password checks allowed to run at once; more get 429 (an attacker cannot pin the CPU).
    public var concurrentPasswordChecks = 2
    /// A session ends after this long without a request (2 hours).
    public var sessionIdleTimeout: TimeInterval = 2 * 3600
    /// A session ends this long after login whatever happens (24 hours).
    public var sessionAbsoluteTimeout: TimeInterval = 24 * 3600
    /// How long a setup link stays valid (15 minutes).
    public var setupTokenLifetime: TimeInterval = 15 * 60
    /// API tokens created without `--expires` expire after this long (90 days); nil means never.
    public var defaultTokenLifetime: TimeInterval? = 90 * 86400

    public init() {}
}

/// Where a request came from, for limits and the audit log. Never holds a credential.
public struct ClientInfo: Sendable, Equatable {
    /// The TCP peer's address as text (`127.0.0.1`, `::1`), or `admin-socket`/`cli` for local commands.
    public let sourceIP: String
    /// The User-Agent, cut to 200 characters with control characters removed.
    public let userAgent: String

    /// The addresses a proxy in front of Moat (`tailscale serve`) reported in `X-Forwarded-For`, when the
    /// header held only IP addresses (at most four). As claimed by the request: recorded for the
    /// owner's information, never used for a decision (limits count the TCP peer).
    public let forwardedFor: String?

    public init(sourceIP: String, userAgent: String, forwardedFor: String? = nil) {
        self.sourceIP = sourceIP
        self.userAgent = String(PrintableText.strip(userAgent).unicodeScalars.prefix(200))
        self.forwardedFor = forwardedFor.flatMap(Self.addressList)
    }

    /// `text` when it is a comma-separated list of one to four IP addresses, normalised; otherwise nil.
    static func addressList(_ text: String) -> String? {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...4).contains(parts.count) else { return nil }
        let addresses = parts.compactMap { IPAddress($0)?.description }
        return addresses.count == parts.count ? addresses.joined(separator: ", ") : nil
    }

    /// The source that limits and audit throttles count: every loopback address (127.0.0.0/8, `::1`,
    /// `::ffff:127.x.y.z`) is one source, since any local process may use any of them; an IPv6 address
    /// counts by its /64, the block one host is usually given; anything else as it is.
    public var limitKey: String {
        guard let address = IPAddress(sourceIP) else { return sourceIP }
        if address.isLoopback { return "loopback" }
        if let mapped = address.ipv4Mapped { return IPAddress.v4(mapped).description }
        guard case .v6(let bytes) = address else { return address.description }
        return IPAddress.v6(Array(bytes.prefix(8)) + Array(repeating: 0, count: 8)).description + "/64"
    }

    /// A command run on this machine by the owner's own account (the CLI or the admin socket).
    public static func local(_ via: String) -> ClientInfo { ClientInfo(sourceIP: via, userAgent: "moat-cli") }
}

/// What an API token may do.
public enum TokenScope: String, Sendable, CaseIterable, Comparable, Codable {
    /// GET requests only.
    case read
    /// Everything except owner administration (tokens, revoke-all, password, TOTP).
    case write
    /// Everything.
    case admin

    /// Whether a token of this scope may do something that needs `required`.
    public func allows(_ required: TokenScope) -> Bool { self >= required }

    private var rank: Int {
        switch self {
        case .read: return 0
        case .write: return 1
        case .admin: return 2
        }
    }

    public static func < (lhs: TokenScope, rhs: TokenScope) -> Bool { lhs.rank < rhs.rank }
}
