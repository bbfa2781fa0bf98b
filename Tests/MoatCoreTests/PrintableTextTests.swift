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

    @Test("C1 controls, line separators and bidi overrides are removed, so a call cannot be shown reordered")
    func unicodeControls() {
        // The Trojan Source trick: a right-to-left override makes the tail read backwards on screen.
        #expect(PrintableText.strip("rm -rf ~ #\u{202E}txt.exe") == "rm -rf ~ #txt.exe")
        for value: UInt32 in [
            0x80, 0x85, 0x9b, 0x9f, 0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202e, 0x2066, 0x2069,
        ] {
            let scalar = Unicode.Scalar(value)!
            #expect(!PrintableText.isPrintable("x\(Character(scalar))y"), "U+\(String(value, radix: 16))")
            #expect(PrintableText.stripKeepingLines("a\(Character(scalar))\nb") == "a\nb")
        }
        // Neighbours that are ordinary text stay: NBSP, the zero-width joiner inside an emoji, Hebrew.
        #expect(PrintableText.isPrintable("a\u{00A0}b 👩\u{200D}💻 שלום"))
    }

    @Test("excerpt cuts after stripping, with an ellipsis only when cut")
    func excerpt() {
        #expect(PrintableText.excerpt("\u{1b}abcdef", limit: 3) == "abc…")
        #expect(PrintableText.excerpt("abc", limit: 3) == "abc")
    }
}
