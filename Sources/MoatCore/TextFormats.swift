#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// JSON text, written by hand where a stable byte-for-byte form matters (the audit hash, log lines).
public enum JSONText {
    /// A JSON string literal escaped as RFC 8785 does: `\"`, `\\`, `\b \f \n \r \t`, other characters
    /// below U+0020 as `\u00xx`, everything else literal UTF-8. Log lines use it so a control character
    /// in a request path cannot forge a terminal or a second line.
    public static func quote(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// ``quote(_:)`` written onto `bytes`. Byte by byte: in UTF-8 every byte of a character above U+007F
    /// is 0x80 or more, so only ASCII bytes are ever escaped and the rest is copied as it is.
    public static func appendQuoted(_ text: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                bytes += [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), digits[Int(byte >> 4)],
                    digits[Int(byte & 0x0F)],
                ]
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// RFC 3339 timestamps in UTC with milliseconds: `2026-11-23T20:52:00.123Z`. Every stored and logged
/// time uses this one layout, so text order is time order.
public enum UTCTimestamp {
    /// Formats seconds since 1970 (fractions kept to the millisecond, rounded down).
    public static func format(secondsSince1970 seconds: Double) -> String {
        let millis = Int64((seconds * 1000).rounded(.down))
        var whole = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
            + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
            + ".\(pad(Int(millis % 1000), 3))Z"
    }
}

/// Text from outside (a config value, a reason, a stored name, a model's tool call) made safe to show on a
/// terminal or in a message: control characters removed, so it cannot move the cursor, forge a line or
/// reorder what the owner reads before approving it.
///
/// "Control" here is C0 and DEL, the C1 controls (U+0080–U+009F: some terminals take U+009B as CSI), the
/// Unicode line and paragraph separators (U+2028, U+2029: a second line in some viewers), and the
/// bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), with
/// which `rm -rf ~ #‮txt.exe` shows as something else (CVE-2021-42574, "Trojan Source").
public enum PrintableText {
    /// Whether `scalar` is a control character in the sense above.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7f...0x9f, 0x061c, 0x200e, 0x200f, 0x2028...0x202e, 0x2066...0x2069: true
        default: false
        }
    }

    /// Whether `text` has no control characters.
    public static func isPrintable(_ text: some StringProtocol) -> Bool {
        !text.unicodeScalars.contains(where: isControl)
    }

    /// `text` without control characters.
    public static func strip(_ text: some StringProtocol) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { !isControl($0) }))
    }

    /// ``strip(_:)`` but keeping line breaks and tabs: for multi-line text such as a model's reply.
    public static func stripKeepingLines(_ text: some StringProtocol) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { !isControl($0) || $0 == "\n" || $0 == "\t" }))
    }

    /// ``strip(_:)``, and cut to `limit` characters with "…" when longer.
    public static func excerpt(_ text: some StringProtocol, limit: Int) -> String {
        let cleaned = strip(text)
        return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
    }
}

/// Hexadecimal: lower case is the form every digest and MAC in `moat.db` and the audit log is stored in.
public enum Hex {
    /// `bytes` as lower-case hex, two digits per byte.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        String(decoding: digits(bytes, upper: false), as: UTF8.self)
    }

    /// The bytes of lower-case hex `text` (an even number of `0-9a-f` digits); nil for anything else, upper
    /// case included: every hex value Moat stores or checks is written lower case.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 0x30...0x39: digit - 0x30
            case 0x61...0x66: digit - 0x61 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    /// The ASCII hex digits of `bytes`, two per byte, in lower or upper case.
    public static func digits<S: Sequence>(_ bytes: S, upper: Bool) -> [UInt8] where S.Element == UInt8 {
        let letters: UInt8 = upper ? 0x41 : 0x61
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : letters + nibble - 10 }
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0x0f))
        }
        return out
    }
}
