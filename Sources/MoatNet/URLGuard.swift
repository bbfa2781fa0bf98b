public import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
// The socket structs' members below can be attributed to CNIOLinux's module (it includes the same libc
// headers) depending on the order clang builds its modules; importing it keeps the lookup valid either way.
#if canImport(CNIOLinux)
    internal import CNIOLinux
#endif

/// The owner's SSRF settings from `config.yaml` (`policy.ssrf`).
public struct SSRFSettings: Sendable, Equatable {
    /// Hosts (names or IP literals, `*.suffix` for every subdomain) that may resolve to private addresses,
    /// e.g. a home server. Cloud metadata addresses stay refused even for these. An entry with a port
    /// (`homeassistant.lan:8123`, `[fd00::5]:8080`) is the narrowest exception: that host on that port
    /// only, which needs no `allowPorts` entry (and opens the port for no other host).
    public var allowHosts: [String]
    /// Hosts (same forms) that are always refused.
    public var blockHosts: [String]
    /// Ports allowed besides 80 and 443.
    public var allowPorts: [Int]

    public init(allowHosts: [String] = [], blockHosts: [String] = [], allowPorts: [Int] = []) {
        self.allowHosts = allowHosts
        self.blockHosts = blockHosts
        self.allowPorts = allowPorts
    }

    /// Whether `entry` is a valid host list entry (a name, an IP literal or `*.suffix`), or, with
    /// `withPort`, such a host followed by `:port` (an IPv6 literal in brackets).
    public static func isValidHostEntry(_ entry: String, withPort: Bool = false) -> Bool {
        if withPort, let pinned = URLGuard.splitPort(entry) { return isValidHostEntry(pinned.host) }
        let name = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
        if IPAddress(name) != nil { return !entry.hasPrefix("*.") }
        guard case .success(.name) = FetchURL.parseHost(Substring(name)) else { return false }
        return true
    }
}

/// Turns a host name into its addresses; injected so tests never touch DNS.
public struct AddressResolver: Sendable {
    public let resolve: @Sendable (String) async throws -> [IPAddress]

    public init(resolve: @escaping @Sendable (String) async throws -> [IPAddress]) {
        self.resolve = resolve
    }

    /// `getaddrinfo` (which reads /etc/hosts, then DNS).
    public static let system = AddressResolver { host in
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let list else { return [] }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if let sockaddr = entry.pointee.ai_addr {
                if Int32(sockaddr.pointee.sa_family) == AF_INET {
                    let value = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                    }
                    addresses.append(.v4(value))
                } else if Int32(sockaddr.pointee.sa_family) == AF_INET6 {
                    let bytes = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    if let address = IPAddress(bytes: bytes), !addresses.contains(address) {
                        addresses.append(address)
                    }
                }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }
}

/// A URL that passed the guard, with the addresses that were checked.
///
/// A transport must connect to ``address`` (never look the name up again: that second lookup is what
/// DNS rebinding exploits) and send ``FetchURL/hostHeader`` as `Host` and the name as TLS SNI.
public struct CheckedURL: Sendable, Hashable {
    public let url: FetchURL
    /// Every address the host resolved to; all of them passed.
    public let addresses: [IPAddress]
    /// The address to connect to.
    public var address: IPAddress { addresses[0] }
}

/// The answer of the SSRF guard.
public enum URLVerdict: Sendable, Hashable {
    case allow(CheckedURL)
    case deny(String)
}

/// Decides whether a URL the model chose may be fetched (the SSRF guard).
///
/// Rules, in order: http or https only; a port of 80, 443 or one the owner allowed; not on the owner's
/// blocklist; not a name that is private by definition (`localhost`, `*.localhost`, `*.internal`,
/// `*.local`, `*.home.arpa`, cloud metadata names) unless allowlisted; the name resolves, and
/// *every* address it resolves to is public (one private answer refuses the whole name); no
/// `user@` part. A host on the owner's allowlist may resolve to private addresses, never to a cloud
/// metadata address. The guard fails closed: a lookup that fails or returns nothing refuses.
public struct URLGuard: Sendable {
    public let settings: SSRFSettings
    public let resolver: AddressResolver

    public init(settings: SSRFSettings = SSRFSettings(), resolver: AddressResolver = .system) {
        self.settings = settings
        self.resolver = resolver
    }

    /// Names refused without a lookup: they are private by definition.
    static let privateNames: [(String, String)] = [
        ("localhost", "localhost is this machine"),
        ("*.localhost", "*.localhost names this machine (RFC 6761)"),
        ("metadata.google.internal", "metadata.google.internal is a cloud metadata service"),
        ("metadata.goog", "metadata.goog is a cloud metadata service"),
        ("*.internal", ".internal names are private by definition"),
        ("*.local", ".local names are on the local network (mDNS)"),
        ("*.home.arpa", ".home.arpa names are on a home network (RFC 8375)"),
    ]

    /// Checks `text`.
    public func check(_ text: String) async -> URLVerdict {
        let url: FetchURL
        switch FetchURL.parse(text) {
        case .success(let parsed): url = parsed
        case .failure(let error): return .deny(error.message)
        }
        return await check(url)
    }

    /// Checks a parsed URL.
    public func check(_ url: FetchURL) async -> URLVerdict {
        let hostKey: String
        switch url.host {
        case .address(let address): hostKey = address.description
        case .name(let name): hostKey = name
        }
        // An explicit `host:port` exception allows this host on this port only.
        let pinned = settings.allowHosts.contains { entry in
            Self.splitPort(entry).map { $0.port == url.port && Self.matches(hostKey, [$0.host]) } ?? false
        }
        if url.port != 80 && url.port != 443 && !settings.allowPorts.contains(url.port) && !pinned {
            return .deny(
                "port \(url.port) is not allowed (80 and 443, or add it to policy.ssrf.allow_ports, or allow "
                    + "the host with its port, host:\(url.port), in policy.ssrf.allow_hosts)")
        }
        if Self.matches(hostKey, settings.blockHosts) {
            return .deny("\(hostKey) is on the owner's blocklist (policy.ssrf.block_hosts)")
        }
        let allowlisted = pinned || Self.matches(hostKey, settings.allowHosts)
        let addresses: [IPAddress]
        switch url.host {
        case .address(let address):
            addresses = [address]
        case .name(let name):
            if !allowlisted, let reason = Self.privateNames.first(where: { Self.matches(name, [$0.0]) })?.1 {
                return .deny(reason)
            }
            let resolved = (try? await resolver.resolve(name)) ?? []
            guard !resolved.isEmpty else {
                return .deny("\(name) does not resolve (a guard that cannot check refuses)")
            }
            addresses = resolved
        }
        for address in addresses {
            if allowlisted {
                if AddressClassifier.isMetadata(address) {
                    return .deny("\(address) is a cloud metadata address (refused even for allowlisted hosts)")
                }
                continue
            }
            if let reason = AddressClassifier.refusal(address) {
                if case .name(let name) = url.host {
                    return .deny("\(name) resolves to \(address): \(reason)")
                }
                return .deny(reason)
            }
        }
        if url.userInfo != nil {
            return .deny("credentials in the URL (user@host) are refused: they hide the real host")
        }
        return .allow(CheckedURL(url: url, addresses: addresses))
    }

    /// The host and port of a `host:port` entry (`[v6]:port` for an IPv6 literal); nil for a bare host.
    static func splitPort(_ entry: String) -> (host: String, port: Int)? {
        guard let colon = entry.lastIndex(of: ":") else { return nil }
        let portText = entry[entry.index(after: colon)...]
        guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        var host = entry[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            return nil  // a bare IPv6 literal, not host:port
        }
        return (String(host), port)
    }

    static func matches(_ host: String, _ entries: [String]) -> Bool {
        let host = host.lowercased()
        for entry in entries {
            let entry = entry.lowercased()
            if entry.hasPrefix("*.") {
                if host.hasSuffix(entry.dropFirst(1)) { return true }
            } else if let literal = IPAddress(entry), literal.description == host {
                return true
            } else if entry == host {
                return true
            }
        }
        return false
    }
}
