import Crypto
public import Foundation

/// Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): SHA-1, 6 digits, 30-second steps,
/// which is what every authenticator app implements.
public struct TOTP: Sendable {
    /// Seconds per step.
    public static let period: Int64 = 30
    /// Digits per code.
    public static let digits = 6

    /// The HMAC behind the codes. Moat uses SHA-1 (what apps support); the others exist so RFC 6238's
    /// Appendix B vectors can be checked in full.
    public enum Algorithm: Sendable {
        case sha1, sha256, sha512
    }

    private let secret: [UInt8]
    private let algorithm: Algorithm

    public init(secret: [UInt8], algorithm: Algorithm = .sha1) {
        self.secret = secret
        self.algorithm = algorithm
    }

    /// A new 160-bit secret from the system CSPRNG (RFC 4226 recommends 160 bits).
    public static func generateSecret() -> [UInt8] { AuthRandom.bytes(20) }

    /// The step a moment falls in: floor(unix time / 30).
    public static func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(period)).rounded(.down))
    }

    /// The code of `step`, zero-padded to `digits`.
    public func code(atStep step: Int64, digits: Int = TOTP.digits) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        let key = SymmetricKey(data: secret)
        let mac: [UInt8]
        switch algorithm {
        case .sha1: mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
        case .sha256: mac = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha512: mac = Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
        // RFC 4226 section 5.3: dynamic truncation.
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary =
            UInt32(mac[offset] & 0x7f) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: max(0, digits - value.count)) + value
    }

    /// The step `code` belongs to, within `window` steps either side of `date`, considering only steps
    /// after `lastUsedStep` (a code is accepted once: the caller stores the returned step). Input must
    /// be exactly ``digits`` ASCII digits (spaces are ignored); every candidate is compared in constant time.
    public func match(_ code: String, at date: Date, window: Int = 1, after lastUsedStep: Int64) -> Int64? {
        let typed = Array(code.utf8.filter { $0 != UInt8(ascii: " ") })
        guard typed.count == Self.digits, typed.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let now = Self.step(at: date)
        var found: Int64?
        for step in (now - Int64(window))...(now + Int64(window)) where step > lastUsedStep {
            let expected = Array(self.code(atStep: step).utf8)
            var difference: UInt8 = 0
            for index in 0..<typed.count { difference |= typed[index] ^ expected[index] }
            if difference == 0 && found == nil { found = step }
        }
        return found
    }

    /// The `otpauth://totp/…` URI apps read from the QR code.
    public static func provisioningURI(secret: [UInt8], account: String, issuer: String = "Moat") -> String {
        let label = percentEncoded(issuer) + ":" + percentEncoded(account)
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(percentEncoded(issuer))"
            + "&algorithm=SHA1&digits=\(digits)&period=\(period)"
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
