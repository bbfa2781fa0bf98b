public import Foundation
import GRDB
public import MoatStore

/// What the owner's console overview counts from the audit log: messages and tool calls per hour, and
/// the last `moat audit verify` result.
public struct AuditActivity: Sendable, Equatable {
    /// One clock hour (UTC).
    public struct Hour: Sendable, Equatable {
        /// The hour's start as `2026-12-06T17`.
        public let hour: String
        /// Messages the agent took in (`agent.message`).
        public let messages: Int
        /// Tool calls that ran (`agent.tool.run`).
        public let toolCalls: Int
    }

    /// The last 24 clock hours, oldest first, the current hour last; hours without entries count 0.
    public let hours: [Hour]
    /// Messages and tool calls since midnight UTC.
    public let messagesToday, toolCallsToday: Int
    /// The last `audit.verify` entry: its time and outcome (`intact` / `broken`), nil when never run.
    public let lastVerify: (time: String, outcome: String)?

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.hours == rhs.hours && lhs.messagesToday == rhs.messagesToday && lhs.toolCallsToday == rhs.toolCallsToday
            && lhs.lastVerify?.time == rhs.lastVerify?.time && lhs.lastVerify?.outcome == rhs.lastVerify?.outcome
    }

    /// Reads the counts at `now` from `database` (on its own queue; entry times are RFC 3339 UTC, so
    /// their first 13 characters name the hour).
    public static func read(_ database: MoatDatabase, now: Date = Date()) async throws -> AuditActivity {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        let hourStarts = (0..<24).reversed().map { back in
            String(formatter.string(from: now.addingTimeInterval(-3600 * Double(back))).prefix(13))
        }
        let today = String(hourStarts[23].prefix(10))
        let since = min(hourStarts[0], today)
        return try await database.pool.read { db in
            var counts: [String: (Int, Int)] = [:]
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT substr(time, 1, 13) AS hour,
                      SUM(action = 'agent.message') AS messages, SUM(action = 'agent.tool.run') AS tools
                    FROM audit_entries
                    WHERE time >= ? AND action IN ('agent.message', 'agent.tool.run')
                    GROUP BY hour
                    """,
                arguments: [since])
            for row in rows {
                counts[row["hour"]] = (row["messages"] ?? 0, row["tools"] ?? 0)
            }
            let todays = counts.filter { $0.key.hasPrefix(today) }.values
            let verify = try Row.fetchOne(
                db,
                sql: "SELECT time, outcome FROM audit_entries WHERE action = 'audit.verify' ORDER BY seq DESC LIMIT 1")
            return AuditActivity(
                hours: hourStarts.map { Hour(hour: $0, messages: counts[$0]?.0 ?? 0, toolCalls: counts[$0]?.1 ?? 0) },
                messagesToday: todays.reduce(0) { $0 + $1.0 },
                toolCallsToday: todays.reduce(0) { $0 + $1.1 },
                lastVerify: verify.map { (time: $0["time"], outcome: $0["outcome"]) })
        }
    }
}
