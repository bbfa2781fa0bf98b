public import Foundation
import GRDB
public import MoatAudit
public import MoatCore
public import MoatPolicy
public import MoatStore
import Synchronization

/// The limits of DM pairing (`channels.pairing` in `config.yaml`).
public struct PairingSettings: Sendable, Equatable {
    /// The longest a code may live: 10 minutes.
    public static let maximumLifetime = 600
    /// The most pending pairings a channel may have at once.
    public static let maximumPendingPerChannel = 3

    /// How long a code is valid, in seconds (at most ``maximumLifetime``).
    public var codeLifetime: Int
    /// How many pairings may wait on one channel (at most ``maximumPendingPerChannel``).
    public var pendingPerChannel: Int
    /// New pairing codes and wrong owner-binding codes, over all channels, per clock hour.
    public var attemptsPerHour: Int
    /// Wrong codes typed on a channel while a binding code is pending before that code is withdrawn.
    public var wrongBindCodes: Int

    public init(codeLifetime: Int = 600, pendingPerChannel: Int = 3, attemptsPerHour: Int = 20, wrongBindCodes: Int = 5)
    {
        self.codeLifetime = min(max(codeLifetime, 60), Self.maximumLifetime)
        self.pendingPerChannel = min(max(pendingPerChannel, 1), Self.maximumPendingPerChannel)
        self.attemptsPerHour = max(attemptsPerHour, 1)
        self.wrongBindCodes = max(wrongBindCodes, 1)
    }
}

extension PairingSettings {
    /// The most `attempts_per_hour` may allow.
    public static let maximumAttemptsPerHour = 1000

    /// Reads `channels.pairing:` (`code_lifetime` 60–600 seconds, `pending_per_channel` 1–3,
    /// `attempts_per_hour` 1–1000, `wrong_bind_codes` 1–10). A value out of range is an error naming the
    /// range, never clamped: the owner's file says what the gateway does.
    public static func read(_ node: ConfigNode, path: String) throws(ConfigError) -> PairingSettings {
        var settings = PairingSettings()
        let allowed = ["code_lifetime", "pending_per_channel", "attempts_per_hour", "wrong_bind_codes"]
        for (field, value) in try node.mapping(path: path, allowed: allowed) {
            let fieldPath = path + "." + field
            switch field {
            case "code_lifetime":
                settings.codeLifetime = try value.integer(
                    path: fieldPath, range: 60...maximumLifetime,
                    allowed: "60 to \(maximumLifetime) seconds: a code lives at most 10 minutes")
            case "pending_per_channel":
                settings.pendingPerChannel = try value.integer(
                    path: fieldPath, range: 1...maximumPendingPerChannel,
                    allowed: "1 to \(maximumPendingPerChannel) pairings waiting on one channel")
            case "attempts_per_hour":
                settings.attemptsPerHour = try value.integer(
                    path: fieldPath, range: 1...maximumAttemptsPerHour,
                    allowed: "1 to \(maximumAttemptsPerHour) new codes and wrong binding codes per hour")
            default:
                settings.wrongBindCodes = try value.integer(
                    path: fieldPath, range: 1...10, allowed: "1 to 10 wrong binding codes before it is withdrawn")
            }
        }
        return settings
    }
}

/// What to do with a message from an unknown sender: a pure decision (no I/O, no clock) that explains
/// itself, like `TrustDecision`.
public enum PairingDecision: Sendable, Hashable {
    /// The sender has a pending code: send the same one again.
    case resend
    /// Make a new code.
    case issue
    /// No code, for the reason given (to the sender, and in the audit log).
    case refuse(String)

    /// - Parameters:
    ///   - pendingForSender: the sender already has a pending (unexpired, undecided) code.
    ///   - deniedForSender: the owner denied this sender's code, and it has not yet expired.
    ///   - pendingOnChannel: pending codes on the sender's channel.
    ///   - attemptsThisHour: pairing attempts this clock hour, all channels.
    public static func decide(
        pendingForSender: Bool, deniedForSender: Bool, pendingOnChannel: Int, attemptsThisHour: Int,
        settings: PairingSettings
    ) -> PairingDecision {
        if pendingForSender { return .resend }
        if deniedForSender { return .refuse("the owner declined this pairing; try again later") }
        if pendingOnChannel >= settings.pendingPerChannel {
            return .refuse("too many pairings are waiting for the owner on this channel; try again in a few minutes")
        }
        if attemptsThisHour >= settings.attemptsPerHour {
            return .refuse("too many pairing attempts this hour; try again later")
        }
        return .issue
    }
}

/// A code waiting for the owner: a pairing (an unknown sender) or an owner binding.
public struct PendingCode: Sendable, Hashable {
    public enum Purpose: String, Sendable, Hashable {
        case pair, bind
    }

    public let id: String
    public let purpose: Purpose
    public let channel: String
    /// The sender who asked to pair (empty for a binding).
    public let senderID: String
    /// Where the sender is answered (empty for a binding).
    public let conversation: String
    public let createdAt: Int64
    public let expiresAt: Int64
    /// `pending`, `denied` (kept until it expires, so the sender is not given a new code at once).
    public let state: String
    /// The code, `ABCD-EFGH`: for the owner and the sender only, never stored or logged.
    public let code: String
}

struct CodeRow: AuthenticatedRow {
    static let macTable = "channel_codes"
    let id: String
    let purpose: String
    let channel: String
    let senderID: String
    let conversation: String
    let createdAt: Int64
    let expiresAt: Int64
    let state: String

    var macFields: [String] {
        [id, purpose, channel, senderID, conversation, String(createdAt), String(expiresAt), state]
    }

    init(
        id: String, purpose: String, channel: String, senderID: String, conversation: String, createdAt: Int64,
        expiresAt: Int64, state: String
    ) {
        self.id = id
        self.purpose = purpose
        self.channel = channel
        self.senderID = senderID
        self.conversation = conversation
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
    }

    init(_ row: Row) {
        self.init(
            id: row["id"], purpose: row["purpose"], channel: row["channel"], senderID: row["sender_id"],
            conversation: row["conversation"], createdAt: row["created_at"], expiresAt: row["expires_at"],
            state: row["state"])
    }

    func with(state: String) -> CodeRow {
        CodeRow(
            id: id, purpose: purpose, channel: channel, senderID: senderID, conversation: conversation,
            createdAt: createdAt, expiresAt: expiresAt, state: state)
    }
}

/// DM pairing and owner binding: the codes, their limits and their decisions (Docs/Channels.md).
///
/// An unknown sender gets a code (``request(channel:senderID:conversation:)``); the owner approves it
/// with the ceilings they choose (``approve(code:ceilings:actor:)``, which makes the sender a contact
/// through `PolicyEngine.addContact`, never the owner) or denies it. The owner binds their own account on
/// a channel with ``beginBinding(channel:actor:)`` (a code for the terminal) and by typing that code from
/// the account (``tryBinding(_:)``). Every step is audited, never with a code.
public actor PairingDesk {
    let database: MoatDatabase
    let authenticator: RowAuthenticator
    let audit: AuditLog
    let policy: PolicyEngine
    /// The limits in force (`channels.pairing`); a config reload replaces them (``apply(_:)``).
    public nonisolated var settings: PairingSettings { live.withLock { $0 } }
    private nonisolated let live: Mutex<PairingSettings>
    let now: @Sendable () -> Date
    /// Wrong codes typed against each pending binding (bounded: one binding per channel).
    var wrongBindCodes: [String: Int] = [:]
    /// Refusals already audited this hour (`reason|channel|hour`): a flood is one entry, not thousands.
    var auditedRefusals = Set<String>()

    public init(
        database: MoatDatabase, authenticator: RowAuthenticator, audit: AuditLog, policy: PolicyEngine,
        settings: PairingSettings = PairingSettings(), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.database = database
        self.authenticator = authenticator
        self.audit = audit
        self.policy = policy
        self.live = Mutex(settings)
        self.now = now
    }

    /// Puts new pairing limits in force (a config reload): codes given from now on get the new lifetime,
    /// and the caps count against the new numbers; a code already given keeps its expiry.
    public nonisolated func apply(_ settings: PairingSettings) { live.withLock { $0 = settings } }

    /// What an unknown sender is told.
    public enum Answer: Sendable, Hashable {
        /// A code (new, or the pending one again) and the text for the sender.
        case code(PendingCode, isNew: Bool)
        /// No code, and why (for the sender).
        case refused(String)
    }

    // MARK: Pairing

    /// An unknown sender wrote on `channel`: their pending code, a new one, or a refusal. Stores nothing of
    /// the message; a new code is one row and one audit entry.
    public func request(channel: String, senderID: String, conversation: String) async throws -> Answer {
        let nowMillis = millis(now())
        let hour = nowMillis / 3_600_000
        try await prune(nowMillis)
        let authenticator = self.authenticator
        let (rows, attempts) = try await database.pool.read { db in
            (
                try Row.fetchAll(
                    db, sql: "SELECT * FROM channel_codes WHERE purpose = 'pair' AND channel = ?", arguments: [channel]
                ).map { (row: CodeRow($0), genuine: authenticator.verify($0["mac"], of: CodeRow($0))) },
                try Int.fetchOne(
                    db, sql: "SELECT attempts FROM channel_pairing_hours WHERE hour = ?", arguments: [hour])
                    ?? 0
            )
        }
        // A row that fails its MAC still takes its slot (it expires like the others) but admits nobody.
        let found = rows.first { Self.sameBytes($0.row.senderID, senderID) }
        let genuine = found?.genuine ?? false
        let mine = found?.row
        let decision = PairingDecision.decide(
            pendingForSender: genuine && mine?.state == "pending", deniedForSender: mine?.state == "denied",
            pendingOnChannel: rows.filter { $0.row.state == "pending" }.count, attemptsThisHour: attempts,
            settings: settings)
        switch decision {
        case .resend:
            guard let mine else { return .refused("pairing failed; try again later") }
            return .code(view(mine), isNew: false)
        case .refuse(let reason):
            try await auditRefusal(reason: reason, channel: channel, senderID: senderID, hour: hour)
            return .refused(reason)
        case .issue:
            if let mine, !genuine {
                // A planted row for this sender: it goes, the sender gets a genuine code.
                try await database.pool.write { db in
                    try db.execute(sql: "DELETE FROM channel_codes WHERE id = ?", arguments: [mine.id])
                }
            }
            let row = CodeRow(
                id: PairingCode.newID(), purpose: "pair", channel: channel, senderID: senderID,
                conversation: conversation, createdAt: nowMillis,
                expiresAt: nowMillis + Int64(settings.codeLifetime) * 1000, state: "pending")
            let mac = authenticator.mac(row)
            let event = AuditEvent(
                actor: "unknown", action: "pairing.request", target: channel,
                metadata: [
                    "sender": .string(PrintableText.excerpt(senderID, limit: 80)),
                    "pairing": .string(String(row.id.prefix(8))), "expires_at": .int(row.expiresAt),
                ])
            try await audit.append(event) { db in
                try Self.insert(row, mac: mac, db)
                try Self.countAttempt(hour: hour, db)
            }
            return .code(view(row), isNew: true)
        }
    }

    /// Pending pairings and bindings (with their codes, for the owner), oldest first; expired ones are gone.
    public func pending() async throws -> [PendingCode] {
        try await prune(millis(now()))
        let authenticator = self.authenticator
        let rows = try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM channel_codes ORDER BY created_at, id").compactMap { row in
                let code = CodeRow(row)
                return authenticator.verify(row["mac"], of: code) ? code : nil
            }
        }
        return rows.map(view)
    }

    /// The owner approves the pairing whose code is `code`: its sender becomes a contact with `ceilings`
    /// (never the owner). Single use: the code is consumed before the contact is added.
    /// - Throws: ``ChannelError`` `.notFound` for a wrong, used or denied code, `.unauthorized` for an
    ///   expired one, or the policy engine's error when the contact cannot be added.
    public func approve(code typed: String, ceilings: [TrustDomain: TrustLevel], actor: String = "owner")
        async throws -> (contact: ContactGrant, pairing: PendingCode)
    {
        try await approve(try await find(code: typed, purpose: "pair"), ceilings: ceilings, actor: actor)
    }

    /// The owner denies the pairing whose code is `code`; the sender gets no new code until it expires.
    public func deny(code typed: String, actor: String = "owner") async throws -> PendingCode {
        view(try await decide(try await find(code: typed, purpose: "pair"), decision: "denied", actor: actor))
    }

    /// The owner approves the pairing a button of its notice refers to (``PendingCode/id``, never the code):
    /// the same checks, consumption and audit as ``approve(code:ceilings:actor:)``.
    /// - Throws: ``ChannelError`` `.notFound` for an unknown, used or denied pairing, `.unauthorized` for an
    ///   expired or tampered one.
    public func approve(reference: String, ceilings: [TrustDomain: TrustLevel], actor: String = "owner")
        async throws -> (contact: ContactGrant, pairing: PendingCode)
    {
        try await approve(try await find(reference: reference), ceilings: ceilings, actor: actor)
    }

    /// The owner denies the pairing a button of its notice refers to, like ``deny(code:actor:)``.
    public func deny(reference: String, actor: String = "owner") async throws -> PendingCode {
        view(try await decide(try await find(reference: reference), decision: "denied", actor: actor))
    }

    private func approve(_ row: CodeRow, ceilings: [TrustDomain: TrustLevel], actor: String)
        async throws -> (contact: ContactGrant, pairing: PendingCode)
    {
        let taken = try await decide(row, decision: "approved", actor: actor)
        let grant = try await policy.addContact(
            channel: taken.channel, senderID: taken.senderID, ceilings: ceilings, actor: actor)
        return (grant, view(taken))
    }

    // MARK: Owner binding

    /// Starts binding the owner's own account on `channel`: a code to type from that account within the
    /// code lifetime. A binding already pending on the channel is replaced.
    public func beginBinding(channel: String, actor: String = "owner") async throws -> PendingCode {
        guard PolicyEngine.isBindable(channel) else {
            throw ChannelError(
                .invalidInput,
                "the owner can be bound on a messaging channel (telegram, matrix), not on \(PrintableText.excerpt(channel, limit: 40))"
            )
        }
        let nowMillis = millis(now())
        try await prune(nowMillis)
        let row = CodeRow(
            id: PairingCode.newID(), purpose: "bind", channel: channel, senderID: "", conversation: "",
            createdAt: nowMillis, expiresAt: nowMillis + Int64(settings.codeLifetime) * 1000, state: "pending")
        let mac = authenticator.mac(row)
        let event = AuditEvent(
            actor: actor, action: "channel.bind.begin", target: channel,
            metadata: ["expires_at": .int(row.expiresAt)])
        try await audit.append(event) { db in
            try db.execute(
                sql: "DELETE FROM channel_codes WHERE purpose = 'bind' AND channel = ?", arguments: [channel])
            try Self.insert(row, mac: mac, db)
        }
        wrongBindCodes = [:]
        return view(row)
    }

    /// What a message did to a pending owner binding.
    public enum BindingAttempt: Sendable, Hashable {
        /// Not a binding attempt (no binding pending here, or the text is not code-shaped).
        case none
        /// The code matched: the sender is the owner on this channel now.
        case bound(OwnerBinding)
        /// A wrong code (counted; the binding is withdrawn after ``PairingSettings/wrongBindCodes``).
        case wrong
    }

    /// Checks a message against the binding pending on its channel. Only a message whose whole text is
    /// code-shaped is an attempt; a match binds its sender (and conversation) as the owner, once.
    public func tryBinding(_ message: ChannelMessage) async throws -> BindingAttempt {
        guard let typed = PairingCode.normalize(message.text) else { return .none }
        let nowMillis = millis(now())
        let authenticator = self.authenticator
        let found = try await database.pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM channel_codes WHERE purpose = 'bind' AND channel = ? AND expires_at > ?",
                arguments: [message.channel, nowMillis]
            ).map { (row: CodeRow($0), genuine: authenticator.verify($0["mac"], of: CodeRow($0))) }
        }
        guard let (row, genuine) = found else { return .none }
        if genuine, PairingCode.matches(typed, PairingCode.derive(id: row.id, authenticator: authenticator)) {
            try await database.pool.write { db in
                try db.execute(sql: "DELETE FROM channel_codes WHERE id = ?", arguments: [row.id])
            }
            wrongBindCodes[row.id] = nil
            let binding = try await policy.bindOwner(
                channel: message.channel, senderID: message.senderID, conversation: message.conversation)
            return .bound(binding)
        }
        let wrong = (wrongBindCodes[row.id] ?? 0) + 1
        wrongBindCodes[row.id] = wrong
        let withdrawn = wrong >= settings.wrongBindCodes
        let hour = nowMillis / 3_600_000
        let event = AuditEvent(
            actor: "unknown", action: "channel.bind.wrong", target: message.channel, outcome: "denied",
            metadata: [
                "sender": .string(PrintableText.excerpt(message.senderID, limit: 80)), "withdrawn": .bool(withdrawn),
            ])
        try await audit.append(event) { db in
            if withdrawn { try db.execute(sql: "DELETE FROM channel_codes WHERE id = ?", arguments: [row.id]) }
            try Self.countAttempt(hour: hour, db)
        }
        return .wrong
    }

    // MARK: Steps

    /// The genuine pairing row whose id is `reference` (a notice button's data).
    private func find(reference: String) async throws -> CodeRow {
        let authenticator = self.authenticator
        let found = try await database.pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM channel_codes WHERE purpose = 'pair' AND id = ?", arguments: [reference]
            ).map { (row: CodeRow($0), genuine: authenticator.verify($0["mac"], of: CodeRow($0))) }
        }
        guard let (row, genuine) = found else {
            throw ChannelError(
                .notFound,
                "this pairing request is no longer pending: it was already approved, or it expired; "
                    + "`moat pairing list` shows the pending ones")
        }
        guard genuine else { throw await tampered() }
        return row
    }

    /// The genuine pairing row whose code is `typed` (comparing against every candidate in constant time
    /// each).
    private func find(code typed: String, purpose: String) async throws -> CodeRow {
        guard let code = PairingCode.normalize(typed) else {
            throw ChannelError(
                .invalidInput, "a pairing code is 8 characters like ABCD-EFGH (letters and digits); check the code")
        }
        let authenticator = self.authenticator
        let candidates = try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM channel_codes WHERE purpose = ?", arguments: [purpose]).map {
                (CodeRow($0), authenticator.verify($0["mac"], of: CodeRow($0)))
            }
        }
        var match: CodeRow?
        var tampered = false
        for (row, genuine) in candidates
        where PairingCode.matches(code, PairingCode.derive(id: row.id, authenticator: authenticator)) {
            if genuine { match = row } else { tampered = true }
        }
        guard let row = match else {
            if tampered { throw await self.tampered() }
            throw ChannelError(
                .notFound,
                "no pending pairing has this code: it is wrong, was already used or denied, or expired long ago; "
                    + "`moat pairing list` shows the pending ones")
        }
        return row
    }

    /// Audits a pairing row whose MAC fails and returns the error that says it admits nobody.
    private func tampered() async -> ChannelError {
        _ = try? await audit.append(
            AuditEvent(
                actor: "system", action: "store.tamper", target: CodeRow.macTable, outcome: "failure",
                metadata: ["problem": "MAC does not verify"]))
        return ChannelError(
            .unauthorized,
            "this pairing failed its integrity check (its row in moat.db was changed outside Moat); it "
                + "admits nobody. Ask the sender to write again for a new code, and run moat doctor")
    }

    /// Records `decision` on the pending, unexpired `row` with its audit entry: the one step every approval
    /// and denial of a pairing takes, whoever asks (CLI, dashboard, the owner's chat).
    private func decide(_ row: CodeRow, decision: String, actor: String) async throws -> CodeRow {
        let nowMillis = millis(now())
        guard row.expiresAt > nowMillis else {
            try await prune(nowMillis)
            throw ChannelError(
                .unauthorized,
                "this code expired (codes are valid \(settings.codeLifetime / 60) minutes); ask the sender to "
                    + "write again for a new one")
        }
        guard row.state == "pending" else {
            throw ChannelError(
                .notFound, "this pairing was already \(row.state); ask the sender to write again once it expires")
        }
        let decided = row.with(state: decision)
        let mac = authenticator.mac(decided)
        let event = AuditEvent(
            actor: actor, action: "pairing.\(decision == "approved" ? "approve" : "deny")", target: row.channel,
            metadata: [
                "sender": .string(PrintableText.excerpt(row.senderID, limit: 80)),
                "pairing": .string(String(row.id.prefix(8))),
            ])
        try await audit.append(event) { db in
            // Approved rows go at once (the sender is a contact now); denied ones stay until they expire.
            if decision == "approved" {
                try db.execute(sql: "DELETE FROM channel_codes WHERE id = ? AND state = 'pending'", arguments: [row.id])
            } else {
                try db.execute(
                    sql: "UPDATE channel_codes SET state = ?, mac = ? WHERE id = ? AND state = 'pending'",
                    arguments: [decision, mac, row.id])
            }
            guard db.changesCount == 1 else {
                throw ChannelError(.notFound, "this pairing was decided meanwhile; `moat pairing list` shows the rest")
            }
        }
        return row
    }

    /// Deletes expired codes and old hourly counts: the tables hold only what is still in force.
    private func prune(_ nowMillis: Int64) async throws {
        let hour = nowMillis / 3_600_000
        try await database.pool.write { db in
            try db.execute(sql: "DELETE FROM channel_codes WHERE expires_at <= ?", arguments: [nowMillis])
            try db.execute(sql: "DELETE FROM channel_pairing_hours WHERE hour < ?", arguments: [hour])
        }
        auditedRefusals = auditedRefusals.filter { $0.hasSuffix("|\(hour)") }
    }

    /// Audits a pairing decision (a tap, `pair CODE`) from an account that is not the owner's bound one: once
    /// per channel and hour, like the other refusals, so a flood is one entry.
    public func refusedDecision(channel: String, senderID: String) async throws {
        try await auditRefusal(
            reason: "a pairing decision from an account that is not the owner's", channel: channel,
            senderID: senderID, hour: millis(now()) / 3_600_000)
    }

    private func auditRefusal(reason: String, channel: String, senderID: String, hour: Int64) async throws {
        guard auditedRefusals.insert("\(reason)|\(channel)|\(hour)").inserted else { return }
        try await audit.append(
            AuditEvent(
                actor: "unknown", action: "pairing.refused", target: channel, outcome: "denied",
                metadata: [
                    "reason": .string(reason), "sender": .string(PrintableText.excerpt(senderID, limit: 80)),
                    "note": "further refusals for this reason and channel this hour are not recorded",
                ]))
    }

    private func view(_ row: CodeRow) -> PendingCode {
        PendingCode(
            id: row.id, purpose: PendingCode.Purpose(rawValue: row.purpose) ?? .pair, channel: row.channel,
            senderID: row.senderID, conversation: row.conversation, createdAt: row.createdAt,
            expiresAt: row.expiresAt, state: row.state,
            code: PairingCode.display(PairingCode.derive(id: row.id, authenticator: authenticator)))
    }

    /// One more pairing attempt in the clock hour `hour`.
    private static func countAttempt(hour: Int64, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO channel_pairing_hours (hour, attempts) VALUES (?, 1)
                ON CONFLICT(hour) DO UPDATE SET attempts = attempts + 1
                """, arguments: [hour])
    }

    private static func insert(_ row: CodeRow, mac: String, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO channel_codes
                  (id, purpose, channel, sender_id, conversation, created_at, expires_at, state, mac)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                row.id, row.purpose, row.channel, row.senderID, row.conversation, row.createdAt, row.expiresAt,
                row.state, mac,
            ])
    }

    static func sameBytes(_ left: String, _ right: String) -> Bool { left.utf8.elementsEqual(right.utf8) }

    private func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
}
