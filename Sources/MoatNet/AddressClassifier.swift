public import MoatCore

/// Decides whether an address is a public destination the model may reach.
///
/// IPv4 is checked against a list of special-purpose ranges (IANA registry, RFC 6890); IPv6 is checked
/// the other way round — only global unicast (2000::/3) can pass at all — so a range we forgot fails
/// closed. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
public enum AddressClassifier {
    /// Addresses that cloud providers serve instance metadata (and credentials) on.
    public static let metadataAddresses: Set<IPAddress> = [
        .v4(0xA9FE_A9FE),  // 169.254.169.254 (AWS, GCP, Azure, …)
        .v4(0x6464_64C8),  // 100.100.100.200 (Alibaba Cloud)
        IPAddress("fd00:ec2::254")!,  // AWS over IPv6
    ]

    /// Whether `address` is a cloud metadata address, directly or as an IPv4-mapped IPv6 address.
    public static func isMetadata(_ address: IPAddress) -> Bool {
        metadataAddresses.contains(address) || address.ipv4Mapped.map { metadataAddresses.contains(.v4($0)) } == true
    }

    /// Why `address` must not be fetched, or nil when it is public.
    public static func refusal(_ address: IPAddress) -> String? {
        if metadataAddresses.contains(address) {
            return "\(address) is a cloud metadata address"
        }
        switch address {
        case .v4(let value):
            return refusal(ipv4: value).map { "\(address) is \($0)" }
        case .v6(let bytes):
            return refusal(ipv6: bytes, address: address)
        }
    }

    private static let ipv4Ranges: [(UInt32, Int, String)] = [
        (0x0000_0000, 8, "in 0.0.0.0/8 (this network)"),
        (0x0A00_0000, 8, "private (10.0.0.0/8)"),
        (0x6440_0000, 10, "shared address space (100.64.0.0/10, CGNAT and tailnets)"),
        (0x7F00_0000, 8, "loopback"),
        (0xA9FE_0000, 16, "link-local (169.254.0.0/16)"),
        (0xAC10_0000, 12, "private (172.16.0.0/12)"),
        (0xC000_0000, 24, "reserved for IETF protocol assignments (192.0.0.0/24)"),
        (0xC000_0200, 24, "documentation (192.0.2.0/24)"),
        (0xC058_6300, 24, "a 6to4 relay anycast address (192.88.99.0/24)"),
        (0xC0A8_0000, 16, "private (192.168.0.0/16)"),
        (0xC612_0000, 15, "benchmarking (198.18.0.0/15)"),
        (0xC633_6400, 24, "documentation (198.51.100.0/24)"),
        (0xCB00_7100, 24, "documentation (203.0.113.0/24)"),
        (0xE000_0000, 4, "multicast (224.0.0.0/4)"),
        (0xFFFF_FFFF, 32, "broadcast"),
        (0xF000_0000, 4, "reserved (240.0.0.0/4)"),
    ]

    static func refusal(ipv4 value: UInt32) -> String? {
        for (base, prefix, reason) in ipv4Ranges {
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)
            if value & mask == base { return reason }
        }
        return nil
    }

    static func refusal(ipv6 bytes: [UInt8], address: IPAddress) -> String? {
        func embedded(_ offset: Int) -> UInt32 {
            bytes[offset..<(offset + 4)].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        }
        func judgeEmbedded(_ v4: UInt32, form: String) -> String? {
            let inner = IPAddress.v4(v4)
            if metadataAddresses.contains(inner) {
                return "\(address) is \(form) of the cloud metadata address \(inner)"
            }
            return refusal(ipv4: v4).map { "\(address) is \(form) of \(inner), which is \($0)" }
        }
        if address.isUnspecified { return "\(address) is the unspecified address" }
        if address.isLoopback && address.ipv4Mapped == nil { return "\(address) is loopback" }
        if let mapped = address.ipv4Mapped {
            return judgeEmbedded(mapped, form: "the IPv4-mapped form")
        }
        // 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052): the real destination is the last 32 bits.
        if bytes[0..<12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0][...] {
            return judgeEmbedded(embedded(12), form: "the NAT64 form")
        }
        if bytes[0] == 0x20 && bytes[1] == 0x02 {
            return judgeEmbedded(embedded(2), form: "the 6to4 form")
        }
        if bytes[0] == 0xff { return "\(address) is multicast" }
        if bytes[0] & 0xfe == 0xfc { return "\(address) is unique-local (fc00::/7)" }
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return "\(address) is link-local (fe80::/10)" }
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0xc0 { return "\(address) is site-local (fec0::/10)" }
        if bytes[0] & 0xe0 != 0x20 {
            // ::/96 (IPv4-compatible), 64:ff9b:1::/48 (local NAT64), 100::/64 (discard) and every other
            // range outside global unicast.
            return "\(address) is reserved (outside global unicast 2000::/3)"
        }
        if bytes[0] == 0x20 && bytes[1] == 0x01 {
            if bytes[2] == 0x0d && bytes[3] == 0xb8 { return "\(address) is documentation (2001:db8::/32)" }
            if bytes[2] & 0xfe == 0 {
                return "\(address) is reserved for IETF protocol assignments (2001::/23, includes Teredo)"
            }
        }
        if bytes[0] == 0x3f && bytes[1] == 0xff && bytes[2] & 0xf0 == 0 {
            return "\(address) is documentation (3fff::/20)"
        }
        return nil
    }
}
