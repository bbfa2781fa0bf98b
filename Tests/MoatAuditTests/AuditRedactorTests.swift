import MoatTestSupport
import Testing

@testable import MoatAudit

/// The redactor's byte-level checks decide exactly what the Unicode definitions they replace decided.
@Suite struct AuditRedactorTests {
    /// The definition: the lowered key contains one of the sensitive words.
    static func sensitiveByDefinition(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return AuditRedactor.sensitiveWords.contains { lowered.contains($0) }
    }

    /// The definition: dotted parts, each a lower-case letter then lower-case letters, digits, `_`, `-`.
    static func validByDefinition(_ action: String) -> Bool {
        let parts = action.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, action.count <= 64 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.first!.isLetter
                && part.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" || $0 == "-" }
        }
    }

    @Test("a metadata key is sensitive when its lowered form holds a sensitive word, ASCII or not")
    func sensitiveKeys() {
        for key in [
            "password", "X-Api-Key", "refresh_TOKEN", "sessionId", "SESSION_ID", "Authorization", "cookie_jar",
            "myBearerThing", "CREDENTIALS", "apikey", "\u{212A}ey", "Pass\u{00E9}word_secret", "KEY",
        ] {
            #expect(AuditRedactor.isSensitive(key), "\(key)")
            #expect(Self.sensitiveByDefinition(key))
        }
        for key in ["Accept", "count", "channel", "turn", "ke-y", "pässword", "\u{FF30}assword", "", "k", "aut"] {
            #expect(!AuditRedactor.isSensitive(key), "\(key)")
            #expect(!Self.sensitiveByDefinition(key))
        }
    }

    @Test("on 20,000 random keys the fast sensitive check agrees with the definition")
    func sensitiveAgrees() async {
        // At the lowest priority, off the threads other tests share (a second of work in a debug build).
        let disagreeing = await atLowestPriority {
            var generator = SystemRandomNumberGenerator()
            let pieces = [
                "pass", "word", "Key", "K", "\u{212A}", "e", "y", "-", "_", "TOK", "en", "auth", "x", "é", "Se",
                "ssion",
            ]
            return (0..<20_000).map { _ in
                (0..<Int.random(in: 0...5, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }
                    .joined()
            }.filter { AuditRedactor.isSensitive($0) != Self.sensitiveByDefinition($0) }
        }
        #expect(disagreeing.isEmpty, "\(disagreeing)")
    }

    @Test("an action name is valid exactly when the definition says so, byte by byte")
    func actionNames() {
        let valid = [
            "vault.add", "agent.tool.run", "a.b", "x1.y_z-2",
            String(repeating: "a", count: 31) + "." + String(repeating: "b", count: 32),
        ]
        let invalid = [
            "NoDots", "a.", ".a", "a..b", "A.b", "1a.b", "a.B", "a.b!", "é.b", "a.b\u{301}", "a.b c", "", ".",
            "a._b", "a.-b", String(repeating: "a", count: 32) + "." + String(repeating: "b", count: 32),
        ]
        for action in valid {
            #expect(AuditRedactor.isValidAction(action), "\(action)")
            #expect(Self.validByDefinition(action))
        }
        for action in invalid {
            #expect(!AuditRedactor.isValidAction(action), "\(action)")
            #expect(!Self.validByDefinition(action))
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab1_-.Aé\u{301} ")
        for _ in 0..<20_000 {
            let action = String(
                (0..<Int.random(in: 0...8, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator)!
                })
            #expect(AuditRedactor.isValidAction(action) == Self.validByDefinition(action), "\(action)")
        }
    }
}
