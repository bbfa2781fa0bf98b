public import MoatCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Turns a `gateway.host` value into the addresses it stands for.
///
/// An injected function, so the bind-policy tests can make a name resolve to whatever they need
/// without touching DNS.
public struct HostResolver: Sendable {
    public let resolve: @Sendable (String) throws(GatewayError) -> [IPAddress]

    public init(resolve: @escaping @Sendable (String) throws(GatewayError) -> [IPAddress]) {
        self.resolve = resolve
    }

    /// Literal addresses directly; names through `getaddrinfo` (which reads /etc/hosts, then DNS).
    public static let system = HostResolver { (host: String) throws(GatewayError) -> [IPAddress] in
        if let literal = IPAddress(host) {
            return [literal]
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let list else {
            let reason = String(cString: gai_strerror(status))
            throw GatewayError(
                .bindRefused,
                "cannot resolve gateway.host \"\(PrintableText.excerpt(host, limit: 64))\": \(reason); "
                    + "use an IP address such as 127.0.0.1"
            )
        }
        defer { freeaddrinfo(list) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let entry = cursor {
            if let sockaddr = entry.pointee.ai_addr {
                switch Int32(sockaddr.pointee.sa_family) {
                case AF_INET:
                    let value = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                    }
                    addresses.append(.v4(value))
                case AF_INET6:
                    let bytes = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    if let address = IPAddress(bytes: bytes) { addresses.append(address) }
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        var unique: [IPAddress] = []
        for address in addresses where !unique.contains(address) { unique.append(address) }
        return unique
    }
}
