public import MoatCore

/// A URL the model chose, parsed by one strict parser so that what is checked is exactly what is fetched.
///
/// Only `http` and `https` parse. Hosts are percent-decoded, lower-cased and stripped of one trailing
/// dot; numeric hosts in any legacy form (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`) become the
/// address they stand for, as browsers and `inet_aton` would read them, so the address check sees the
/// real destination. Anything ambiguous — a backslash, whitespace, control characters, a non-ASCII host
/// (use its `xn--` form) — is refused rather than guessed at.
public struct FetchURL: Sendable, Hashable, CustomStringConvertible {
    /// What the host part names.
    public enum Host: Sendable, Hashable, CustomStringConvertible {
        case address(IPAddress)
        case name(String)

        public var description: String {
            switch self {
            case .address(.v6(let bytes)): return "[\(IPAddress.v6(bytes))]"
            case .address(let address): return "\(address)"
            case .name(let name): return name
            }
        }
    }

    /// `http` or `https`.
    public let scheme: String
    /// The part before `@` in the authority, when there is one (the guard refuses such URLs).
    public let userInfo: String?
    public let host: Host
    /// The port, the scheme's default when none was written.
    public let port: Int
    /// The path and query, at least `/`; the fragment is dropped (it is never sent).
    public let pathAndQuery: String

    /// The default port of `scheme`.
    public static func defaultPort(_ scheme: String) -> Int { scheme == "https" ? 443 : 80 }

    /// The canonical text: scheme, host, a non-default port, path and query.
    public var description: String {
        let portText = port == Self.defaultPort(scheme) ? "" : ":\(port)"
        return "\(scheme)://\(host)\(portText)\(pathAndQuery)"
    }

    /// The `Host` header value for a request to this URL.
    /// `scheme://host[:port]`, for messages: never the path or query, which may hold a caller's values.
    public var origin: String { "\(scheme)://\(hostHeader)" }

    public var hostHeader: String {
        port == Self.defaultPort(scheme) ? host.description : "\(host):\(port)"
    }

    /// Parses `text`, or explains why it is refused.
    public static func parse(_ text: String) -> Result<FetchURL, NetError> {
        func refuse(_ reason: String) -> Result<FetchURL, NetError> { .failure(NetError(.urlRefused, reason)) }
        guard text.utf8.count <= 8192 else { return refuse("the URL is longer than 8192 bytes") }
        guard let colon = text.firstIndex(of: ":") else { return refuse("not an absolute URL (no scheme)") }
        let scheme = text[..<colon].lowercased()
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return refuse("not an absolute URL (no scheme)") }
        guard scheme == "http" || scheme == "https" else {
            return refuse("scheme \(NetError.printable(scheme, limit: 20)) is not allowed (only http and https)")
        }
        guard
            !text.unicodeScalars.contains(where: {
                $0.value <= 0x20 || $0.value == 0x7f || $0 == "\\" || (0x80...0x9f).contains($0.value)
            })
        else { return refuse("the URL contains whitespace, a control character or a backslash") }
        var rest = text[text.index(after: colon)...]
        guard rest.hasPrefix("//") else { return refuse("an http URL must have // and a host") }
        rest = rest.dropFirst(2)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var pathAndQuery = String(rest[authorityEnd...])
        if let hash = pathAndQuery.firstIndex(of: "#") { pathAndQuery = String(pathAndQuery[..<hash]) }
        if pathAndQuery.isEmpty || pathAndQuery.hasPrefix("?") { pathAndQuery = "/" + pathAndQuery }

        var userInfo: String?
        if let at = authority.lastIndex(of: "@") {
            userInfo = String(authority[..<at])
            authority = authority[authority.index(after: at)...]
        }
        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return refuse("unterminated [IPv6] host") }
            hostText = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return refuse("unexpected text after the [IPv6] host") }
                portText = after.dropFirst()
            }
        } else if let portColon = authority.lastIndex(of: ":") {
            hostText = authority[..<portColon]
            portText = authority[authority.index(after: portColon)...]
        } else {
            hostText = authority
        }
        var port = defaultPort(scheme)
        if let portText, !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(portText),
                (1...65535).contains(number)
            else { return refuse("the port must be a number from 1 to 65535") }
            port = number
        }
        switch parseHost(hostText) {
        case .success(let host):
            return .success(
                FetchURL(scheme: scheme, userInfo: userInfo, host: host, port: port, pathAndQuery: pathAndQuery)
            )
        case .failure(let error):
            return .failure(error)
        }
    }

    /// Resolves a redirect's `Location` against this URL (absolute, scheme-relative, absolute-path,
    /// query-only or relative-path references; RFC 3986 section 5.2, without dot-segment removal, which
    /// the server sees either way).
    public func resolve(_ location: String) -> String {
        if let colon = location.firstIndex(of: ":"),
            location[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
            !location[..<colon].isEmpty
        {
            return location
        }
        if location.hasPrefix("//") { return "\(scheme):\(location)" }
        if location.hasPrefix("/") { return origin + location }
        let path = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        if location.hasPrefix("?") { return origin + path + location }
        if location.isEmpty { return origin + pathAndQuery }
        let directory = path.lastIndex(of: "/").map { path[...$0] } ?? "/"
        return origin + directory + location
    }

    static func parseHost(_ raw: Substring) -> Result<Host, NetError> {
        func refuse(_ reason: String) -> Result<Host, NetError> { .failure(NetError(.urlRefused, reason)) }
        if raw.hasPrefix("[") {
            guard raw.hasSuffix("]"), !raw.contains("%"), let address = IPAddress(String(raw)),
                case .v6 = address
            else { return refuse("the [IPv6] host is not a valid IPv6 address") }
            return .success(.address(address))
        }
        guard let decoded = percentDecode(raw) else { return refuse("the host has a bad %-escape") }
        guard !decoded.isEmpty else { return refuse("the URL has no host") }
        guard decoded.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            return refuse("the host is not ASCII; write an international name in its xn-- form")
        }
        var host = decoded.lowercased()
        let forbidden = Set(" #%/:<>?@[\\]^|\"`{}")
        guard !host.contains(where: { forbidden.contains($0) }) else {
            return refuse("the host contains a character hosts may not contain")
        }
        if let numeric = numericHost(host) {
            switch numeric {
            case .some(let value): return .success(.address(.v4(value)))
            case .none: return refuse("the host looks like a number but is not a valid IPv4 address")
            }
        }
        if host.hasSuffix(".") { host.removeLast() }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard host.utf8.count <= 253, !labels.isEmpty,
            labels.allSatisfy({ label in
                (1...63).contains(label.count)
                    && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            })
        else { return refuse("the host is not a valid host name") }
        return .success(.name(host))
    }

    /// The WHATWG URL IPv4 parser: nil when `host` does not end in a number (it is a name);
    /// `.some(nil)` when it does but is not a valid address (refused, as browsers refuse it).
    static func numericHost(_ host: String) -> UInt32?? {
        var parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.last == "" && parts.count > 1 { parts.removeLast() }
        guard let last = parts.last else { return nil }
        let lastIsNumber =
            (!last.isEmpty && last.allSatisfy { $0.isASCII && $0.isNumber })
            || ((last.hasPrefix("0x") || last.hasPrefix("0X")) && last.dropFirst(2).allSatisfy(\.isHexDigit))
        guard lastIsNumber else { return nil }
        guard parts.count <= 4 else { return .some(nil) }
        var numbers: [UInt64] = []
        for part in parts {
            guard !part.isEmpty else { return .some(nil) }
            var digits = part
            var radix = 10
            if part.hasPrefix("0x") || part.hasPrefix("0X") {
                digits = part.dropFirst(2)
                radix = 16
            } else if part.count > 1 && part.hasPrefix("0") {
                digits = part.dropFirst()
                radix = 8
            }
            if digits.isEmpty {
                numbers.append(0)
                continue
            }
            guard digits.count <= 12, let value = UInt64(digits, radix: radix) else { return .some(nil) }
            numbers.append(value)
        }
        for number in numbers.dropLast() where number > 255 { return .some(nil) }
        let lastLimit = UInt64(1) << (8 * UInt64(5 - numbers.count))
        guard numbers.last! < lastLimit else { return .some(nil) }
        var value = numbers.last!
        for (index, number) in numbers.dropLast().enumerated() {
            value += number << (8 * UInt64(3 - index))
        }
        return .some(UInt32(value))
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
