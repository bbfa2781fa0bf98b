public import Foundation
public import MoatCore
public import MoatProviders

extension AgentSettings: ConfigSection {
    /// Each whole-number key, its range and its unit.
    static let numberRanges: [(key: String, range: ClosedRange<Int>, unit: String)] = [
        ("max_tool_calls_per_turn", 1...200, " tool calls"), ("max_rounds_per_turn", 1...100, " rounds"),
        ("turn_seconds", 1...3600, " seconds"), ("tokens_per_day", 1000...1_000_000_000, " tokens"),
        ("messages_per_minute", 1...6000, " messages"), ("tool_output_bytes", 256...1_048_576, " bytes"),
        ("history_messages", 2...1000, " messages"), ("message_bytes", 1...1_048_576, " bytes"),
        ("context_tokens", 1024...10_000_000, " tokens"),
    ]

    /// Reads `agent:`.
    public mutating func read(_ node: ConfigNode, path: String) throws(ConfigError) {
        let keys = ["provider", "system_prompt", "routes"] + Self.numberRanges.map(\.key)
        for (key, value) in try node.mapping(path: path, allowed: keys) {
            let keyPath = path + "." + key
            switch key {
            case "provider":
                let name = try value.string(path: keyPath)
                guard name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_".contains($0) })
                else {
                    throw value.fail(keyPath, "must name a provider under providers: (letters, digits, - and _)")
                }
                provider = name
            case "routes":
                routes = try Self.routes(value, path: keyPath)
            case "system_prompt":
                let text = try value.string(path: keyPath)
                guard text.utf8.count <= 32 * 1024 else {
                    throw value.fail(keyPath, "is longer than 32 KiB; shorten it")
                }
                systemPrompt = text
            default:
                guard let limit = Self.numberRanges.first(where: { $0.key == key }) else { continue }
                let number = try value.integer(
                    path: keyPath, range: limit.range,
                    allowed: "a whole number from \(limit.range.lowerBound) to \(limit.range.upperBound)\(limit.unit)")
                set(key, number)
            }
        }
    }

    /// Reads `routes:`: a mapping from a principal pattern to a list of provider names.
    static func routes(_ node: ConfigNode, path: String) throws(ConfigError) -> [ProviderRoute] {
        guard case .mapping(let entries) = node.value else {
            if node.isNull { return [] }
            throw node.fail(path, "must be a mapping from principals to provider lists, e.g. owner: [local, claude]")
        }
        var routes: [ProviderRoute] = []
        for (keyNode, value) in entries {
            let text = if case .scalar(let key, _) = keyNode.value { key } else { "" }
            let keyPath = path + "." + ConfigNode.printable(text)
            guard let pattern = PrincipalPattern(text) else {
                throw keyNode.fail(keyPath, "is not a principal: write \(PrincipalPattern.forms)")
            }
            guard !routes.contains(where: { $0.principals == pattern }) else {
                throw keyNode.fail(keyPath, "appears twice; keep one")
            }
            let names = try value.stringList(path: keyPath).map(\.0)
            guard !names.isEmpty else {
                throw value.fail(keyPath, "lists no provider; name at least one under providers:, e.g. [local]")
            }
            guard Set(names).count == names.count else {
                throw value.fail(keyPath, "names a provider twice; list each once, in the order to try them")
            }
            routes.append(ProviderRoute(principals: pattern, providers: names, line: keyNode.line))
        }
        return routes
    }

    /// The first route naming a provider that is not under `providers:`, as an error that says which
    /// key and how to fix it; nil when every name is known.
    public func routeProblem(_ providers: ProvidersSettings) -> ConfigError? {
        let known = providers.providers.map(\.name)
        for route in routes {
            for name in route.providers where !known.contains(name) {
                return ConfigError(
                    line: route.line, path: "agent.routes.\(ConfigNode.printable(route.principals.description))",
                    message: "names provider \(ConfigNode.printable(name)), which is not under providers: "
                        + "(\(known.joined(separator: ", "))); add providers.\(ConfigNode.printable(name)) "
                        + "or remove it from the list")
            }
        }
        return nil
    }

    private mutating func set(_ key: String, _ number: Int) {
        switch key {
        case "max_tool_calls_per_turn": maxToolCallsPerTurn = number
        case "max_rounds_per_turn": maxRoundsPerTurn = number
        case "turn_seconds": turnTimeLimit = TimeInterval(number)
        case "tokens_per_day": tokensPerDay = number
        case "messages_per_minute": messagesPerMinute = number
        case "tool_output_bytes": toolOutputBytes = number
        case "history_messages": historyMessages = number
        case "context_tokens": contextTokens = number
        default: messageBytes = number
        }
    }
}
