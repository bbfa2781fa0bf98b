import MoatCore

/// Finds `{{secret:NAME}}` in a tool request and substitutes values the policies allow.
///
/// All-or-nothing: every placeholder is checked before any is substituted, and a malformed one is an
/// error rather than text passed through, so a request never leaves half-resolved.
enum PlaceholderResolver {
    static let opening = Array("{{secret:".utf8)
    static let closing = Array("}}".utf8)

    static func resolve(
        _ text: String,
        entries: [String: SecretEntry],
        tool: String,
        host: String?
    ) throws(VaultError) -> String {
        let bytes = Array(text.utf8)
        var pieces: [(literal: ArraySlice<UInt8>, entry: SecretEntry?)] = []
        var start = 0
        var index = 0
        while let found = firstIndex(of: opening, in: bytes, from: index) {
            let nameStart = found + opening.count
            guard let end = firstIndex(of: closing, in: bytes, from: nameStart), end - nameStart <= 64 else {
                throw VaultError(
                    .invalidPlaceholder,
                    "a {{secret:…}} placeholder at byte \(found) is not closed with }} after a name of at most 64 "
                        + "characters"
                )
            }
            let name = String(decoding: bytes[nameStart..<end], as: UTF8.self)
            guard SecretName.isValid(name) else {
                throw VaultError(
                    .invalidPlaceholder,
                    "placeholder {{secret:\(SecretPolicy.printable(name))}} does not name a valid secret "
                        + "(names look like GITHUB_TOKEN)"
                )
            }
            let entry = try check(name, entries: entries, tool: tool, host: host)
            pieces.append((bytes[start..<found], entry))
            start = end + closing.count
            index = start
        }
        guard !pieces.isEmpty else { return text }
        pieces.append((bytes[start...], nil))
        var output: [UInt8] = []
        for piece in pieces {
            output += piece.literal
            if let entry = piece.entry {
                entry.value.withUnsafeBytes { output += $0 }
            }
        }
        defer { output.withUnsafeMutableBytes { SecretBytes.wipe($0) } }
        return String(decoding: output, as: UTF8.self)
    }

    /// The entry for `name` if its policy allows `tool` and `host`; otherwise an error naming the secret
    /// and the rule that refused it.
    static func check(
        _ name: String,
        entries: [String: SecretEntry],
        tool: String,
        host: String?
    ) throws(VaultError) -> SecretEntry {
        guard let entry = entries[name] else {
            throw VaultError(.unknownSecret, "{{secret:\(name)}}: the vault has no secret named \(name)")
        }
        let policy = entry.policy
        guard policy.allows(tool: tool) else {
            let allowed = policy.tools.isEmpty ? "no tool" : "only " + policy.tools.joined(separator: ", ")
            throw VaultError(
                .policyDenied,
                "secret \(name) may not be given to tool '\(SecretPolicy.printable(tool))': its policy allows "
                    + "\(allowed) (change it with moat vault add \(name) --replace --allow-tool …)"
            )
        }
        guard policy.allows(host: host) else {
            let allowed = policy.hosts.isEmpty ? "no host" : "only " + policy.hosts.joined(separator: ", ")
            let destination = host.map { "to \(SecretPolicy.printable($0))" } ?? "to a destination not known in advance"
            throw VaultError(
                .policyDenied,
                "secret \(name) may not be sent \(destination) by tool '\(tool)': its policy allows \(allowed)"
            )
        }
        guard entry.value.withUnsafeBytes({ String(validating: $0, as: UTF8.self) != nil }) else {
            throw VaultError(.invalidValue, "secret \(name) is binary (not UTF-8) and cannot be placed in a request")
        }
        return entry
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        for index in start...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }
}

extension SecretName {
    /// The valid names of the `{{secret:NAME}}` placeholders in `text`, each once, in order of first
    /// appearance — what a request will carry once ``UnlockedVault/resolvePlaceholders(in:tool:host:)``
    /// resolved it (a malformed placeholder is that call's error, not this one's: it is left out).
    public static func placeholders(in text: String) -> [String] {
        let bytes = Array(text.utf8)
        var names: [String] = []
        var index = 0
        while let found = PlaceholderResolver.firstIndex(of: PlaceholderResolver.opening, in: bytes, from: index) {
            let nameStart = found + PlaceholderResolver.opening.count
            guard let end = PlaceholderResolver.firstIndex(of: PlaceholderResolver.closing, in: bytes, from: nameStart)
            else { break }
            let name = String(decoding: bytes[nameStart..<end], as: UTF8.self)
            if isValid(name), !names.contains(name) { names.append(name) }
            index = end + PlaceholderResolver.closing.count
        }
        return names
    }
}
