/// An IPv4 or IPv6 address parsed from its textual form, with no I/O.
///
/// Parsing is strict: only the canonical dotted-quad form for IPv4 and RFC 4291 text for IPv6 (with an
/// optional embedded dotted quad and an optional `%zone`, which is dropped). Looser legacy forms such as
/// `127.1` or `0x7f000001` are *not* accepted here on purpose: callers that must canonicalize them (the
/// SSRF guard) do so explicitly.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6([UInt8])

    /// Parses an address literal; IPv6 may be given with or without surrounding brackets.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") {
            text = text.dropFirst().dropLast()
        }
        if let v4 = Self.parseIPv4(text) {
            self = .v4(v4)
        } else if let v6 = Self.parseIPv6(text) {
            self = .v6(v6)
        } else {
            return nil
        }
    }

    /// Builds an IPv4 address from 4 bytes or an IPv6 address from 16 bytes.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) })
        case 16:
            self = .v6(bytes)
        default:
            return nil
        }
    }

    /// The address in network byte order (4 or 16 bytes).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
        case .v6(let bytes):
            return bytes
        }
    }

    /// The IPv4 address embedded in an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), if this is one.
    public var ipv4Mapped: UInt32? {
        guard case .v6(let bytes) = self,
            bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return nil }
        return bytes[12...].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
    }

    /// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (`::ffff:127.x.y.z`).
    public var isLoopback: Bool {
        switch self {
        case .v4(let value):
            return value >> 24 == 127
        case .v6(let bytes):
            if let mapped = ipv4Mapped {
                return mapped >> 24 == 127
            }
            return bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
        }
    }

    /// True for the "any" address (0.0.0.0 or ::), which binds every interface.
    public var isUnspecified: Bool {
        bytes.allSatisfy { $0 == 0 }
    }

    public var description: String {
        switch self {
        case .v4:
            return bytes.map(String.init).joined(separator: ".")
        case .v6(let bytes):
            return Self.formatIPv6(bytes)
        }
    }

    // MARK: Parsing

    static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = (value << 8) | octet
        }
        return value
    }

    static func parseIPv6(_ input: Substring) -> [UInt8]? {
        var text = input
        if let percent = text.firstIndex(of: "%") {
            let zone = text[text.index(after: percent)...]
            guard !zone.isEmpty else { return nil }
            text = text[..<percent]
        }
        guard text.contains(":"), text.count <= 45 else { return nil }
        let halves = Self.splitOnDoubleColon(String(text))
        guard let halves else { return nil }

        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var result: [UInt16] = []
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xffff))
                } else {
                    guard (1...4).contains(piece.count), piece.allSatisfy({ $0.isHexDigit && $0.isASCII }),
                        let group = UInt16(piece, radix: 16)
                    else { return nil }
                    result.append(group)
                }
            }
            return result
        }

        var words: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4Tail: false),
                let tail = groups(halves[1], allowIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(halves[0], allowIPv4Tail: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    /// Splits at the one `::` an IPv6 literal may hold; nil when there are two or more.
    static func splitOnDoubleColon(_ text: String) -> [String]? {
        let chars = Array(text)
        var index = 0
        var found: Int?
        while index + 1 < chars.count {
            if chars[index] == ":" && chars[index + 1] == ":" {
                if found != nil { return nil }
                found = index
                index += 2
                if index < chars.count && chars[index] == ":" { return nil }
                continue
            }
            index += 1
        }
        guard let found else { return [text] }
        return [String(chars[..<found]), String(chars[(found + 2)...])]
    }

    /// RFC 5952 text: lower case, the longest run of two or more zero groups shortened to `::`.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let words = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            if words[index] == 0 {
                var end = index
                while end < 8 && words[end] == 0 { end += 1 }
                if end - index > bestLength && end - index >= 2 {
                    bestStart = index
                    bestLength = end - index
                }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(words[$0], radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 {
            return hex(0..<8)
        }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
