public import Foundation
public import MoatCore

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
        let keys = ["provider", "system_prompt"] + Self.numberRanges.map(\.key)
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
