public import Foundation

/// Turns text into the form the injection flagger matches on, and reports what it had to undo.
///
/// Steps: NFKC (full-width and styled letters become plain ones), removal of invisible format
/// characters (zero-width spaces and joiners, word joiner, soft hyphen, BOM) and bidi controls,
/// folding of Cyrillic and Greek letters that look like Latin ones onto those Latin letters, lower-casing,
/// and collapsing runs of whitespace. Matching on the result means an attacker cannot dodge a phrase
/// with `ign\u{200B}ore` or a Cyrillic `о`.
public enum TextNormalizer {
    /// What normalization found; each is a reason to flag on its own.
    public struct Findings: Sendable, Equatable {
        /// Zero-width or other invisible characters inside words (emoji joiners excluded).
        public var hiddenCharacters = 0
        /// Bidi override, embedding or isolate controls (they can reorder what the reader sees).
        public var bidiControls = 0
        /// Words mixing Latin letters with Cyrillic or Greek look-alikes.
        public var mixedScriptWords = 0
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
        var findings = Findings()
        let compatible = text.precomposedStringWithCompatibilityMapping
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(compatible.unicodeScalars.count)
        let all = Array(compatible.unicodeScalars)
        for (index, scalar) in all.enumerated() {
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
            if character.isWhitespace {
                endWord()
                if !lastWasSpace { output.append(character.isNewline ? "\n" : " ") }
                lastWasSpace = true
                continue
            }
            lastWasSpace = false
            if let latin = homoglyphs[character] {
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
        return (output, findings)
    }
}
