import Foundation

/// Turns text into the form the injection flagger matches on, and reports what it had to undo.
///
/// Steps: NFKC (full-width and styled letters become plain ones), removal of invisible format
/// characters (zero-width spaces and joiners, word joiner, soft hyphen, BOM, Unicode tag characters,
/// supplementary variation selectors) and bidi controls, folding of Cyrillic and Greek letters that look
/// like Latin ones onto those Latin letters, lower-casing, removal of accents, and collapsing runs of
/// whitespace. Matching on the result means an attacker cannot dodge a phrase with `ign\u{200B}ore`, a
/// Cyrillic `о` or `ｉｇｎｏｒｅ`. Tag characters (U+E0020–U+E007E) spell ASCII invisibly; what they
/// spell is kept apart so the flagger can read it.
public enum TextNormalizer {
    /// What normalization found; each is a reason to flag on its own.
    public struct Findings: Sendable, Equatable {
        /// Zero-width or other invisible characters inside words (emoji joiners excluded).
        public var hiddenCharacters = 0
        /// Bidi override, embedding or isolate controls (they can reorder what the reader sees).
        public var bidiControls = 0
        /// Words mixing Latin letters with Cyrillic or Greek look-alikes.
        public var mixedScriptWords = 0
        /// Unicode tag characters outside an emoji flag sequence, and supplementary variation selectors:
        /// both can carry text no reader sees.
        public var invisibleCarriers = 0
    }

    /// The views of one text the flagger matches on.
    struct Views {
        /// Homoglyphs folded to Latin, lower-cased, accents removed: for Latin-script patterns.
        var folded: String
        /// Lower-cased without homoglyph folding: for Cyrillic and Chinese patterns.
        var plain: String
        /// The ASCII spelled by tag characters, if any.
        var tagged: String
        var findings: Findings
    }

    static let invisible: Set<UInt32> = [
        0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0x2061, 0x2062, 0x2063, 0x2064,
    ]
    static let bidi: Set<UInt32> = [
        0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C,
    ]

    /// Cyrillic and Greek letters that render like Latin ones (after lower-casing).
    static let homoglyphs: [Character: Character] = [
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h",
        "ԛ": "q", "ԝ": "w", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
        "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѵ": "v", "ɩ": "i",
    ]

    /// The normalized text and what was found on the way.
    public static func normalize(_ text: String) -> (text: String, findings: Findings) {
        let views = views(of: text)
        return (views.folded, views.findings)
    }

    static func views(of text: String) -> Views {
        if let ascii = asciiView(of: text) {
            return Views(folded: ascii, plain: ascii, tagged: "", findings: Findings())
        }
        return unicodeViews(of: text)
    }

    /// ``views(of:)`` for any text.
    static func unicodeViews(of text: String) -> Views {
        var findings = Findings()
        let compatible = text.precomposedStringWithCompatibilityMapping
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(compatible.unicodeScalars.count)
        var tagged = String.UnicodeScalarView()
        var inEmojiFlag = false
        let all = Array(compatible.unicodeScalars)
        for (index, scalar) in all.enumerated() {
            if (0xE0000...0xE007F).contains(scalar.value) {
                // 🏴 followed by tags is a subdivision flag (England, Scotland, Wales); any other tag run is hidden text.
                if !inEmojiFlag {
                    findings.invisibleCarriers += 1
                    if let ascii = Unicode.Scalar(scalar.value - 0xE0000), (0x20...0x7E).contains(ascii.value) {
                        tagged.append(ascii)
                    }
                }
                if scalar.value == 0xE007F { inEmojiFlag = false }
                continue
            }
            inEmojiFlag = scalar.value == 0x1F3F4
            if (0xE0100...0xE01EF).contains(scalar.value) {
                findings.invisibleCarriers += 1
                continue
            }
            if bidi.contains(scalar.value) {
                findings.bidiControls += 1
                continue
            }
            if invisible.contains(scalar.value) {
                // A joiner between emoji (👩‍💻) or a BOM at the very start is ordinary; one between
                // letters is hiding something.
                let before = index > 0 ? all[index - 1] : nil
                let after = index + 1 < all.count ? all[index + 1] : nil
                let emojiJoin =
                    (scalar.value == 0x200D || scalar.value == 0x200C)
                    && (before?.properties.isEmojiPresentation == true || before?.properties.isEmoji == true
                        || after?.properties.isEmoji == true || before?.value == 0xFE0F)
                let betweenLetters =
                    (before?.properties.isAlphabetic ?? false) && (after?.properties.isAlphabetic ?? false)
                if !emojiJoin && (betweenLetters || scalar.value == 0x200B || scalar.value == 0x2060) && index > 0 {
                    findings.hiddenCharacters += 1
                }
                continue
            }
            scalars.append(scalar)
        }
        let stripped = String(String.UnicodeScalarView(scalars)).lowercased()
        var plain = ""
        plain.reserveCapacity(stripped.utf8.count)
        var plainSpace = false
        for character in stripped {
            if isWhitespace(character) {
                if !plainSpace { plain.append(isNewline(character) ? "\n" : " ") }
                plainSpace = true
            } else {
                plain.append(character)
                plainSpace = false
            }
        }
        var output = ""
        output.reserveCapacity(stripped.utf8.count)
        var word = ""
        var wordHasLatin = false
        var wordHasLookalike = false
        var lastWasSpace = false
        func endWord() {
            if wordHasLatin && wordHasLookalike { findings.mixedScriptWords += 1 }
            output += word
            word = ""
            wordHasLatin = false
            wordHasLookalike = false
        }
        for character in stripped {
            if isWhitespace(character) {
                endWord()
                if !lastWasSpace { output.append(isNewline(character) ? "\n" : " ") }
                lastWasSpace = true
                continue
            }
            lastWasSpace = false
            if let ascii = character.asciiValue {
                // ASCII has no look-alikes; its letters are Latin (faster than the Unicode properties).
                if isASCIILetter(ascii) {
                    wordHasLatin = true
                } else if !(0x30...0x39).contains(ascii) {
                    endWord()
                    output.append(character)
                    continue
                }
                word.append(character)
            } else if let latin = homoglyphs[character] {
                wordHasLookalike = true
                word.append(latin)
            } else {
                if character.isASCII && character.isLetter { wordHasLatin = true }
                if !character.isLetter && !character.isNumber {
                    endWord()
                    output.append(character)
                    continue
                }
                word.append(character)
            }
        }
        endWord()
        let folded = output.folding(options: .diacriticInsensitive, locale: nil)
        return Views(folded: folded, plain: plain, tagged: String(tagged), findings: findings)
    }

    /// The views of ASCII text, without the Unicode work: NFKC, accent removal and look-alike folding
    /// leave ASCII as it is, no ASCII character is invisible, bidi or a look-alike, and folding then
    /// equals plain. What is left is lower-casing and collapsing whitespace runs (`\t`…`\r`, space) into
    /// one space, or one line break when the run starts with a line break (`\n`…`\r`). Nil when `text` is
    /// not all ASCII.
    static func asciiView(of text: String) -> String? {
        let utf8 = text.utf8
        guard utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var lastWasSpace = false
        for byte in utf8 {
            switch byte {
            case 0x09...0x0D, 0x20:
                if !lastWasSpace { bytes.append(byte == 0x09 || byte == 0x20 ? 0x20 : 0x0A) }
                lastWasSpace = true
            case 0x41...0x5A:
                bytes.append(byte + 0x20)
                lastWasSpace = false
            default:
                bytes.append(byte)
                lastWasSpace = false
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `character.isWhitespace`, without the Unicode property look-up for ASCII (`\r\n` is ASCII 0x0A).
    static func isWhitespace(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return character.isWhitespace }
        return ascii == 0x20 || (0x09...0x0D).contains(ascii)
    }

    /// `character.isNewline`, likewise.
    static func isNewline(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return character.isNewline }
        return (0x0A...0x0D).contains(ascii)
    }

    static func isASCIILetter(_ ascii: UInt8) -> Bool {
        (0x41...0x5A).contains(ascii) || (0x61...0x7A).contains(ascii)
    }
}
