import Foundation
import MoatCore
import Testing

@Suite struct JSONTextTests {
    /// The escaping rule, scalar by scalar, as RFC 8785 states it.
    static func reference(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    @Test("every character below U+0080 and a spread of others is escaped as RFC 8785 says, and parses back")
    func everyASCII() throws {
        var text = ""
        for value in 0..<0x80 { text.unicodeScalars.append(Unicode.Scalar(value)!) }
        text += "\u{80}\u{7FF}\u{800}\u{2028}\u{2029}é😀\u{FEFF}\u{FFFF}\u{10FFFF}e\u{301}\r\n"
        let quoted = JSONText.quote(text)
        #expect(quoted == Self.reference(text))
        #expect(quoted.hasPrefix("\"\\u0000\\u0001"))
        #expect(quoted.contains("\\b\\t\\n\\u000b\\f\\r\\u000e"))
        let parsed = try JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed)
        #expect(parsed as? String == text)
        var bytes = Array("x".utf8)
        JSONText.appendQuoted(text, to: &bytes)
        #expect(bytes == Array("x".utf8) + Array(quoted.utf8))
    }

    @Test("on 5,000 random strings the byte writer agrees with the scalar rule")
    func randomAgree() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "\"", "\\", "\u{0}", "\u{1f}", "\n", "é", "😀", "\u{7f}", "/", "\u{2028}", " ", "\t"]
        for _ in 0..<5000 {
            let text = (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                pieces.randomElement(using: &generator)!
            }.joined()
            #expect(JSONText.quote(text) == Self.reference(text))
        }
    }
}
