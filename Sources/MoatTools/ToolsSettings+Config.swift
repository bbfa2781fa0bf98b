public import MoatCore

extension ToolsSettings: ConfigSection {
    /// The number keys of each part of `tools`, with their ranges and units.
    static let limits: [String: [(key: String, range: ClosedRange<Int>, unit: String)]] = [
        "": [("output_bytes", 1024...(1 << 20), " bytes")],
        "files": [
            ("read_bytes", 1024...(16 << 20), " bytes"), ("write_bytes", 1024...(4 << 20), " bytes"),
            ("list_entries", 10...100_000, " entries"),
        ],
        "shell": [("time_limit_seconds", 1...3600, " seconds")],
        "web": [("max_bytes", (1 << 20)...(64 << 20), " bytes"), ("time_limit_seconds", 1...600, " seconds")],
    ]

    /// Reads `tools`.
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        let sections = ["files", "shell", "web"]
        for (key, value) in try node.mapping(path: path, allowed: ["workspace", "output_bytes"] + sections) {
            let keyPath = path + "." + key
            switch key {
            case "workspace":
                guard let text = try value.optionalString(path: keyPath) else {
                    workspace = nil
                    continue
                }
                guard text.hasPrefix("/"), !text.utf8.contains(0) else {
                    throw value.fail(
                        keyPath, "must be an absolute path (or left out for workspace/ in the state directory)")
                }
                workspace = text
            case "output_bytes":
                outputBytes = try Self.number(value, path: keyPath, section: "", key: key)
            default:
                try readSection(key, value, path: keyPath)
            }
        }
    }

    private mutating func readSection(_ section: String, _ node: ConfigNode, path: String) throws(ConfigError) {
        let numbers = Self.limits[section] ?? []
        let allowed = numbers.map(\.key) + (section == "shell" ? ["network"] : [])
        for (key, value) in try node.mapping(path: path, allowed: allowed) {
            let keyPath = path + "." + key
            if key == "network" {
                let text = try value.scalar(path: keyPath, expected: "true or false").text
                switch text {
                case "false": shellNetwork = false
                case "true":
                    throw value.fail(
                        keyPath,
                        "true is not supported yet: the sandbox has no network mode (Docs/Sandbox.md), so shell "
                            + "commands run without a network; remove the key or set it to false")
                default: throw value.fail(keyPath, "must be true or false")
                }
                continue
            }
            let number = try Self.number(value, path: keyPath, section: section, key: key)
            switch (section, key) {
            case ("files", "read_bytes"): readBytes = number
            case ("files", "write_bytes"): writeBytes = number
            case ("files", _): listEntries = number
            case ("shell", _): shellTimeLimit = .seconds(number)
            case ("web", "max_bytes"): fetchBytes = number
            default: fetchTimeLimit = .seconds(number)
            }
        }
    }

    private static func number(_ node: ConfigNode, path: String, section: String, key: String) throws(ConfigError)
        -> Int
    {
        let limit = limits[section]?.first { $0.key == key }
        let range = limit?.range ?? 0...0
        return try node.integer(
            path: path, range: range,
            allowed: "a whole number from \(range.lowerBound) to \(range.upperBound)\(limit?.unit ?? "")")
    }
}
