public import Crypto
public import MoatCore

/// Long-lived keys kept in ``SecretBytes`` (locked, left out of core dumps), lent to swift-crypto only
/// for one operation at a time.
///
/// swift-crypto's `SymmetricKey` and `Curve25519.Signing.PrivateKey` hold their bytes in ordinary heap
/// memory (wiped when released). Made per operation, those copies live for microseconds instead of for
/// the whole life of `moat serve`.
extension SecretBytes {
    /// Copies `key` into secret memory.
    public convenience init(copying key: SymmetricKey) {
        self.init(count: key.bitCount / 8) { target in
            key.withUnsafeBytes { source in
                if let from = source.baseAddress, let to = target.baseAddress {
                    to.copyMemory(from: from, byteCount: source.count)
                }
            }
        }
    }

    /// Calls `body` with a `SymmetricKey` made from these bytes; the key is released (and wiped by
    /// swift-crypto) when `body` returns.
    public func withSymmetricKey<Result>(_ body: (SymmetricKey) throws -> Result) rethrows -> Result {
        try body(withUnsafeBytes { SymmetricKey(data: $0) })
    }
}
