import Foundation
import GRDB
public import MoatPolicy
import MoatProviders
import MoatStore

/// A conversation as the owner's console lists it.
public struct ConversationSummary: Sendable, Equatable {
    public let id: String
    public let channel: String
    /// `owner` or `contact:<id>`.
    public let principal: String
    /// Milliseconds since 1970.
    public let createdAt: Int64
    /// When its last message was stored (milliseconds since 1970).
    public let lastAt: Int64
    public let messages: Int
    public let toolCalls: Int
    /// False when the row's MAC does not verify (the principal shown may have been changed in moat.db).
    public let verified: Bool
}

/// One conversation, turn by turn, for the owner's console: what was said, each tool call with the
/// gateway's decision, and which turns ran tainted.
public struct ConversationTranscript: Sendable {
    /// A stored message; `calls` are the tool calls an assistant message asked for.
    public struct Message: Sendable, Equatable {
        public let role: String
        public let content: String
        public let calls: [String]
        public let createdAt: Int64
    }

    /// A tool call and what the gateway decided, as recorded when it was decided.
    public struct Call: Sendable, Equatable {
        public let tool: String
        public let domain: String
        public let arguments: String
        public let destination: String
        public let level: Int
        /// ``CallDecision``'s raw value.
        public let decision: String
        /// What happened afterwards (`ran`, `pending`, `approved`, `denied`, …).
        public let outcome: String
        /// The taint reasons when it was decided.
        public let taint: String
        public let approvalID: String?
        public let createdAt: Int64
    }

    public struct Turn: Sendable {
        public let id: String
        public let startedAt: Int64
        public let messages: [Message]
        public let calls: [Call]
        /// Why the conversation was tainted by the end of this turn (empty: it was not).
        public let taint: [String]
        /// The untrusted or flagged reads recorded during this turn (after the previous turn ended).
        public let taintedHere: [String]
    }

    public let summary: ConversationSummary
    public let turns: [Turn]
    /// The conversation's taint now.
    public let taint: [String]
}

extension Agent {
    /// The most recently active conversations, newest first.
    public nonisolated func conversations(limit: Int = 200) async throws -> [ConversationSummary] {
        let authenticator = store.authenticator
        return try await store.database.pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.*, coalesce(m.last, c.created_at) AS last_at, coalesce(m.count, 0) AS message_count,
                      (SELECT count(*) FROM agent_tool_calls t WHERE t.conversation = c.id) AS call_count
                    FROM agent_conversations c
                    LEFT JOIN (SELECT conversation, max(created_at) AS last, count(*) AS count
                               FROM agent_messages GROUP BY conversation) m ON m.conversation = c.id
                    ORDER BY last_at DESC, c.id LIMIT ?
                    """,
                arguments: [limit])
            return rows.map { Self.summary($0, authenticator: authenticator) }
        }
    }

    /// Conversation `id` with its last `messageLimit` messages and their turns' tool calls, or nil when
    /// there is no such conversation.
    public nonisolated func transcript(_ id: String, messageLimit: Int = 400) async throws -> ConversationTranscript? {
        let authenticator = store.authenticator
        let read = try await store.database.pool.read { db -> (ConversationSummary, [Row], [Row])? in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT c.*, coalesce((SELECT max(created_at) FROM agent_messages WHERE conversation = c.id),
                          c.created_at) AS last_at,
                          (SELECT count(*) FROM agent_messages WHERE conversation = c.id) AS message_count,
                          (SELECT count(*) FROM agent_tool_calls WHERE conversation = c.id) AS call_count
                        FROM agent_conversations c WHERE c.id = ?
                        """, arguments: [id])
            else { return nil }
            let messages = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM (SELECT id, turn, role, content, tool_calls, created_at FROM agent_messages
                    WHERE conversation = ? ORDER BY id DESC LIMIT ?) ORDER BY id
                    """, arguments: [id, messageLimit])
            let calls = try Row.fetchAll(
                db, sql: "SELECT * FROM agent_tool_calls WHERE conversation = ? ORDER BY created_at, rowid",
                arguments: [id])
            return (Self.summary(row, authenticator: authenticator), messages, calls)
        }
        guard let (summary, messageRows, callRows) = read else { return nil }
        let history = try await policy.taintHistory(of: id)
        return Self.transcript(summary, messageRows, callRows, history)
    }

    private static func summary(_ row: Row, authenticator: RowAuthenticator) -> ConversationSummary {
        let stored = ConversationRow(
            id: row["id"], channel: row["channel"], principal: row["principal"], createdAt: row["created_at"])
        return ConversationSummary(
            id: stored.id, channel: stored.channel, principal: stored.principal, createdAt: stored.createdAt,
            lastAt: row["last_at"], messages: row["message_count"], toolCalls: row["call_count"],
            verified: authenticator.verify(row["mac"], of: stored))
    }

    /// Groups the rows by turn (in the order their first message was stored) and works out each turn's
    /// taint from the taint history: the reasons recorded up to the turn's last step since the last clear.
    private static func transcript(
        _ summary: ConversationSummary, _ messageRows: [Row], _ callRows: [Row], _ history: [TaintEvent]
    ) -> ConversationTranscript {
        var order: [String] = []
        var messages: [String: [ConversationTranscript.Message]] = [:]
        for row in messageRows {
            let turn: String = row["turn"]
            if messages[turn] == nil { order.append(turn) }
            let callsText: String = row["tool_calls"]
            let calls =
                callsText.isEmpty ? [] : (try? JSONDecoder().decode([ToolCall].self, from: Data(callsText.utf8))) ?? []
            messages[turn, default: []].append(
                .init(
                    role: row["role"], content: row["content"], calls: calls.map { $0.name + " " + $0.arguments },
                    createdAt: row["created_at"]))
        }
        var calls: [String: [ConversationTranscript.Call]] = [:]
        for row in callRows {
            let turn: String = row["turn"]
            calls[turn, default: []].append(
                .init(
                    tool: row["tool"], domain: row["domain"], arguments: row["arguments"],
                    destination: row["destination"], level: row["level"], decision: row["decision"],
                    outcome: row["outcome"], taint: row["taint"], approvalID: row["approval_id"],
                    createdAt: row["created_at"]))
        }
        // A taint is recorded while its turn runs, before that turn's messages are stored (a resumed
        // turn stores its messages after the approved call ran), so each event belongs to the first turn
        // ending at or after it.
        var previousEnd = Int64.min
        let turns = order.map { turn -> ConversationTranscript.Turn in
            let turnMessages = messages[turn] ?? []
            let turnCalls = calls[turn] ?? []
            let times = turnMessages.map(\.createdAt) + turnCalls.map(\.createdAt)
            let (start, end) = (times.min() ?? 0, times.max() ?? 0)
            defer { previousEnd = max(previousEnd, end) }
            return .init(
                id: turn, startedAt: start, messages: turnMessages, calls: turnCalls,
                taint: TaintEvent.reasons(history, upTo: end),
                taintedHere: history.compactMap {
                    $0.createdAt > previousEnd && $0.createdAt <= end ? $0.reason : nil
                })
        }
        return ConversationTranscript(summary: summary, turns: turns, taint: TaintEvent.reasons(history))
    }

}
