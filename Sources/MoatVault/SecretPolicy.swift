import MoatCore

/// Which tools may receive a secret, and to which hosts they may send it.
///
/// A placeholder resolves only when both lists allow the request: the tool must be listed by name and
/// the destination host must match an entry. An empty list allows nothing, so a secret added without
/// a policy is usable only inside the gateway (for example as the audit signing key), never by a tool.
///
/// Host entries are exact names or IP literals (`api.github.com`, `10.0.0.5`), `*.example.com` for any
/// subdomain of example.com (not example.com itself), or `*` for any host, including requests whose
/// destination is not known (such as a shell command). Matching ignores case and a trailing dot.
public struct SecretPolicy: Sendable, Hashable, Codable {
    /// Tool names, sorted, without duplicates.
    public let tools: [String]
    /// Host patterns, normalized to lower case, sorted, without duplicates.
    public let hosts: [String]

    /// A policy that allows nothing.
    public static let none = SecretPolicy(validatedTools: [], hosts: [])

    /// Validates and normalizes the lists; the error names the first entry that is not valid.
    public init(tools: [String], hosts: [String]) throws(VaultError) {
        var checkedTools: Set<String> = []
        for tool in tools {
            guard Self.isValidTool(tool) else {
                throw VaultError(
                    .invalidPolicy,
                    "tool '\(Self.printable(tool))' is not a valid tool name: use lower-case letters, digits, "
                        + "'_', '-' or '.', starting with a letter, at most 64 characters"
                )
            }
            checkedTools.insert(tool)
        }
        var checkedHosts: Set<String> = []
        for host in hosts {
            guard let normalized = Self.normalizedPattern(host) else {
                throw VaultError(
                    .invalidPolicy,
                    "host '\(Self.printable(host))' is not a valid host: use a name (api.example.com), "
                        + "an IP address, *.example.com for its subdomains, or * for any host"
                )
            }
            checkedHosts.insert(normalized)
        }
        self.init(validatedTools: checkedTools.sorted(), hosts: checkedHosts.sorted())
    }

    private init(validatedTools: [String], hosts: [String]) {
        self.tools = validatedTools
        self.hosts = hosts
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            tools: try container.decode([String].self, forKey: .tools),
            hosts: try container.decode([String].self, forKey: .hosts)
        )
    }

    /// Whether `tool` is listed.
    public func allows(tool: String) -> Bool {
        tools.contains(tool)
    }

    /// Whether `host` (nil when the destination is unknown) matches an entry.
    public func allows(host: String?) -> Bool {
        if hosts.contains("*") { return true }
        guard let host, let normalized = Self.normalizedHost(host) else { return false }
        for pattern in hosts {
            if pattern.hasPrefix("*.") {
                let suffix = pattern.dropFirst(1)  // ".example.com"
                if normalized.hasSuffix(suffix) && normalized.count > suffix.count { return true }
            } else if pattern == normalized {
                return true
            }
        }
        return false
    }

    /// A one-line, human-readable form: `tools: http; hosts: api.github.com`.
    public var summary: String {
        let toolText = tools.isEmpty ? "none" : tools.joined(separator: ", ")
        let hostText = hosts.isEmpty ? "none" : hosts.joined(separator: ", ")
        return "tools: \(toolText); hosts: \(hostText)"
    }

    static func isValidTool(_ tool: String) -> Bool {
        isIdentifier(tool, letters: UInt8(ascii: "a")...UInt8(ascii: "z"), extra: "_-.", maximumLength: 64)
    }

    /// Whether `text` is 1 to `maximumLength` ASCII letters (in `letters`), digits and `extra`
    /// characters, starting with a letter unless `digitFirst` allows a digit there.
    static func isIdentifier(
        _ text: String,
        letters: ClosedRange<UInt8>,
        extra: String,
        maximumLength: Int,
        digitFirst: Bool = false
    ) -> Bool {
        let bytes = Array(text.utf8)
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard (1...maximumLength).contains(bytes.count),
            letters.contains(bytes[0]) || (digitFirst && digits.contains(bytes[0]))
        else { return false }
        return bytes.allSatisfy { letters.contains($0) || digits.contains($0) || extra.utf8.contains($0) }
    }

    /// A host pattern in canonical form, or nil when it is not valid.
    static func normalizedPattern(_ pattern: String) -> String? {
        if pattern == "*" { return pattern }
        if pattern.hasPrefix("*.") {
            guard let rest = normalizedHost(String(pattern.dropFirst(2))), IPAddress(rest) == nil else { return nil }
            return "*." + rest
        }
        return normalizedHost(pattern)
    }

    /// A destination host in canonical form (lower case, no trailing dot, IP literals canonical), or nil.
    static func normalizedHost(_ host: String) -> String? {
        if let address = IPAddress(host) { return address.description }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253, !labels.isEmpty else { return nil }
        for label in labels {
            let valid = isIdentifier(
                String(label), letters: UInt8(ascii: "a")...UInt8(ascii: "z"), extra: "-", maximumLength: 63,
                digitFirst: true)
            guard valid, !label.hasSuffix("-") else { return nil }
        }
        return name
    }

    /// Input echoed in an error: control characters removed and the length capped.
    static func printable(_ text: String) -> String {
        String(PrintableText.strip(text).prefix(80))
    }
}

/// A secret's name: `[A-Z][A-Z0-9_]{0,63}`, so it fits in a placeholder and an environment-style key.
public enum SecretName {
    /// Whether `name` is a valid secret name.
    public static func isValid(_ name: String) -> Bool {
        SecretPolicy.isIdentifier(name, letters: UInt8(ascii: "A")...UInt8(ascii: "Z"), extra: "_", maximumLength: 64)
    }

    /// Throws a clear error unless `name` is valid.
    public static func validate(_ name: String) throws(VaultError) {
        guard isValid(name) else {
            throw VaultError(
                .invalidName,
                "'\(SecretPolicy.printable(name))' is not a valid secret name: use upper-case letters, digits and "
                    + "'_', starting with a letter, at most 64 characters (for example GITHUB_TOKEN)"
            )
        }
    }
}
