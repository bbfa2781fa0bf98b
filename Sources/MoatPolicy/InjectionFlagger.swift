public import Foundation
import MoatCore

/// Where a piece of text came from; decides whether it taints a conversation even when nothing is flagged.
public enum ContentSource: String, Sendable, Hashable, CaseIterable {
    /// A message from the owner.
    case owner
    /// A message from a paired contact.
    case contact
    /// A page or file fetched from the web.
    case web
    /// The output of a tool.
    case toolOutput = "tool"

    /// Web content and tool output are untrusted input even when the flagger finds nothing.
    public var taintsByDefault: Bool { self == .web || self == .toolOutput }
}

/// One reason text looks like a prompt injection.
public struct InjectionFlag: Sendable, Hashable, CustomStringConvertible {
    /// The family of the finding.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case instructionOverride = "instruction-override"
        case roleReassignment = "role-reassignment"
        case roleMarker = "role-marker"
        case secretRequest = "secret-request"
        case exfiltration
        case toolCoercion = "tool-coercion"
        case outputManipulation = "output-manipulation"
        case encodedPayload = "encoded-payload"
        case hiddenText = "hidden-text"
        case homoglyphs
    }

    public let kind: Kind
    /// What was seen, in words, with at most a short excerpt of the normalized text.
    public let reason: String

    public var description: String { "\(kind.rawValue): \(reason)" }
}

/// Scans untrusted text for signs of prompt injection.
///
/// The flagger never drops or edits text: its flags are audited and taint the conversation (see
/// ``TrustDecision``). It scores intent rather than matching phrases: each signal (an override of earlier
/// instructions, a new role for the assistant, a fake system or turn delimiter, a request for the system
/// prompt or for secrets, data sent to an outside address, a tool call forced or hidden from the owner,
/// content slipped into the reply, a hidden carrier) has a weight, and text is flagged when the weights of
/// the distinct signals it shows reach ``threshold``. Strong signals flag alone; weak ones (a role-play
/// request, a mention of developer mode, "in your reply, add…") only together.
///
/// It matches on ``TextNormalizer`` output, so zero-width characters, tag characters, bidi controls,
/// full-width letters, accents and Cyrillic/Greek look-alikes do not hide a phrase; it reads what tag
/// characters spell, decodes base64 and hex blobs (two levels deep) and rot13 text to look inside them,
/// also for shell commands. Common forms in Spanish, French, German, Portuguese, Italian, Chinese and
/// Russian are covered. Deterministic, no I/O, no state. It is a tripwire, not a guarantee — the trust
/// levels and taint caps are what hold when a phrasing slips through.
public enum InjectionFlagger {
    /// Text is flagged when the weights of the distinct signals found add up to this (a strong signal
    /// weighs this much on its own).
    public static let threshold = 10

    /// One signal found in a text.
    struct Finding {
        let kind: InjectionFlag.Kind
        let reason: String
        let weight: Int
    }

    /// Shell commands that are only flagged inside decoded blobs (ordinary messages may quote commands).
    static let shell = try! NSRegularExpression(
        pattern:
            "(?:\\b(?:curl|wget)\\b[^\\n|]*\\|\\s*(?:ba|z|da)?sh\\b|\\brm\\s+-[a-z]*r[a-z]*f|\\bbash\\s+-i\\b|/dev/tcp/|\\bnc\\s+(?:-[a-z]*e|.*\\s-e\\s)|\\bchmod\\s+\\+?[0-7x]+\\s|\\bpython3?\\s+-c\\b|\\bbase64\\s+-d\\b|\\beval\\s*\\(|\\bpowershell\\b|\\bmkfifo\\b|\\bsudo\\s+\\w|;\\s*sh\\b|\\$\\(\\s*curl)",
        options: []
    )
    static let rot13Hint = try! NSRegularExpression(
        pattern: "\\b(?:rot ?-?13|caesar|decode|decipher|decrypt|cipher)", options: [])
    static let base64Blob = try! NSRegularExpression(pattern: "[A-Za-z0-9+/_-]{16,}={0,2}", options: [])
    static let hexBlob = try! NSRegularExpression(
        pattern: "(?:(?:\\\\x|0x)?[0-9a-fA-F]{2}[\\s:,]?){12,}", options: [])

    /// Which of the signals (then ``rot13Hint`` and ``shell``) can match a text, from the words their
    /// matches need: the expressions it rules out are not run (same results, far less work).
    static let prefilter = RegexPrefilter(patterns: signals.map(\.pattern) + [rot13Hint, shell])

    /// Signals must occur within this many characters of each other to add up: a long document is scored
    /// in windows of this size (cut at line breaks where it can), so weak signals scattered over a manual do
    /// not add up to a flag.
    static let window = 4000

    /// Scans `text` and returns its flags, strongest first (empty when it looks clean).
    public static func scan(_ text: String) -> [InjectionFlag] {
        var found: [Finding] = []
        for part in windows(of: text) {
            let inPart = findings(in: String(part), depth: 0)
            if weight(of: inPart) >= threshold { found += inPart }
        }
        var seen = Set<InjectionFlag>()
        return found.sorted { $0.weight > $1.weight }.map { InjectionFlag(kind: $0.kind, reason: $0.reason) }
            .filter { seen.insert($0).inserted }
    }

    static func weight(of findings: [Finding]) -> Int {
        findings.reduce(0) { $0 + $1.weight }
    }

    /// `text` in pieces of at most ``window`` characters, cut after a line break, else after a space.
    static func windows(of text: String) -> [Substring] {
        var pieces: [Substring] = []
        var rest = text[...]
        while let limit = rest.index(rest.startIndex, offsetBy: window, limitedBy: rest.endIndex), limit < rest.endIndex
        {
            let head = rest[..<limit]
            let cut =
                head.lastIndex(of: "\n").map { rest.index(after: $0) }
                ?? head.lastIndex(where: \.isWhitespace).map { rest.index(after: $0) } ?? limit
            pieces.append(rest[..<cut])
            rest = rest[cut...]
        }
        pieces.append(rest)
        return pieces
    }

    /// Every distinct signal in `text`, with what decoding and the carriers reveal.
    static func findings(in text: String, depth: Int) -> [Finding] {
        let views = TextNormalizer.views(of: text)
        let prefix = depth == 0 ? "" : "a decoded blob "
        var found: [Finding] = []
        let carriers = views.findings
        if carriers.hiddenCharacters > 0 {
            found.append(
                Finding(
                    kind: .hiddenText,
                    reason: "\(prefix)hides \(carriers.hiddenCharacters) zero-width character(s) inside words",
                    weight: threshold))
        }
        if carriers.bidiControls > 0 {
            found.append(
                Finding(
                    kind: .hiddenText,
                    reason: "\(prefix)contains \(carriers.bidiControls) bidi control(s) that reorder text",
                    weight: threshold))
        }
        if carriers.invisibleCarriers > 0 {
            found.append(
                Finding(
                    kind: .hiddenText,
                    reason:
                        "\(prefix)carries \(carriers.invisibleCarriers) invisible tag or variation-selector character(s)",
                    weight: threshold))
        }
        if carriers.mixedScriptWords > 0 {
            found.append(
                Finding(
                    kind: .homoglyphs,
                    reason:
                        "\(prefix)mixes Latin with look-alike Cyrillic/Greek letters in \(carriers.mixedScriptWords) word(s)",
                    weight: threshold))
        }
        let possibleInFolded = prefilter.possible(in: views.folded)
        let possibleInPlain = views.plain == views.folded ? possibleInFolded : prefilter.possible(in: views.plain)
        let possible = signals.indices.map { signals[$0].view == .folded ? possibleInFolded[$0] : possibleInPlain[$0] }
        found += matches(folded: views.folded, plain: views.plain, possible: possible, prefix: prefix)
        if depth > 0, possibleInFolded[signals.count + 1], let excerpt = firstMatch(shell, in: views.folded) {
            found.append(
                Finding(
                    kind: .encodedPayload, reason: "a decoded blob holds a shell command: \"\(excerpt)\"",
                    weight: threshold))
        }
        guard depth < 2 else { return found }
        var hidden = decodedBlobs(in: text)
        if !views.tagged.isEmpty { hidden.append(("tag-character", views.tagged)) }
        // ROT13 text needs a hint for the model to decode it; it only matters when the text does not
        // already flag in clear.
        if depth == 0 && weight(of: found) < threshold && possibleInFolded[signals.count]
            && firstMatch(rot13Hint, in: views.folded) != nil
        {
            hidden.append(("rot13", rot13(views.plain)))
        }
        for decoded in hidden {
            let inner = findings(in: decoded.text, depth: depth + 1)
            if weight(of: inner) >= threshold {
                found.append(
                    Finding(
                        kind: .encodedPayload, reason: "a \(decoded.encoding) text decodes to suspicious text",
                        weight: threshold))
                found += inner
            }
        }
        return found
    }

    /// The signals whose pattern occurs in the matching view, each once (`possible`: whether each can).
    static func matches(folded: String, plain: String, possible: [Bool], prefix: String) -> [Finding] {
        var heaviestOfFamily: [String: Int] = [:]
        var found: [(family: String?, finding: Finding)] = []
        for (signal, possible) in zip(signals, possible) where possible {
            guard let excerpt = firstMatch(signal.pattern, in: signal.view == .folded ? folded : plain) else {
                continue
            }
            if let family = signal.family {
                heaviestOfFamily[family] = max(heaviestOfFamily[family] ?? 0, signal.weight)
            }
            let finding = Finding(
                kind: signal.kind, reason: "\(prefix)\(signal.label): \"\(excerpt)\"", weight: signal.weight)
            found.append((signal.family, finding))
        }
        // One finding per family: the first of the heaviest.
        var kept = Set<String>()
        return found.compactMap { family, finding in
            guard let family else { return finding }
            guard finding.weight == heaviestOfFamily[family], kept.insert(family).inserted else { return nil }
            return finding
        }
    }

    static func firstMatch(_ pattern: NSRegularExpression, in text: String) -> String? {
        let range = NSRange(text.startIndex..., in: text)
        guard let match = pattern.firstMatch(in: text, options: [], range: range),
            let matched = Range(match.range, in: text)
        else { return nil }
        return excerpt(text[matched])
    }

    /// ROT13 of the ASCII letters (instructions hidden as `vtaber nyy cerivbhf vafgehpgvbaf`).
    static func rot13(_ text: String) -> String {
        String(
            String.UnicodeScalarView(
                text.unicodeScalars.map { scalar in
                    switch scalar.value {
                    case 0x61...0x7A: Unicode.Scalar((scalar.value - 0x61 + 13) % 26 + 0x61)!
                    case 0x41...0x5A: Unicode.Scalar((scalar.value - 0x41 + 13) % 26 + 0x41)!
                    default: scalar
                    }
                }))
    }

    /// Base64 (standard or URL-safe) and hex runs that decode to mostly printable UTF-8.
    static func decodedBlobs(in text: String) -> [(encoding: String, text: String)] {
        var results: [(String, String)] = []
        let range = NSRange(text.startIndex..., in: text)
        // A base64 blob needs 16 blob characters in a row (all ASCII, so a byte run): without one, the
        // expression is not run.
        var run = 0
        let mayHoldBase64 = text.utf8.contains { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "_"),
                UInt8(ascii: "-"):
                run += 1
            default: run = 0
            }
            return run >= 16
        }
        for match in (mayHoldBase64 ? base64Blob.matches(in: text, options: [], range: range) : []).prefix(64) {
            guard let matched = Range(match.range, in: text) else { continue }
            var token = String(text[matched]).replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/")
            while token.count % 4 != 0 { token += "=" }
            if let data = Data(base64Encoded: token), let decoded = printable(Array(data)) {
                results.append(("base64", decoded))
            }
        }
        for match in (mayHoldHex(text) ? hexBlob.matches(in: text, options: [], range: range) : []).prefix(64) {
            guard let matched = Range(match.range, in: text) else { continue }
            let digits = String(text[matched]).replacingOccurrences(of: "\\x", with: "")
                .replacingOccurrences(of: "0x", with: "").filter(\.isHexDigit)
            var bytes: [UInt8] = []
            var index = digits.startIndex
            while let next = digits.index(index, offsetBy: 2, limitedBy: digits.endIndex), index < digits.endIndex {
                if let byte = UInt8(digits[index..<next], radix: 16) { bytes.append(byte) }
                index = next
            }
            if let decoded = printable(bytes) { results.append(("hex", decoded)) }
        }
        return results
    }

    /// Whether `text` may hold a ``hexBlob``: a match has 24 hex digits or more, with at most 3 other
    /// characters between two of them (a separator, then `\\x`), so text without such a chain cannot match
    /// and the expression is not run (the same results, far less work for ordinary messages). Tied to
    /// ``hexBlob`` as written: a longer separator or a case-insensitive option needs a new bound here
    /// (`RegexPrefilterTests.hexPrecheckSound` compares the two).
    static func mayHoldHex(_ text: String) -> Bool {
        var digits = 0
        var gap = 0
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x30...0x39, 0x41...0x46, 0x61...0x66:
                digits += 1
                if digits >= 24 { return true }
                gap = 0
            default:
                gap += 1
                if gap > 3 { digits = 0 }
            }
        }
        return false
    }

    /// The bytes as text when they are valid UTF-8 and at least 90% printable (random keys and hashes
    /// decode to binary and are ignored).
    static func printable(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 8, let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let scalars = text.unicodeScalars
        let good = scalars.filter { $0.value >= 0x20 || $0 == "\n" || $0 == "\t" || $0 == "\r" }.count
        return good * 10 >= scalars.count * 9 ? text : nil
    }

    static func excerpt(_ text: Substring) -> String {
        PrintableText.excerpt(text, limit: 60)
    }
}
