import Foundation
import MoatCore
import Testing

@testable import MoatVault

@Suite struct ScrubberTests {
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
