/// One node of `config.yaml`, with the line it starts on: what a module's settings read their own
/// section from (``ConfigSection``). The YAML parsing and the file checks are MoatConfig's; the rules of
/// each key live with the module that uses the value.
public struct ConfigNode: Sendable {
    public enum Value: Sendable {
        /// A scalar; `plain` when it was written without quotes (only a plain scalar can be a number or null).
        case scalar(String, plain: Bool)
        case mapping([(key: ConfigNode, value: ConfigNode)])
        case sequence([ConfigNode])
    }

    public let value: Value
    /// The 1-based line the node starts on; 0 when unknown.
    public let line: Int

    public init(_ value: Value, line: Int) {
        self.value = value
        self.line = line
    }

    /// Whether this is YAML's null (an empty value, `~`, `null`).
    public var isNull: Bool {
        if case .scalar(let text, let plain) = value {
            return plain && ["", "~", "null", "Null", "NULL"].contains(text)
        }
        return false
    }

    var kindName: String {
        switch value {
        case .scalar: "scalar"
        case .mapping: "mapping"
        case .sequence: "list"
        }
    }

    // MARK: Typed readers: each failure names the key and what is allowed.

    /// The keys of a mapping, each one of `allowed` and none twice; an empty section is no keys.
    public func mapping(path: String, allowed: [String]) throws(ConfigError) -> [(String, ConfigNode)] {
        guard case .mapping(let mapping) = value else {
            if isNull { return [] }  // an empty section (`gateway:` with nothing under it) keeps the defaults
            throw fail(path.isEmpty ? "(top level)" : path, "must be a mapping of keys, one per line (key: value)")
        }
        var seen = Set<String>()
        var result: [(String, ConfigNode)] = []
        for (keyNode, node) in mapping {
            guard case .scalar(let key, _) = keyNode.value else {
                throw keyNode.fail(path, "keys must be plain words")
            }
            let fullKey = path.isEmpty ? key : path + "." + key
            guard allowed.contains(key) else {
                var message = "unknown key"
                if let suggestion = Self.closest(to: key, in: allowed) {
                    message += " (did you mean \(path.isEmpty ? suggestion : path + "." + suggestion)?)"
                } else {
                    let scope = path.isEmpty ? "at the top level" : "under \(path)"
                    message += "; allowed \(scope): \(allowed.joined(separator: ", "))"
                }
                throw keyNode.fail(Self.printable(fullKey), message)
            }
            guard seen.insert(key).inserted else {
                throw keyNode.fail(fullKey, "appears twice; keep one")
            }
            result.append((key, node))
        }
        return result
    }

    /// A scalar's text and whether it was plain.
    public func scalar(path: String, expected: String) throws(ConfigError) -> (text: String, plain: Bool) {
        guard case .scalar(let text, let plain) = value else {
            throw fail(path, "must be \(expected), not a \(kindName)")
        }
        return (text, plain)
    }

    /// A non-empty string.
    public func string(path: String) throws(ConfigError) -> String {
        let value = try scalar(path: path, expected: "a string")
        if isNull { throw fail(path, "must be a string, not empty") }
        return value.text
    }

    /// A string, or nil when empty or null (a file path that may be left out).
    public func optionalString(path: String) throws(ConfigError) -> String? {
        let value = try scalar(path: path, expected: "a file path")
        if isNull || value.text.isEmpty { return nil }
        return value.text
    }

    /// A whole number within `range`; `allowed` says what may be written.
    public func integer(path: String, range: ClosedRange<Int>, allowed: String) throws(ConfigError) -> Int {
        let value = try scalar(path: path, expected: "a number")
        guard value.plain, let number = Int(value.text) else {
            throw fail(path, "must be a whole number (\(allowed)), not \"\(Self.printable(value.text))\"")
        }
        guard range.contains(number) else {
            throw fail(path, "\(number) is out of range: must be \(allowed)")
        }
        return number
    }

    /// A list of strings, each with its node (for messages about one entry); null is an empty list.
    public func stringList(path: String) throws(ConfigError) -> [(String, ConfigNode)] {
        if isNull { return [] }
        guard case .sequence(let sequence) = value else {
            throw fail(path, "must be a list, e.g. [laptop.tail1234.ts.net]")
        }
        var result: [(String, ConfigNode)] = []
        for item in sequence {
            result.append((try item.string(path: path), item))
        }
        return result
    }

    /// One of an enumeration's raw values.
    public func enumeration<Choice: RawRepresentable & CaseIterable>(
        path: String
    ) throws(ConfigError) -> Choice where Choice.RawValue == String {
        let choices = Choice.allCases.map(\.rawValue)
        let value = try scalar(path: path, expected: "one of \(choices.joined(separator: ", "))")
        guard let result = Choice(rawValue: value.text) else {
            throw fail(
                path, "\"\(Self.printable(value.text))\" is not allowed: use one of \(choices.joined(separator: ", "))")
        }
        return result
    }

    /// An error at this node's line.
    public func fail(_ path: String, _ message: String) -> ConfigError {
        ConfigError(line: line, path: path, message: message)
    }

    /// User input echoed in a message is cut short and stripped of control characters, so a hostile
    /// config value cannot forge terminal output or flood the log.
    public static func printable(_ text: String, limit: Int = 64) -> String {
        PrintableText.excerpt(text, limit: limit)
    }

    /// The allowed key nearest to `key` by edit distance, if it is close enough to be a typo.
    static func closest(to key: String, in allowed: [String]) -> String? {
        let scored = allowed.map { ($0, editDistance(key.lowercased(), $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let limit = max(1, min(3, best.0.count / 3))
        return best.1 <= limit ? best.0 : nil
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
    /// neighbours each cost 1, so `prot` is one step from `port`.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in stride(from: 1, through: a.count, by: 1) {
            for j in stride(from: 1, through: b.count, by: 1) {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}

/// A bad value in `config.yaml`: the line (0 when unknown), the dotted key and what is allowed. The
/// loader prefixes the file name, giving `config.yaml:7: gateway.port: …`.
public struct ConfigError: Error, Sendable {
    public let line: Int
    public let path: String
    public let message: String

    public init(line: Int, path: String, message: String) {
        self.line = line
        self.path = path
        self.message = message
    }
}

/// A module's settings value that reads its own section of `config.yaml`. The loader (MoatConfig)
/// parses the file and hands each section's node to the value that owns it.
public protocol ConfigSection: Sendable {
    /// Reads `node` (the section at the dotted `path`) into this value, over its defaults.
    mutating func read(_ node: ConfigNode, path: String) throws(ConfigError)
}
