public import Foundation
import GRDB
import MoatCore
public import MoatStore

/// Model tokens used, per UTC day, principal and provider, as the agent records them after each model
/// round (`agent_token_usage` in `moat.db`). Read by `moat usage` and `GET /api/usage`; the agent's
/// daily budget (`agent.tokens_per_day`) is checked against the same rows.
public struct UsageLedger: Sendable {
    /// The longest report asked for at once.
    public static let maximumDays = 366

    let database: MoatDatabase
    /// Each provider's `daily_token_limit`, shown next to its use.
    let dailyLimits: [String: Int]

    public init(database: MoatDatabase, dailyLimits: [String: Int] = [:]) {
        self.database = database
        self.dailyLimits = dailyLimits
    }

    /// One day's use of one provider by one principal.
    public struct Entry: Sendable, Equatable, Codable {
        /// `YYYY-MM-DD`, UTC.
        public let day: String
        /// `owner` or `contact:<id>`.
        public let principal: String
        /// The provider's name under `providers:` (`""` for use recorded before providers were recorded).
        public let provider: String
        public let inputTokens: Int
        public let outputTokens: Int
        /// Model rounds (requests to the provider).
        public let rounds: Int
        /// The provider's `daily_token_limit` (every principal together), when it has one.
        public internal(set) var dailyLimit: Int?
    }

    /// The use of the `days` UTC days up to and including `now`'s, newest day first, then by principal
    /// and provider. `days` must be 1…``maximumDays``.
    public func report(days: Int, now: Date = Date()) async throws(AgentError) -> [Entry] {
        guard (1...Self.maximumDays).contains(days) else {
            throw AgentError(.invalidInput, "days must be from 1 to \(Self.maximumDays); \(days) was given")
        }
        let first = Agent.day(now.addingTimeInterval(-Double(days - 1) * 86_400))
        let dailyLimits = self.dailyLimits
        do {
            return try await database.pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT day, principal, provider, input_tokens, output_tokens, rounds
                        FROM agent_token_usage WHERE day >= ? ORDER BY day DESC, principal, provider
                        """,
                    arguments: [first]
                ).map { row in
                    let provider: String = row["provider"]
                    return Entry(
                        day: row["day"], principal: row["principal"], provider: provider,
                        inputTokens: row["input_tokens"], outputTokens: row["output_tokens"], rounds: row["rounds"],
                        dailyLimit: dailyLimits[provider])
                }
            }
        } catch {
            throw AgentError(.storage, "cannot read token usage from moat.db: \(ExitStatus.message(for: error))")
        }
    }
}
