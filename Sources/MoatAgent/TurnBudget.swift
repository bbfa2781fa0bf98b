public import Foundation

/// The pure budget decision for one turn: no I/O, no clock of its own. The pipeline asks it before each
/// model round and before each tool call, with what the turn has used so far.
public enum TurnBudget {
    /// What one turn has used so far.
    public struct Usage: Sendable, Hashable {
        public var rounds = 0
        public var toolCalls = 0
        /// Seconds since the turn started.
        public var elapsed: TimeInterval = 0
        /// Tokens the principal has used today, this turn included.
        public var tokensToday = 0

        public init(rounds: Int = 0, toolCalls: Int = 0, elapsed: TimeInterval = 0, tokensToday: Int = 0) {
            self.rounds = rounds
            self.toolCalls = toolCalls
            self.elapsed = elapsed
            self.tokensToday = tokensToday
        }
    }

    /// The budget that forbids another model round, if any.
    public static func beforeRound(_ usage: Usage, settings: AgentSettings) -> BudgetStop? {
        if usage.tokensToday >= settings.tokensPerDay {
            return stop(
                .dailyTokens,
                "used today's \(settings.tokensPerDay) model tokens (agent.tokens_per_day); "
                    + "it resets at midnight UTC")
        }
        if usage.rounds >= settings.maxRoundsPerTurn {
            return stop(.rounds, "took \(settings.maxRoundsPerTurn) model rounds (agent.max_rounds_per_turn)")
        }
        return wallTime(usage, settings: settings)
    }

    /// The budget that forbids another tool call, if any.
    public static func beforeToolCall(_ usage: Usage, settings: AgentSettings) -> BudgetStop? {
        if usage.toolCalls >= settings.maxToolCallsPerTurn {
            return stop(
                .toolCalls, "made \(settings.maxToolCallsPerTurn) tool calls (agent.max_tool_calls_per_turn)")
        }
        return wallTime(usage, settings: settings)
    }

    private static func wallTime(_ usage: Usage, settings: AgentSettings) -> BudgetStop? {
        guard usage.elapsed >= settings.turnTimeLimit else { return nil }
        return stop(.wallTime, "ran for \(Int(settings.turnTimeLimit)) seconds (agent.turn_seconds)")
    }

    private static func stop(_ limit: BudgetStop.Limit, _ what: String) -> BudgetStop {
        let next =
            limit == .dailyTokens
            ? "" : " Send another message to go on; the owner can raise the limit in config.yaml."
        return BudgetStop(limit: limit, message: "Moat stopped this turn: it \(what).\(next)")
    }
}
