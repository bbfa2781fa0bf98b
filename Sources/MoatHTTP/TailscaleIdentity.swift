public import HTTPTypes
public import MoatCore

/// What ``TailscaleIdentity`` concluded about one request.
public enum TailscaleVerdict: Sendable, Equatable {
    /// No `Tailscale-User-Login` header: the normal login applies and there is nothing to audit.
    case absent
    /// The request comes from the configured owner through `tailscale serve`, confirmed by tailscaled.
    /// `login` is the login tailscaled reported; `address` the tailnet address it was checked for.
    case owner(login: String, address: String)
    /// Tailscale headers are present but not accepted: the caller audits `reason` and falls back to the
    /// normal login. `reason` is short and holds no header value.
    case refused(reason: String)
}

/// Decides whether a request that arrived through `tailscale serve` is the owner (opt-in:
/// `gateway.auth.tailscale.owner`).
///
/// `tailscale serve` proxies tailnet traffic to Moat on 127.0.0.1 and adds identity headers, but any
/// local process can connect to 127.0.0.1 and write the same headers. So a request counts as the owner
/// only when all of these hold:
/// - it carries `Tailscale-User-Login` (exactly once), equal to the configured owner;
/// - it has no `Tailscale-Funnel-Request` header (Funnel traffic is from the internet: never identity);
/// - the TCP peer is loopback (127.0.0.0/8 or ::1), where `tailscale serve` connects from, and its
///   socket belongs to tailscaled's user (`gateway.auth.tailscale.proxy_uid`, root by default; see
///   ``SocketOwner``), so another local program cannot write the headers itself;
/// - it carries `X-Forwarded-For`, `X-Forwarded-Host` and `X-Forwarded-Proto`, as `tailscale serve` sets
///   them (over HTTPS, which is its default);
/// - `X-Forwarded-For` holds exactly one address (tailscale serve sets one; a list is a chain or a forgery);
/// - tailscaled's LocalAPI `whois` for that address answers with a node that is not tagged (a tagged node
///   has no user identity) and whose user's login is the configured owner.
///
/// Logins are compared ignoring ASCII case over the whole login, so `Alice@Example.com` matches
/// `alice@example.com`: identity providers treat e-mail addresses that way, and tailscaled's whois answer
/// is the authority either way. A login tailscale serve sent RFC 2047-encoded (non-ASCII) is decoded
/// first. There is no "loopback means owner" rule: without the headers and the whois confirmation the
/// request is not the owner.
public struct TailscaleIdentity: Sendable {
    private let owner: String
    private let localAPI: TailscaleLocalAPI
    private let proxyUID: UInt32

    /// - Parameters:
    ///   - owner: the owner's Tailscale login, as configured (`gateway.auth.tailscale.owner`).
    ///   - localAPI: the client used to confirm addresses with tailscaled.
    ///   - proxyUID: the user tailscaled runs as (`gateway.auth.tailscale.proxy_uid`, 0 = root).
    public init(owner: String, localAPI: TailscaleLocalAPI, proxyUID: UInt32 = 0) {
        self.owner = owner
        self.localAPI = localAPI
        self.proxyUID = proxyUID
    }

    /// Evaluates one request.
    ///
    /// - Parameters:
    ///   - peer: the address of the TCP peer that sent the request (nil when unknown).
    ///   - peerUID: looks up the user owning the peer's socket (nil when unknown); called only when the
    ///     headers pass, so requests without Tailscale headers cost no lookup.
    ///   - headers: the request's header fields.
    public func evaluate(
        peer: IPAddress?, peerUID: () -> UInt32?, headers: HTTPFields
    ) async -> TailscaleVerdict {
        let address: String
        switch Self.checkHeaders(peer: peer, headers: headers, owner: owner) {
        case .absent:
            return .absent
        case .refused(let reason):
            return .refused(reason: reason)
        case .needsWhois(let checked):
            address = checked
        }
        guard let uid = peerUID() else { return .refused(reason: "peer socket owner unknown") }
        guard uid == proxyUID else { return .refused(reason: "peer is not tailscaled's user") }
        let whois: TailscaleWhois
        do {
            whois = try await localAPI.whois(address: address)
        } catch let failure as TailscaleLocalAPI.Failure {
            return .refused(reason: Self.reason(for: failure.kind))
        } catch {
            return .refused(reason: "tailscaled unreachable")
        }
        guard whois.tags.isEmpty else { return .refused(reason: "tagged node") }
        guard Self.loginsMatch(whois.login, owner) else { return .refused(reason: "whois login differs") }
        return .owner(login: whois.login, address: address)
    }

    /// The outcome of the checks that need no I/O.
    enum HeaderCheck: Equatable {
        case absent
        case refused(String)
        /// Every header check passed; tailscaled must still confirm this address.
        case needsWhois(String)
    }

    /// The checks on the peer and the headers, in a fixed order; pure, so tests need no tailscaled.
    static func checkHeaders(peer: IPAddress?, headers: HTTPFields, owner: String) -> HeaderCheck {
        let logins = headers[values: .tailscaleUserLogin]
        guard !logins.isEmpty else { return .absent }
        guard headers[values: .tailscaleFunnelRequest].isEmpty else { return .refused("funnel request") }
        guard let peer, peer.isLoopback else { return .refused("peer is not loopback") }
        for name in [HTTPField.Name.xForwardedFor, .xForwardedHost, .xForwardedProto]
        where headers[values: name].allSatisfy({ $0.trimmingASCIIWhitespace.isEmpty }) {
            return .refused("missing \(name.rawName)")
        }
        guard logins.count == 1 else { return .refused("repeated Tailscale-User-Login") }
        guard let login = decodeHeaderValue(logins[0].trimmingASCIIWhitespace), !login.isEmpty else {
            return .refused("unreadable Tailscale-User-Login")
        }
        guard loginsMatch(login, owner) else { return .refused("login does not match the configured owner") }
        let forwarded = headers[values: .xForwardedFor].flatMap {
            $0.split(separator: ",", omittingEmptySubsequences: false)
        }
        guard forwarded.count == 1 else { return .refused("X-Forwarded-For holds more than one address") }
        guard let address = IPAddress(String(forwarded[0]).trimmingASCIIWhitespace) else {
            return .refused("X-Forwarded-For is not an IP address")
        }
        return .needsWhois(address.description)
    }

    /// Case-insensitive for ASCII letters, exact for every other byte, over the whole login.
    static func loginsMatch(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count, !left.isEmpty else { return false }
        return zip(left, right).allSatisfy { asciiLowercased($0) == asciiLowercased($1) }
    }

    private static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    private static func reason(for kind: TailscaleLocalAPI.Failure.Kind) -> String {
        switch kind {
        case .unreachable: "tailscaled unreachable"
        case .timedOut: "tailscaled did not answer in time"
        case .notFound: "whois does not know the address"
        case .status: "whois failed"
        case .malformed, .tooLarge: "whois answer malformed"
        case .invalidAddress: "X-Forwarded-For is not an IP address"
        }
    }

    /// A header value as text: as is when it is plain ASCII, decoded when it is one or more RFC 2047
    /// `=?utf-8?q?...?=` words (how tailscale serve sends non-ASCII names); nil when it is neither.
    static func decodeHeaderValue(_ value: String) -> String? {
        guard value.hasPrefix("=?") else {
            return value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) ? value : nil
        }
        var decoded: [UInt8] = []
        // Words are separated by whitespace, which RFC 2047 says to drop between encoded words.
        for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            let parts = word.split(separator: "?", omittingEmptySubsequences: false)
            guard parts.count == 5, parts[0] == "=", parts[4] == "=",
                parts[1].lowercased() == "utf-8", parts[2].lowercased() == "q"
            else { return nil }
            var bytes = Array(parts[3].utf8)[...]
            while let byte = bytes.popFirst() {
                switch byte {
                case UInt8(ascii: "_"):
                    decoded.append(UInt8(ascii: " "))
                case UInt8(ascii: "="):
                    guard bytes.count >= 2, let high = hexValue(bytes.removeFirst()),
                        let low = hexValue(bytes.removeFirst())
                    else { return nil }
                    decoded.append(high << 4 | low)
                default:
                    decoded.append(byte)
                }
            }
        }
        return String(validating: decoded, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension HTTPField.Name {
    /// Set by tailscale serve: the login of the tailnet user (absent for tagged nodes and Funnel).
    static let tailscaleUserLogin = HTTPField.Name("Tailscale-User-Login")!
    /// Set by tailscale serve on requests that came from the internet through Funnel.
    static let tailscaleFunnelRequest = HTTPField.Name("Tailscale-Funnel-Request")!
    /// The original client address, as a proxy reports it.
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    /// The `Host` the original client asked for.
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    /// The scheme the original client used.
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}

extension String {
    fileprivate var trimmingASCIIWhitespace: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return String(view)
    }
}
