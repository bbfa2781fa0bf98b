import Foundation
import MoatHTTP
import Testing

@testable import MoatConsole

/// ``FlatJSON`` writes exactly what `JSONEncoder` (through ``APIError/jsonData(_:)``) writes for the same
/// flat body: the hot-path writer of `GET /api/auth/session` cannot drift from every other answer.
@Suite("Flat JSON writer")
struct FlatJSONTests {
    /// Every ASCII byte (controls, quote, backslash, slash, DEL), non-ASCII letters, the JavaScript line
    /// separators, an emoji, and the empty string.
    static let hostileTexts: [String] = [
        String(String.UnicodeScalarView((0..<0x80).map { Unicode.Scalar(UInt8($0)) })),
        "é\u{2028}\u{2029}😀\u{7F}", "", "a\"b\\c/d</script>", "line\nbreak\r\ttab\u{8}\u{C}",
    ]

    @Test(
        "a session body with every field set, and with hostile text in each, is written byte for byte as the encoder writes it"
    )
    func sessionBodiesMatchTheEncoder() {
        for text in Self.hostileTexts {
            for totp in [true, false] {
                let session = OwnerAPI.Session(
                    via: text, scope: "read", username: text, totpEnabled: totp, csrfToken: text, expiresAt: text)
                #expect(session.flat.bytes == Array(APIError.jsonData(session)))
            }
        }
    }

    @Test("a field left nil is left out, as the encoder leaves it out")
    func nilFieldsAreLeftOut() {
        var session = OwnerAPI.Session(via: "token", scope: "read")
        #expect(session.flat.bytes == Array(APIError.jsonData(session)))
        #expect(String(decoding: session.flat.bytes, as: UTF8.self) == #"{"scope":"read","via":"token"}"#)
        session.username = "owner"
        session.totpEnabled = false
        #expect(session.flat.bytes == Array(APIError.jsonData(session)))
    }

    @Test("integers and keys out of order are written as the encoder writes a dictionary of them, keys sorted")
    func integersAndKeyOrder() throws {
        var flat = FlatJSON()
        flat.set("zeta", .int(-42))
        flat.set("alpha", .int(Int.max))
        flat.set("Beta", .bool(true))
        flat.set("gone", nil)
        let expected = APIError.jsonData(["zeta": AnyEncodable.int(-42), "alpha": .int(Int.max), "Beta": .bool(true)])
        #expect(flat.bytes == Array(expected))
        let decoded = try JSONSerialization.jsonObject(with: Data(flat.bytes)) as? [String: Any]
        #expect(decoded?["gone"] == nil)
        #expect(decoded?.count == 3)
    }

    enum AnyEncodable: Encodable {
        case int(Int)
        case bool(Bool)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .int(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            }
        }
    }
}
