import Foundation
import GRDB
import MoatAudit
import MoatCore
import MoatProviders
import MoatStore

/// A conversation: who it belongs to. The MAC binds the principal to the id, so a database-only
/// attacker cannot make a contact's conversation continue (after an approval) as the owner's.
struct ConversationRow: Sendable, Hashable, AuthenticatedRow {
    static let macTable = "agent_conversations"
    let id: String
    let channel: String
    /// `owner` or `contact:<id>` (the ceilings are read from the verified contact grant each time).
    let principal: String
    let createdAt: Int64

    var macFields: [String] { [id, channel, principal, String(createdAt)] }
}

/// A tool call and the gateway's decision, fixed when it is made. The MAC covers everything an approval
/// resumes from (which conversation, which provider call id, the exact request), so a changed row is
/// refused; the outcome columns are filled in once afterwards and are informational.
struct ToolCallRow: Sendable, Hashable, AuthenticatedRow {
    static let macTable = "agent_tool_calls"
    let id: String
    let conversation: String
    let turn: String
    let round: Int
    /// The provider's id for the call (`call_…`).
    let callID: String
    let tool: String
    let domain: String
    let arguments: String
    let destination: String
    let level: Int
    let decision: CallDecision
    /// The trust decision's limits (`domain,principal,taint`).
    let limitedBy: String
    /// The taint reasons when the call was decided, `; `-separated.
    let taint: String
    let approvalID: String?
    let createdAt: Int64

    var macFields: [String] {
        [
            id, conversation, turn, String(round), callID, tool, domain, arguments, destination, String(level),
            decision.rawValue, limitedBy, taint, approvalID ?? "", String(createdAt),
        ]
    }
}

/// One stored message of a conversation.
struct StoredMessage: Sendable {
    let turn: String
    let message: ChatMessage
}

/// MoatAgent's reads and writes of `moat.db`.
///
/// Writes go through the audit log's group commit (``AuditLog/append(event:writing:)``): concurrent
/// turns' rows and audit entries share one transaction and one fsync, each write in its own savepoint,
/// and a step's rows and its audit entry (the message and `agent.message`, the round and
/// `agent.reply`) are durable together.
struct ConversationStore: Sendable {
    let database: MoatDatabase
    let authenticator: RowAuthenticator
    let writer: AuditLog

    init(database: MoatDatabase, authenticator: RowAuthenticator, audit: AuditLog) {
        self.database = database
        self.authenticator = authenticator
        self.writer = audit
    }

    /// What a turn's route is chosen from (``ProviderRouting/route(for:channel:chosen:)``): the verified
    /// conversation's channel ("" when it has none or fails its MAC) and the provider the owner chose
    /// when it opened. Neither changes once the conversation exists.
    struct RouteInputs: Sendable, Equatable {
        let channel: String
        let chosen: String?
    }

    /// Where a message opens its turn.
    enum Opening: Sendable {
        /// The conversation, and its route inputs as this transaction stored or found them.
        case opened(ConversationRow, RouteInputs)
        case duplicate
        case otherOwner
        case tampered
    }

    /// In one transaction: the conversation (created, or checked to belong to `principal` on `channel`),
    /// the idempotency key (refused when seen), and the inbound message.
    ///
    /// `entry` makes the audit entry of the outcome, appended in the same transaction.
    /// `entry` returning nil appends nothing. `durability` is the audit log's: ``AuditLog/Durability/withNextCommit``
    /// when nothing outside the process learns of the message before the turn's next durable commit.
    func open(
        _ message: InboundMessage, principal: String, turn: String, now: Int64, route: String? = nil,
        durability: AuditLog.Durability = .now, entry: @escaping @Sendable (Opening) -> AuditEvent?
    ) async throws -> Opening {
        let authenticator = self.authenticator
        return try await writer.append(event: entry, durability: durability) { db -> Opening in
            // Checks first, writes after: a refused message leaves nothing behind.
            let existing = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM agent_conversations WHERE id = ?"),
                arguments: [message.conversation])
            if let existing {
                let stored = Self.conversation(existing)
                guard authenticator.verify(existing["mac"], of: stored) else { return .tampered }
                guard stored.principal == principal, stored.channel == message.channel else { return .otherOwner }
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO agent_inbound (channel, sender_id, idempotency_key, conversation, turn, received_at)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """
            ).execute(
                arguments: [
                    message.channel, message.senderID, message.idempotencyKey, message.conversation, turn,
                    Int64((message.receivedAt.timeIntervalSince1970 * 1000).rounded(.down)),
                ])
            guard db.changesCount == 1 else { return .duplicate }
            let conversation =
                existing.map(Self.conversation)
                ?? ConversationRow(
                    id: message.conversation, channel: message.channel, principal: principal, createdAt: now)
            var chosen = route
            if existing != nil {
                chosen = try Self.route(conversation.id, db)
            } else {
                try db.cachedStatement(
                    sql:
                        "INSERT INTO agent_conversations (id, channel, principal, created_at, mac) VALUES (?, ?, ?, ?, ?)"
                ).execute(
                    arguments: [
                        conversation.id, conversation.channel, principal, now, authenticator.mac(conversation),
                    ])
                if let route { try Self.insertRoute(route, conversation: conversation.id, now: now, db) }
            }
            try Self.insert(
                [StoredMessage(turn: turn, message: ChatMessage(role: .user, content: message.text))],
                conversation: message.conversation, now: now, db)
            return .opened(conversation, RouteInputs(channel: conversation.channel, chosen: chosen))
        }
    }

    /// The route inputs of `conversation`, read together.
    func routeInputs(_ conversation: String) async throws -> RouteInputs {
        let authenticator = self.authenticator
        return try await database.pool.read { db in
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM agent_conversations WHERE id = ?"), arguments: [conversation])
            let channel = row.flatMap { row in
                let stored = Self.conversation(row)
                return authenticator.verify(row["mac"], of: stored) ? stored.channel : nil
            }
            return RouteInputs(channel: channel ?? "", chosen: try Self.route(conversation, db))
        }
    }

    /// The verified conversation `id`, or nil when there is none or its MAC fails.
    func conversation(_ id: String) async throws -> ConversationRow? {
        let authenticator = self.authenticator
        return try await database.pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT * FROM agent_conversations WHERE id = ?"), arguments: [id])
            else { return nil }
            let stored = Self.conversation(row)
            return authenticator.verify(row["mac"], of: stored) ? stored : nil
        }
    }

    /// The last `limit` messages of `conversation`, oldest first, never starting with a `tool` message
    /// (whose call would be cut off).
    private static func history(_ conversation: String, limit: Int, _ db: Database) throws -> [ChatMessage] {
        // Newest first from a cursor (its row is reused, not copied), then put in order.
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: """
                    SELECT role, content, tool_calls, tool_call_id FROM agent_messages
                    WHERE conversation = ? ORDER BY id DESC LIMIT ?
                    """),
            arguments: [conversation, limit])
        var messages: [ChatMessage] = []
        messages.reserveCapacity(limit)
        while let row = try rows.next() {
            if let message = Self.message(row) { messages.append(message) }
        }
        messages.reverse()
        while messages.first?.role == .tool { messages.removeFirst() }
        return messages
    }

    /// What a turn starts from, read in one transaction: the conversation's history (as
    /// ``history(_:limit:_:)``), what `taint` reads in it, and the tokens `principal` used on `day`.
    func turnStart<Taint: Sendable>(
        _ conversation: String, limit: Int, principal: String, day: String,
        taint: @escaping @Sendable (Database) throws -> Taint
    ) async throws -> (history: [ChatMessage], taint: Taint, tokens: Int) {
        try await database.pool.read { db in
            (
                try Self.history(conversation, limit: limit, db), try taint(db),
                try Self.tokensUsed(on: day, where: .principal, is: principal, db)
            )
        }
    }

    func append(_ messages: [StoredMessage], conversation: String, now: Int64) async throws {
        try await writer.write { db in try Self.insert(messages, conversation: conversation, now: now, db) }
    }

    /// Adds one model round's `usage` to `principal`'s use of `provider` on `day`, with `messages` of the
    /// same round, in one transaction with `entry` (when there is one) in the audit log.
    func recordRound(
        _ messages: [StoredMessage], conversation: String, principal: String, day: String, provider: String,
        usage: TokenUsage, now: Int64, entry: AuditEvent? = nil
    ) async throws {
        try await writer.append(entry) { db in
            try Self.insert(messages, conversation: conversation, now: now, db)
            try db.cachedStatement(
                sql: """
                    INSERT INTO agent_token_usage (principal, day, provider, input_tokens, output_tokens, rounds)
                    VALUES (?, ?, ?, ?, ?, 1)
                    ON CONFLICT (principal, day, provider) DO UPDATE SET
                      input_tokens = input_tokens + excluded.input_tokens,
                      output_tokens = output_tokens + excluded.output_tokens,
                      rounds = rounds + 1
                    """
            ).execute(
                arguments: [principal, day, provider, usage.input, usage.output])
        }
    }

    /// Tokens `principal` used on `day`, every provider together.
    func tokensUsed(principal: String, day: String) async throws -> Int {
        try await tokensUsed(on: day, where: .principal, is: principal)
    }

    /// Tokens every principal together used of `provider` on `day`.
    func tokensUsed(provider: String, day: String) async throws -> Int {
        try await tokensUsed(on: day, where: .provider, is: provider)
    }

    /// The column a token sum is taken over.
    enum UsageColumn: String {
        case principal, provider
    }

    private func tokensUsed(on day: String, where column: UsageColumn, is value: String) async throws -> Int {
        try await database.pool.read { db in try Self.tokensUsed(on: day, where: column, is: value, db) }
    }

    private static func tokensUsed(on day: String, where column: UsageColumn, is value: String, _ db: Database) throws
        -> Int
    {
        try Int.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM agent_token_usage
                    WHERE \(column.rawValue) = ? AND day = ?
                    """),
            arguments: [value, day]) ?? 0
    }

    /// The provider the owner chose for `conversation` when it opened, if any.
    func route(_ conversation: String) async throws -> String? {
        try await database.pool.read { db in try Self.route(conversation, db) }
    }

    private static func route(_ conversation: String, _ db: Database) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT provider FROM agent_conversation_routes WHERE conversation = ?"),
            arguments: [conversation])
    }

    /// Records that the owner is being told `provider` reached its daily limit on `day`; false when
    /// they were already told.
    func firstLimitNotice(provider: String, day: String, now: Int64) async throws -> Bool {
        try await writer.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO agent_provider_notices (provider, day, created_at) VALUES (?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """
            ).execute(arguments: [provider, day, now])
            return db.changesCount == 1
        }
    }

    private static func insertRoute(_ provider: String, conversation: String, now: Int64, _ db: Database) throws {
        try db.cachedStatement(
            sql: "INSERT INTO agent_conversation_routes (conversation, provider, created_at) VALUES (?, ?, ?)"
        ).execute(arguments: [conversation, provider, now])
    }

    func insert(_ call: ToolCallRow, outcome: String) async throws {
        let mac = authenticator.mac(call)
        try await writer.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO agent_tool_calls
                      (id, conversation, turn, round, call_id, tool, domain, arguments, destination, level, decision,
                       limited_by, taint, approval_id, created_at, mac, outcome)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    call.id, call.conversation, call.turn, call.round, call.callID, call.tool, call.domain,
                    call.arguments, call.destination, call.level, call.decision.rawValue, call.limitedBy, call.taint,
                    call.approvalID, call.createdAt, mac, outcome,
                ])
        }
    }

    /// Records how a call ended; `expected` is the outcome it must still have (so a call is finished once).
    /// Returns false when it had another outcome already.
    @discardableResult
    func finish(_ id: String, outcome: String, resultBytes: Int?, now: Int64, expected: String) async throws -> Bool {
        try await writer.write { db in
            try db.cachedStatement(
                sql: """
                    UPDATE agent_tool_calls SET outcome = ?, result_bytes = ?, finished_at = ?
                    WHERE id = ? AND outcome = ?
                    """
            ).execute(
                arguments: [outcome, resultBytes, now, id, expected])
            return db.changesCount == 1
        }
    }

    /// What is held under an approval id.
    enum HeldCall {
        /// No tool call holds this approval (one the policy engine made alone, or none at all).
        case none
        /// A row holds it, but it was changed outside Moat (its MAC fails, or its decision is unknown).
        case tampered
        /// The verified call and its current outcome.
        case held(ToolCallRow, outcome: String)
    }

    /// The tool call held under `approvalID`, verified.
    func call(approvalID: String) async throws -> HeldCall {
        let authenticator = self.authenticator
        return try await database.pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT * FROM agent_tool_calls WHERE approval_id = ?"),
                    arguments: [approvalID])
            else { return .none }
            guard let decision = CallDecision(rawValue: row["decision"]) else { return .tampered }
            let call = ToolCallRow(
                id: row["id"], conversation: row["conversation"], turn: row["turn"], round: row["round"],
                callID: row["call_id"], tool: row["tool"], domain: row["domain"], arguments: row["arguments"],
                destination: row["destination"], level: row["level"], decision: decision,
                limitedBy: row["limited_by"], taint: row["taint"], approvalID: row["approval_id"],
                createdAt: row["created_at"])
            guard authenticator.verify(row["mac"], of: call) else { return .tampered }
            return .held(call, outcome: row["outcome"])
        }
    }

    private static func conversation(_ row: Row) -> ConversationRow {
        ConversationRow(
            id: row["id"], channel: row["channel"], principal: row["principal"], createdAt: row["created_at"])
    }

    private static func insert(_ messages: [StoredMessage], conversation: String, now: Int64, _ db: Database) throws {
        for stored in messages {
            let message = stored.message
            let calls =
                message.toolCalls.isEmpty ? "" : String(decoding: try encoder.encode(message.toolCalls), as: UTF8.self)
            try db.cachedStatement(
                sql: """
                    INSERT INTO agent_messages (conversation, turn, role, content, tool_calls, tool_call_id, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    conversation, stored.turn, message.role.rawValue, message.content, calls, message.toolCallID, now,
                ])
        }
    }

    /// A row of ``history(_:limit:_:)``'s query, read by position (its columns are `role, content,
    /// tool_calls, tool_call_id`): a name is looked up case-insensitively for every row, which showed in a
    /// turn's profile.
    private static func message(_ row: Row) -> ChatMessage? {
        guard let role = ChatMessage.Role(rawValue: row[0]) else { return nil }
        let callsText: String = row[2]
        let calls =
            callsText.isEmpty ? [] : (try? JSONDecoder().decode([ToolCall].self, from: Data(callsText.utf8))) ?? []
        return ChatMessage(role: role, content: row[1], toolCalls: calls, toolCallID: row[3])
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}
