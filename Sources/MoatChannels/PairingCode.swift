import MoatCore
import MoatStore

/// A pairing or owner-binding code: 8 characters of Crockford's base32 (40 bits), shown as `ABCD-EFGH`.
///
/// The code is never stored. It is the first 40 bits of an HMAC, under the channels' vault key, of the
/// code row's id (128 bits from the system CSPRNG): unpredictable without the vault, recomputable by Moat
/// alone, so the same pending code can be sent again and a database-only reader learns nothing.
public enum PairingCode {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The code of the row `id`.
    static func derive(id: String, authenticator: RowAuthenticator) -> String {
        let hex = authenticator.mac(Seed(id: id))
        let bytes = Hex.decode(String(hex.prefix(10))) ?? []
        var value: UInt64 = 0
        for byte in bytes { value = value << 8 | UInt64(byte) }
        return String(
            decoding: (0..<8).reversed().map { alphabet[Int((value >> (UInt64($0) * 5)) & 31)] }, as: UTF8.self)
    }

    /// `ABCDEFGH` as the owner reads it: `ABCD-EFGH`.
    public static func display(_ code: String) -> String {
        String(code.prefix(4)) + "-" + String(code.dropFirst(4))
    }

    /// What someone typed, in canonical form: upper case, without `-` and spaces, with Crockford's
    /// look-alikes mapped (`O` → `0`, `I`/`L` → `1`); nil unless it is 8 characters of the alphabet.
    public static func normalize(_ typed: String) -> String? {
        guard typed.utf8.count <= 32 else { return nil }
        var result: [UInt8] = []
        for byte in typed.uppercased().utf8 {
            switch byte {
            case UInt8(ascii: "-"), UInt8(ascii: " "): continue
            case UInt8(ascii: "O"): result.append(UInt8(ascii: "0"))
            case UInt8(ascii: "I"), UInt8(ascii: "L"): result.append(UInt8(ascii: "1"))
            default:
                guard alphabet.contains(byte) else { return nil }
                result.append(byte)
            }
        }
        return result.count == 8 ? String(decoding: result, as: UTF8.self) : nil
    }

    /// Whether two canonical codes are equal, in time independent of where they differ.
    static func matches(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8)
        let b = Array(right.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// 128 random bits from the system CSPRNG, as hex: a code row's id.
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// What the code is the MAC of (its own table tag, so it is never a row MAC of anything stored).
    struct Seed: AuthenticatedRow {
        static let macTable = "channel_code_seed"
        let id: String
        var macFields: [String] { [id] }
    }
}
