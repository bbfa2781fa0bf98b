import Crypto
import Foundation
import MoatCore

/// Random identifiers and the hashes Moat stores instead of them.
///
/// `SystemRandomNumberGenerator` reads the kernel's CSPRNG (getrandom) on Linux.
enum AuthRandom {
    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in generator.next() }
    }

    /// `count` characters uniformly from `alphabet` (rejection sampling: no modulo bias).
    static func string(_ count: Int, alphabet: [UInt8] = base62) -> String {
        var generator = SystemRandomNumberGenerator()
        let limit = UInt8(256 - 256 % alphabet.count)
        var out: [UInt8] = []
        while out.count < count {
            let byte: UInt8 = generator.next()
            if byte < limit || limit == 0 { out.append(alphabet[Int(byte) % alphabet.count]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// base64url without padding (cookie values, setup tokens).
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func sha256Hex(_ text: String) -> String {
        hex(SHA256.hash(data: Data(text.utf8)))
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        Hex.encode(bytes)
    }

    /// Whether the SHA-256 of `text` is `digest`, compared in time that depends only on the lengths
    /// (no hex text, no copies: the check of every request made with an API token).
    static func sha256(of text: String, matches digest: [UInt8]) -> Bool {
        var text = text
        let hash = text.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return hash.withUnsafeBytes { bytes in
            guard bytes.count == digest.count else { return false }
            var difference: UInt8 = 0
            for index in 0..<bytes.count { difference |= bytes[index] ^ digest[index] }
            return difference == 0
        }
    }

    /// Compares two strings in time that depends only on their lengths.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
