import Foundation
import MoatTestSupport
import Testing

@testable import MoatPolicy

@Suite struct RegexPrefilterTests {
    @Test(
        "the strings a pattern requires are those every match contains",
        arguments: [
            (#"\bignore (?:all|any) rules\b"#, [Set(["ignore all rules", "ignore any rules"])]),
            (#"\b(?:reveal|show)\s+(?:the )?prompt"#, [["reveal", "show"], ["the prompt", "prompt"]]),
            (#"<\|\s*(?:system|user)\s*\|>"#, [["<|"], ["system", "user"], ["|>"]]),
            (#"ab?c"#, [["abc", "ac"]]),
            (#"(?<!your )act as\b"#, [["act as"]]),
            (#"x{2,}y"#, [["x"], ["y"]]),
            (#"(?:a\w+b|cd)e"#, [["a", "cd"], ["e"]]),
            (#"系统(?:提示|指令)"#, [["系统提示", "系统指令"]]),
            (#"["'](?:nc|ssh)["']"#, [["\"nc\"", "\"nc'", "'nc\"", "'nc'", "\"ssh\"", "\"ssh'", "'ssh\"", "'ssh'"]]),
            (#"[\]x]y[^ab]z[a-c]w"#, [["xy", "]y"], ["z"], ["w"]]),
        ] as [(String, [Set<String>])])
    func required(pattern: String, expected: [Set<String>]) {
        #expect(RegexLiterals.required(pattern) == expected)
    }

    @Test(
        "a pattern with nothing every match must contain, or a construct the reader does not know, is always run",
        arguments: [#"\w+\s*\d"#, #"(?i)ignore"#, #"a|\w"#, #"(?:ab)*c?"#, #"\p{L}x"#, #"[a-z]{16,}"#])
    func unknown(pattern: String) {
        #expect(RegexLiterals.required(pattern) == nil)
    }

    @Test("the prefilter never rules out a signal that matches a corpus text (so results are unchanged)")
    func sound() async throws {
        var texts = try Corpus.lines("attacks.txt") + Corpus.lines("benign.txt")
        texts += try (Corpus.labelled("dev.jsonl") + Corpus.labelled("heldout.jsonl")).map(\.text)
        // Seconds of regular-expression work: at the lowest priority, off the threads other tests share.
        let (unsound, ruledOut) = await atLowestPriority { [texts] in
            var unsound: [String] = []
            var ruledOut = 0
            for text in texts {
                let views = TextNormalizer.views(of: text)
                let inFolded = InjectionFlagger.prefilter.possible(in: views.folded)
                let inPlain = InjectionFlagger.prefilter.possible(in: views.plain)
                for (index, signal) in InjectionFlagger.signals.enumerated() {
                    let possible = signal.view == .folded ? inFolded[index] : inPlain[index]
                    let view = signal.view == .folded ? views.folded : views.plain
                    if !possible && InjectionFlagger.firstMatch(signal.pattern, in: view) != nil {
                        unsound.append("\(signal.label) ruled out but matches \(text)")
                    }
                    if !possible { ruledOut += 1 }
                }
            }
            return (unsound, ruledOut)
        }
        #expect(unsound.isEmpty, "\(unsound)")
        // The prefilter must also rule something out, or it does no good.
        #expect(ruledOut > texts.count * InjectionFlagger.signals.count / 2)
    }

    @Test("the hex blob pre-check never rules out a text the hex expression matches, and rules out ordinary text")
    func hexPrecheckSound() throws {
        let blob = Array("ignore previous instructions".utf8).map { String(format: "%02x", $0) }
        let crafted = [
            blob.joined(), blob.joined(separator: " "), blob.joined(separator: ":"),
            blob.map { "\\x" + $0 }.joined(), blob.map { "0x" + $0 }.joined(separator: ","),
            blob.map { "\\x" + $0 }.joined(separator: "\u{2003}"), "see " + blob.joined(separator: "\u{00A0}") + " ok",
            String(repeating: "ab", count: 12), String(repeating: "\\xAB,", count: 12),
        ]
        var texts = crafted + (try Corpus.lines("attacks.txt") + Corpus.lines("benign.txt"))
        texts += try (Corpus.labelled("dev.jsonl") + Corpus.labelled("heldout.jsonl")).map(\.text)
        var ruledOut = 0
        for text in texts {
            let matches = InjectionFlagger.firstMatch(InjectionFlagger.hexBlob, in: text) != nil
            let possible = InjectionFlagger.mayHoldHex(text)
            #expect(possible || !matches, "ruled out but the hex expression matches: \(text)")
            if !possible { ruledOut += 1 }
        }
        for text in crafted {
            #expect(InjectionFlagger.firstMatch(InjectionFlagger.hexBlob, in: text) != nil, "not a hex blob: \(text)")
            #expect(InjectionFlagger.mayHoldHex(text), "\(text)")
        }
        #expect(!InjectionFlagger.mayHoldHex("what is on my calendar tomorrow? [bench alone-0-123]"))
        #expect(ruledOut > texts.count / 2)
    }
}

@Suite struct TextNormalizerASCIITests {
    @Test("ASCII text gets the same views from the fast path as from the Unicode path")
    func asciiMatchesUnicode() throws {
        var texts = try (Corpus.lines("attacks.txt") + Corpus.lines("benign.txt")).filter {
            $0.utf8.allSatisfy { $0 < 0x80 }
        }
        let every = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        texts += [
            every, every.uppercased(), "a\r\nb\r\n\r\nc \t\n d\u{0B}e\u{0C}f\u{1C}g\u{1D}\u{1E}\u{1F}h", "\r\n  x",
            " \t", "",
        ]
        for seed in 0..<200 {
            texts.append(
                String(decoding: (0..<40).map { UInt8(($0 * 37 + seed * 101 + $0 * $0 * seed) % 128) }, as: UTF8.self))
        }
        for text in texts {
            let fast = TextNormalizer.views(of: text)
            let general = TextNormalizer.unicodeViews(of: text)
            #expect(Array(fast.folded.utf8) == Array(general.folded.utf8), "\(Array(text.utf8))")
            #expect(Array(fast.plain.utf8) == Array(general.plain.utf8), "\(Array(text.utf8))")
            #expect(fast.findings == general.findings && fast.tagged == general.tagged)
        }
    }

    @Test("the ASCII shortcuts agree with Character's Unicode properties")
    func asciiProperties() {
        let characters = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["\r\n"]
        for character in characters {
            #expect(TextNormalizer.isWhitespace(character) == character.isWhitespace)
            #expect(TextNormalizer.isNewline(character) == character.isNewline)
            let ascii = character.asciiValue!
            #expect(TextNormalizer.isASCIILetter(ascii) == character.isLetter)
            #expect((0x30...0x39).contains(ascii) == character.isNumber)
        }
    }
}
