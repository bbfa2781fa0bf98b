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
        case roleMarker = "role-marker"
        case secretRequest = "secret-request"
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
/// ``TrustDecision``). It matches on ``TextNormalizer`` output, so zero-width characters, bidi controls,
/// full-width letters and Cyrillic/Greek look-alikes do not hide a phrase, and it decodes base64 and hex
/// blobs (two levels deep) to look inside them, also for shell commands. It is a tripwire, not a
/// guarantee — the trust levels and taint caps are what hold when a phrasing slips through.
public enum InjectionFlagger {
    struct Rule: @unchecked Sendable {
        // @unchecked: NSRegularExpression is immutable after creation and documented thread-safe.
        let kind: InjectionFlag.Kind
        let label: String
        let pattern: NSRegularExpression

        init(_ kind: InjectionFlag.Kind, _ label: String, _ pattern: String) {
            self.kind = kind
            self.label = label
            self.pattern = try! NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines])
        }
    }

    static let override =
        "(?:ignore|disregard|forget|bypass|override|overrule|abandon|discard|neglect|drop|skip|set aside|throw out|stop following|do not follow|don'?t follow)"
    static let quantifier = "(?:\\s+(?:all|any|every|each|the|your|my|of|these|those|its|everything|previous|prior))*"
    static let earlier =
        "(?:previous|prior|above|earlier|preceding|former|foregoing|initial|original|old|system|existing|current|given|developer|safety)"
    static let instructions =
        "(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|programming|constraints|restrictions|guardrails|orders|commands|system messages?|context)"

    static let rules: [Rule] = [
        Rule(
            .instructionOverride, "asks to ignore earlier instructions",
            "\\b\(override)\(quantifier)(?:\\s+\(earlier))+(?:\\s+\\w+)?\\s+\(instructions)\\b"),
        Rule(
            .instructionOverride, "asks to ignore instructions",
            "\\b\(override)\(quantifier)\\s+(?:your|all|any|the)\\s+(?:\\w+\\s+)?(?:instructions|programming|guardrails|guidelines|directives|system prompt|safety rules)\\b"
        ),
        Rule(
            .instructionOverride, "claims a special mode",
            "\\b(?:you are|you're|you will be|now|enter|entering|enable|enabling|activate|activating|switch to|switching to)\\s+(?:now\\s+)?(?:in\\s+)?(?:developer|dev|dan|jailbreak|jailbroken|god|debug|admin|root|sudo|unrestricted|unfiltered|maintenance)\\s+mode\\b"
        ),
        Rule(
            .instructionOverride, "announces a new system prompt",
            "\\bnew\\s+(?:system\\s+)?(?:prompt|instructions)\\s*[:=-]"),
        Rule(
            .instructionOverride, "announces a new system prompt",
            "\\b(?:new|updated|real|actual|true)\\s+system\\s+prompt\\b"),
        Rule(
            .instructionOverride, "redefines the assistant",
            "\\b(?:from now on|henceforth|starting now),?\\s+you\\s+(?:are|will|must|shall|have no|do not|don'?t)\\b"),
        Rule(
            .instructionOverride, "redefines the assistant",
            "\\byou\\s+are\\s+(?:now\\s+)?(?:no longer|not)\\s+(?:bound|restricted|limited|an? (?:ai|assistant))\\b"),
        Rule(
            .instructionOverride, "names a jailbreak",
            "\\b(?:do anything now|jailbreak(?:ing)? (?:you|the model|prompt))\\b"),
        Rule(
            .instructionOverride, "asks to act without restrictions",
            "\\b(?:act|behave|respond|pretend|roleplay)(?:\\s+(?:as|like|that))?\\s+(?:if\\s+)?(?:you\\s+(?:have|had)\\s+no|an?\\s+(?:unrestricted|unfiltered|uncensored|jailbroken))"
        ),
        Rule(
            .instructionOverride, "asks to act without restrictions",
            "\\bwithout\\s+(?:any\\s+)?(?:restrictions|filters|guardrails|safety\\s+(?:rules|guidelines))\\b"),
        Rule(
            .instructionOverride, "addresses the AI reading the text",
            "\\b(?:attention|note|message|important(?:\\s+instructions?)?|instructions?)\\s+(?:to\\s+|for\\s+)?(?:the\\s+|any\\s+)?(?:ai|assistant|llm|language model|agent|chatbot)(?:\\s+(?:assistant|agent|model))?\\s*[:,!]"
        ),
        Rule(
            .instructionOverride, "asks to ignore the rules it was given",
            "\\b\(override)\\s+(?:all\\s+|any\\s+)?(?:the|your)\\s+(?:rules|instructions|guidelines)\\s+(?:you\\s+(?:were|have been)\\s+given|given to you|you follow)"
        ),
        Rule(
            .instructionOverride, "declares earlier instructions void",
            "\\b(?:whatever|everything|anything)\\s+you\\s+(?:were|have been)\\s+told\\b[^.\\n]*\\bno longer\\s+appl"),
        Rule(
            .instructionOverride, "announces a replacement task",
            "\\b(?:the\\s+)?(?:actual|real|true)\\s+task\\s*(?:is\\s*)?:"),
        Rule(
            .roleMarker, "contains a chat-template marker",
            "<\\|\\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\\s*\\|>"),
        Rule(.roleMarker, "contains a fake role tag", "</?\\s*(?:system|assistant|developer|instructions?|sys)\\s*>"),
        Rule(.roleMarker, "contains an instruction-format marker", "\\[/?inst\\]|<</?sys>>"),
        Rule(
            .roleMarker, "contains a fake instruction heading",
            "^\\s*#{2,}\\s*(?:new\\s+)?(?:instructions?|system(?:\\s+prompt)?|response|assistant)\\b"),
        Rule(.roleMarker, "contains a fake role line", "^\\s*(?:system|developer)\\s*(?:prompt)?\\s*:"),
        Rule(.roleMarker, "contains a fake role object", "[\"']role[\"']\\s*:\\s*[\"'](?:system|developer)[\"']"),
        Rule(
            .secretRequest, "asks for the system prompt",
            "\\b(?:reveal|show|print|tell|give|send|output|display|leak|dump|repeat|share|list|paste|expose|disclose|return|write out|recite)\\s+(?:me\\s+|us\\s+)?(?:your|the|all|any)\\s+(?:\\w+\\s+)?(?:system prompt|initial prompt|hidden prompt|original prompt|system message|hidden instructions|initial instructions|original instructions|prompt above)"
        ),
        Rule(
            .secretRequest, "asks for keys, tokens or credentials",
            "\\b(?:reveal|show|print|tell|give|send|output|display|leak|dump|share|list|paste|expose|disclose|exfiltrate|upload|post|email|forward|cat|echo)\\s+(?:me\\s+|us\\s+)?(?:your|the|all|any|every)\\s+(?:\\w+\\s+)?(?:api[ _-]?keys?|secret[ _-]?keys?|private[ _-]?keys?|access[ _-]?tokens?|auth(?:entication)?[ _-]?tokens?|bearer tokens?|credentials|secrets|env(?:ironment)?\\s+variables|\\.env\\b|vault|ssh keys?|passwords)"
        ),
        Rule(.secretRequest, "contains a secret placeholder", "\\{\\{\\s*secret\\s*:"),
        Rule(
            .secretRequest, "references a credential file",
            "(?:~|\\$home)/\\.(?:ssh|aws|gnupg|netrc|config/moat)|/etc/shadow\\b|\\bid_(?:rsa|ed25519)\\b"),
    ]

    /// Shell commands that are only flagged inside decoded blobs (ordinary messages may quote commands).
    static let shell = try! NSRegularExpression(
        pattern:
            "(?:\\b(?:curl|wget)\\b[^\\n|]*\\|\\s*(?:ba|z|da)?sh\\b|\\brm\\s+-[a-z]*r[a-z]*f|\\bbash\\s+-i\\b|/dev/tcp/|\\bnc\\s+(?:-[a-z]*e|.*\\s-e\\s)|\\bchmod\\s+\\+?[0-7x]+\\s|\\bpython3?\\s+-c\\b|\\bbase64\\s+-d\\b|\\beval\\s*\\(|\\bpowershell\\b|\\bmkfifo\\b|\\bsudo\\s+\\w|;\\s*sh\\b|\\$\\(\\s*curl)",
        options: []
    )
    static let base64Blob = try! NSRegularExpression(pattern: "[A-Za-z0-9+/_-]{16,}={0,2}", options: [])
    static let hexBlob = try! NSRegularExpression(
        pattern: "(?:(?:\\\\x|0x)?[0-9a-fA-F]{2}[\\s:,]?){12,}", options: [])

    /// Scans `text` and returns its flags (empty when it looks clean).
    public static func scan(_ text: String) -> [InjectionFlag] {
        var flags: [InjectionFlag] = []
        scan(text, depth: 0, into: &flags)
        var seen = Set<InjectionFlag>()
        return flags.filter { seen.insert($0).inserted }
    }

    private static func scan(_ text: String, depth: Int, into flags: inout [InjectionFlag]) {
        let (normalized, findings) = TextNormalizer.normalize(text)
        let prefix = depth == 0 ? "" : "a decoded blob "
        if findings.hiddenCharacters > 0 {
            flags.append(
                .init(
                    kind: .hiddenText,
                    reason: "\(prefix)hides \(findings.hiddenCharacters) zero-width character(s) inside words"))
        }
        if findings.bidiControls > 0 {
            flags.append(
                .init(
                    kind: .hiddenText,
                    reason: "\(prefix)contains \(findings.bidiControls) bidi control(s) that reorder text"))
        }
        if findings.mixedScriptWords > 0 {
            flags.append(
                .init(
                    kind: .homoglyphs,
                    reason:
                        "\(prefix)mixes Latin with look-alike Cyrillic/Greek letters in \(findings.mixedScriptWords) word(s)"
                ))
        }
        let range = NSRange(normalized.startIndex..., in: normalized)
        for rule in rules {
            if let match = rule.pattern.firstMatch(in: normalized, options: [], range: range),
                let matched = Range(match.range, in: normalized)
            {
                flags.append(
                    .init(kind: rule.kind, reason: "\(prefix)\(rule.label): \"\(excerpt(normalized[matched]))\""))
            }
        }
        if depth > 0, let match = shell.firstMatch(in: normalized, options: [], range: range),
            let matched = Range(match.range, in: normalized)
        {
            flags.append(
                .init(
                    kind: .encodedPayload,
                    reason: "a decoded blob holds a shell command: \"\(excerpt(normalized[matched]))\""))
        }
        guard depth < 2 else { return }
        for decoded in decodedBlobs(in: text) {
            var inner: [InjectionFlag] = []
            scan(decoded.text, depth: depth + 1, into: &inner)
            if !inner.isEmpty {
                flags.append(
                    .init(kind: .encodedPayload, reason: "a \(decoded.encoding) blob decodes to suspicious text"))
                flags += inner
            }
        }
    }

    /// Base64 (standard or URL-safe) and hex runs that decode to mostly printable UTF-8.
    static func decodedBlobs(in text: String) -> [(encoding: String, text: String)] {
        var results: [(String, String)] = []
        let range = NSRange(text.startIndex..., in: text)
        for match in base64Blob.matches(in: text, options: [], range: range).prefix(64) {
            guard let matched = Range(match.range, in: text) else { continue }
            var token = String(text[matched]).replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/")
            while token.count % 4 != 0 { token += "=" }
            if let data = Data(base64Encoded: token), let decoded = printable(Array(data)) {
                results.append(("base64", decoded))
            }
        }
        for match in hexBlob.matches(in: text, options: [], range: range).prefix(64) {
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
