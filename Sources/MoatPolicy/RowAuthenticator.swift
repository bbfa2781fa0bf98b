public import Crypto
import Foundation
public import MoatCore
public import MoatVault

/// Computes and checks the HMAC-SHA256 that makes a policy row tamper-proof.
///
/// The MAC covers a table tag and the row's meaningful fields, each length-prefixed so field boundaries
/// cannot shift (`"ab","c"` and `"a","bc"` differ). The key lives in the vault, never in `moat.db`, so
/// someone who can write the database but not read the vault cannot make a row that verifies.
public struct RowAuthenticator: Sendable {
    /// In secret memory for the life of the process; swift-crypto gets a copy per MAC only.
    private let key: SecretBytes

    /// Uses `key` directly (tests).
    public init(key: SymmetricKey) {
        self.key = SecretBytes(copying: key)
    }

    /// Uses the key in `secret` (``PolicyKeyring``, the owner authority).
    public init(secret: SecretBytes) {
        self.key = secret
    }

    /// The hex MAC of `fields` in `table`.
    public func mac(_ table: String, _ fields: [String]) -> String {
        key.withSymmetricKey { key in
            var hmac = HMAC<SHA256>(key: key)
            hmac.update(data: Self.encode(table, fields))
            return hmac.finalize().map { String(format: "%02x", $0) }.joined()
        }
    }

    /// Whether `mac` is the MAC of `fields` in `table` (compared in constant time).
    public func verify(_ mac: String, _ table: String, _ fields: [String]) -> Bool {
        guard mac.utf8.count == 64, let bytes = Self.hexBytes(mac) else { return false }
        return key.withSymmetricKey { key in
            HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: Self.encode(table, fields), using: key)
        }
    }

    static func encode(_ table: String, _ fields: [String]) -> Data {
        var data = Data("moat-policy-row-v1".utf8)
        for field in [table] + fields {
            let bytes = Array(field.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: bytes)
        }
        return data
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = hexValue(high), let l = hexValue(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// Takes the policy row-MAC key out of the vault, creating it on first use.
///
/// Like the audit keys it is an ordinary vault entry whose policy allows no tool and no host, so
/// `{{secret:…}}` can never send it anywhere and rekey, backup and the seal cover it.
public enum PolicyKeyring {
    /// The vault entry holding the 32-byte HMAC key.
    public static let macKeyName = "MOAT_POLICY_MAC_KEY"

    /// The authenticator keyed from `vault`, generating and storing the key when it is missing.
    public static func authenticator(from vault: UnlockedVault) throws -> RowAuthenticator {
        RowAuthenticator(secret: try vault.internalKey(named: macKeyName))
    }
}
