import Foundation
import MoatCore
import MoatTestSupport
import Testing

@testable import MoatVault

@Suite(.lowestPriority) struct ScrubberTests {
    static let token = "s3cr3t/Token+Value=42 ok?"

    func scrubber(_ values: [String: String]) throws -> SecretScrubber {
        let now = Date()
        return SecretScrubber(
            entries: values.map {
                SecretEntry(name: $0.key, value: secret($0.value), createdAt: now, updatedAt: now, policy: .none)
            }
        )
    }

    @Test("raw, base64, base64url (padded or not), hex and percent-encoded forms are all replaced")
    func everyEncoding() throws {
        let scrubber = try scrubber(["TOKEN": Self.token])
        let bytes = Data(Self.token.utf8)
        let base64 = bytes.base64EncodedString()
        let base64URL = base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let percent = Self.token.addingPercentEncoding(
            withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
        // Lower-case hex digits only; the unreserved letters keep their case.
        var lowerPercent = ""
        var pending = 0
        for character in percent {
            if character == "%" {
                pending = 2
                lowerPercent.append(character)
            } else if pending > 0 {
                pending -= 1
                lowerPercent += character.lowercased()
            } else {
                lowerPercent.append(character)
            }
        }
        let forms = [
            Self.token, base64, base64.replacingOccurrences(of: "=", with: ""), base64URL,
            base64URL.replacingOccurrences(of: "=", with: ""), hex, hex.uppercased(), percent,
            Self.lowercasingEscapes(percent),
            percent.replacingOccurrences(of: "%20", with: "+"),
        ]
        for form in forms {
            let output = scrubber.scrub("before \(form) after")
            #expect(output == "before [secret:TOKEN] after", "form \(form): \(output)")
        }
    }

    /// `%2F` → `%2f`: only the escapes' hex digits change case, never the value's own letters.
    static func lowercasingEscapes(_ text: String) -> String {
        text.replacing(/%[0-9A-F]{2}/) { $0.output.lowercased() }
    }

    @Test("a value inside a larger base64 blob (an HTTP Basic header) is caught at every alignment")
    func embeddedBase64() throws {
        let scrubber = try scrubber(["TOKEN": Self.token])
        for user in ["u", "us", "use", "user"] {
            let header = "Authorization: Basic " + Data("\(user):\(Self.token)".utf8).base64EncodedString()
            let output = scrubber.scrub(header)
            #expect(output.contains("[secret:TOKEN]"), "\(user): \(output)")
            // What is left around the marker is too short to rebuild the value.
            let leftover = output.replacingOccurrences(of: "Authorization: Basic ", with: "")
                .replacingOccurrences(of: "[secret:TOKEN]", with: "")
            #expect(leftover.count <= 8, "\(leftover)")
        }
    }

    @Test("several secrets, repeated occurrences, and the longer of two overlapping secrets win")
    func overlapping() throws {
        let scrubber = try scrubber(["LONG": "abcdefgh-long", "SHORT": "abcdefgh", "OTHER": "zzzz9999"])
        let output = scrubber.scrub("abcdefgh-long abcdefgh zzzz9999zzzz9999 abcdefg")
        #expect(output == "[secret:LONG] [secret:SHORT] [secret:OTHER][secret:OTHER] abcdefg")
        #expect(scrubber.scrub("nothing to see") == "nothing to see")
        #expect(scrubber.scrub("") == "")
        #expect(scrubber.scrub("ünïcödé abcdefgh ✓") == "ünïcödé [secret:SHORT] ✓")
    }

    @Test("values under four bytes are not scrubbed; four bytes are")
    func shortValues() throws {
        let scrubber = try scrubber(["TINY": "42!", "FOUR": "q7#z"])
        #expect(scrubber.scrub("answer 42! and q7#z") == "answer 42! and [secret:FOUR]")
        #expect(SecretScrubber.minimumLength == 4)
    }

    @Test("binary values are found in their encoded forms")
    func binaryValue() throws {
        let now = Date()
        let raw: [UInt8] = [0xff, 0x00, 0xfe, 0x10, 0x80, 0x7f, 0x01, 0x02, 0x03]
        var copy = raw
        let scrubber = SecretScrubber(
            entries: [
                SecretEntry(
                    name: "BLOB", value: SecretBytes(wiping: &copy), createdAt: now, updatedAt: now, policy: .none)
            ]
        )
        let data = Data(raw)
        #expect(scrubber.scrub("k=\(data.base64EncodedString())") == "k=[secret:BLOB]")
        #expect(scrubber.scrub("k=\(data.map { String(format: "%02X", $0) }.joined())") == "k=[secret:BLOB]")
    }

    /// Feeds `pieces` as a stream does: each piece after what was held, the last rest scrubbed whole.
    static func streamed(_ pieces: [String], _ scrubber: SecretScrubber) -> [String] {
        var shown: [String] = []
        var held = ""
        for piece in pieces {
            let (scrubbed, rest) = scrubber.scrubPrefix(held + piece)
            shown.append(scrubbed)
            held = rest
        }
        shown.append(scrubber.scrub(held))
        return shown
    }

    @Test("streamed in two pieces split anywhere, a value never shows in part and the pieces add up to the scrub")
    func streamedSplitAnywhere() throws {
        let scrubber = try scrubber(["LONG": "abcdefgh-long", "SHORT": "abcdefgh", "TOKEN": Self.token])
        let hex = Data(Self.token.utf8).map { String(format: "%02x", $0) }.joined()
        let texts = [
            "key \(Self.token) end", "ü \(hex)!", "abcdefgh-long and abcdefgh", "abcdefg abcdefgh-lon",
            "no secret at all", "abcdefgh",
        ]
        for text in texts {
            let whole = scrubber.scrub(text)
            let characters = Array(text)
            for cut in 0...characters.count {
                let shown = Self.streamed([String(characters[..<cut]), String(characters[cut...])], scrubber)
                #expect(shown.joined() == whole, "cut \(cut) of \(text): \(shown)")
                for piece in shown {
                    // A fragment the whole text shows is no secret's part there (`abcdefg` alone is no value).
                    for fragment in [Self.token.prefix(4), hex.prefix(6), "abcdefgh".prefix(4)]
                    where !whole.contains(fragment) {
                        #expect(!piece.contains(fragment), "cut \(cut) of \(text): \(piece)")
                    }
                }
            }
        }
        // One character at a time (as a slow stream sends it), too.
        let text = "a \(Self.token) b \(hex) abcdefgh-long."
        #expect(Self.streamed(text.map(String.init), scrubber).joined() == scrubber.scrub(text))
    }

    @Test("a held rest that turns out to be no value is shown once the next piece says so, nothing lost")
    func streamedHoldsOnlyWhatCouldBeAValue() throws {
        let scrubber = try scrubber(["TOKEN": Self.token])
        #expect(scrubber.scrubPrefix("plain text") == ("plain text", ""))
        let (shown, held) = scrubber.scrubPrefix("it is s3cr")
        #expect(shown == "it is " && held == "s3cr")
        #expect(scrubber.scrubPrefix(held + "ew") == ("s3crew", ""))
    }

    @Test("the vault scrubs with its current values, following changes")
    func vaultScrubs() throws {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        try vault.add("API_KEY", value: secret("sk-0123456789"), policy: .none)
        #expect(vault.scrub("key sk-0123456789") == "key [secret:API_KEY]")
        let other = try UnlockedVault.open(paths: fixture.paths, password: secret("correct horse battery"))
        try other.add("NEW_KEY", value: secret("brand-new-value"), policy: .none)
        #expect(vault.scrub("brand-new-value") == "[secret:NEW_KEY]")
    }
}
