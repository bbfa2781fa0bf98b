public import Crypto
import Foundation
public import MoatCore

/// A row that grants power (a trust change, an approval, a contact, the owner, a session, a token…),
/// stored with an HMAC over a fixed list of its fields.
///
/// The list is declared once, by the record, and ``RowAuthenticator`` uses that one declaration both when
/// the row is written and when it is read back: the two can never disagree. A released list is never
/// changed (rows already on disk carry MACs over it); a new field goes into a new table or a new record.
public protocol AuthenticatedRow {
    /// The table the row lives in; the MAC covers it, so a row cannot be moved to another table.
    static var macTable: String { get }
    /// The fields the MAC covers, in their fixed order, as text.
    var macFields: [String] { get }
}

/// Computes and checks the HMAC-SHA256 that makes a row tamper-proof.
///
/// The MAC covers a table tag and the row's meaningful fields, each length-prefixed so field boundaries
/// cannot shift (`"ab","c"` and `"a","bc"` differ). The key lives in the vault, never in `moat.db`, so
/// someone who can write the database but not read the vault cannot make a row that verifies. Each
/// module keys its own authenticator (`PolicyKeyring`, the owner authority).
public struct RowAuthenticator: Sendable {
    /// In secret memory for the life of the process; swift-crypto gets a copy per MAC only.
    private let key: SecretBytes

    /// Uses `key` directly (tests).
    public init(key: SymmetricKey) {
        self.key = key.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// Uses the key in `secret` (a vault entry).
    public init(secret: SecretBytes) {
        self.key = secret
    }

    /// The hex MAC of `row`.
    public func mac(_ row: some AuthenticatedRow) -> String {
        withKey { key in
            var hmac = HMAC<SHA256>(key: key)
            hmac.update(data: Self.encode(type(of: row).macTable, row.macFields))
            return Hex.encode(hmac.finalize())
        }
    }

    /// Whether `mac` is the MAC of `row` (compared in constant time).
    public func verify(_ mac: String, of row: some AuthenticatedRow) -> Bool {
        guard mac.utf8.count == 64, let bytes = Self.hexBytes(mac) else { return false }
        let message = Self.encode(type(of: row).macTable, row.macFields)
        return withKey { key in HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: message, using: key) }
    }

    /// A `SymmetricKey` copy of the key for one operation (wiped by swift-crypto when released).
    private func withKey<Result>(_ body: (SymmetricKey) -> Result) -> Result {
        body(key.withUnsafeBytes { SymmetricKey(data: $0) })
    }

    /// The bytes the MAC covers. Fixed forever: every stored row's MAC is over exactly this encoding.
    static func encode(_ table: String, _ fields: [String]) -> Data {
        var data = Data("moat-policy-row-v1".utf8)
        for field in [table] + fields {
            let bytes = Array(field.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: bytes)
        }
        return data
    }

    static func hexBytes(_ text: String) -> [UInt8]? { Hex.decode(text) }
}
