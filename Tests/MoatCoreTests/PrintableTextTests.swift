import MoatCore
import Testing

@Suite("PrintableText")
struct PrintableTextTests {
    @Test("control characters and DEL are removed, other text kept")
    func strip() {
        #expect(PrintableText.strip("a\u{1b}[2Jb\r\nc\u{7f}d\tä€") == "a[2Jbcdä€")
        #expect(PrintableText.strip("plain text") == "plain text")
    }

    @Test("isPrintable rejects every C0 control and DEL, accepts space and non-ASCII")
    func printable() {
        for value in UInt8(0)..<0x20 {
            #expect(!PrintableText.isPrintable("x\(Character(Unicode.Scalar(value)))y"))
        }
        #expect(!PrintableText.isPrintable("x\u{7f}"))
        #expect(PrintableText.isPrintable(" ~ä漢"))
    }

    @Test("excerpt cuts after stripping, with an ellipsis only when cut")
    func excerpt() {
        #expect(PrintableText.excerpt("\u{1b}abcdef", limit: 3) == "abc…")
        #expect(PrintableText.excerpt("abc", limit: 3) == "abc")
    }
}
