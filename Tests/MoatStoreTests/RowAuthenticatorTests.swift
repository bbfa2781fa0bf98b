import Crypto
import MoatStore
import Testing

/// A row of no real table, for the authenticator's own guards.
struct TestRow: AuthenticatedRow {
    static let macTable = "t"
    let macFields: [String]
}

@Suite struct RowAuthenticatorTests {
    /// The key the pinned MACs of every module's records are computed with: bytes 0 to 31.
    static let pinnedKey = SymmetricKey(data: (0..<32).map { UInt8($0) })

    @Test("the MAC changes with every field, and truncated, extended or flipped MACs fail")
    func macGuards() {
        let authenticator = RowAuthenticator(key: .init(size: .bits256))
        let mac = authenticator.mac(TestRow(macFields: ["ab", "c"]))
        #expect(authenticator.verify(mac, of: TestRow(macFields: ["ab", "c"])))
        #expect(!authenticator.verify(mac, of: TestRow(macFields: ["a", "bc"])))
        #expect(!authenticator.verify(mac, of: OtherTable(macFields: ["ab", "c"])))
        #expect(!authenticator.verify(String(mac.dropLast()), of: TestRow(macFields: ["ab", "c"])))
        #expect(!authenticator.verify(mac + "0", of: TestRow(macFields: ["ab", "c"])))
        #expect(!authenticator.verify("", of: TestRow(macFields: ["ab", "c"])))
        let flipped = (mac.first == "0" ? "1" : "0") + mac.dropFirst()
        #expect(!authenticator.verify(flipped, of: TestRow(macFields: ["ab", "c"])))
        #expect(!RowAuthenticator(key: .init(size: .bits256)).verify(mac, of: TestRow(macFields: ["ab", "c"])))
    }

    @Test("the MAC of a known row under a known key is pinned: rows already in moat.db keep verifying")
    func pinnedEncoding() {
        // HMAC-SHA256 over "moat-policy-row-v1" then the table and each field, each after its length as a
        // big-endian UInt64 (computed independently of this code).
        let mac = RowAuthenticator(key: Self.pinnedKey).mac(TestRow(macFields: ["ab", "c"]))
        #expect(mac == "690c823a96b57f524b6c83f2976465fb16f6f40d59b2bb066e8d484334974221")
    }

    struct OtherTable: AuthenticatedRow {
        static let macTable = "u"
        let macFields: [String]
    }
}
