import Foundation
package import GRDB
import MoatAudit
public import MoatCore
public import MoatStore

/// A paired contact and what it may at most do.
public struct ContactGrant: Sendable, Hashable {
    public let id: String
    /// The channel the contact writes from (`telegram`, `matrix`, …).
    public let channel: String
    /// The contact's id on that channel.
    public let senderID: String
    public let ceilings: [TrustDomain: TrustLevel]
    public let addedBy: String
    public let addedAt: Int64

    /// The principal this grant makes of the contact.
    public var principal: Principal { .contact(id: id, ceilings: ceilings) }
}

extension ContactGrant: AuthenticatedRow {
    public static let macTable = "policy_contacts"

    /// What the row MAC covers: every field, the ceilings in their stored form.
    public var macFields: [String] {
        [id, channel, senderID, PolicyEngine.encode(ceilings), addedBy, String(addedAt)]
    }
}

/// A row of `policy_taint`: a taint (its MAC is not what makes it count: a forged one only restricts) or
/// the owner's clear (only a clear whose MAC verifies lifts the taint).
struct TaintRow: AuthenticatedRow {
    enum Event {
        case taint(reason: String)
        /// The row's id is covered, so a clear cannot be copied to another place in the history.
        case clear(id: Int64)
    }

    static let macTable = "policy_taint"
    let conversation: String
    let event: Event
    let createdAt: Int64

    var macFields: [String] {
        switch event {
        case .taint(let reason): [conversation, "taint", reason, String(createdAt)]
        case .clear(let id): [String(id), conversation, "clear", String(createdAt)]
        }
    }
}

extension PolicyEngine {
    static let contactsTable = ContactGrant.macTable
    static let taintTable = TaintRow.macTable

    /// Grants `senderID` on `channel` the standing of a contact (`moat contact add`, or pairing once the
    /// owner approved the code), with the ceilings the owner chose (by default `suggest` for messaging and
    /// `inform` elsewhere). One grant per sender: a second is refused.
    @discardableResult
    public func addContact(
        channel: String,
        senderID: String,
        ceilings: [TrustDomain: TrustLevel] = PolicySettings.defaultContactCeilings,
        actor: String = "owner"
    ) async throws -> ContactGrant {
        guard !channel.isEmpty, !senderID.isEmpty, channel.utf8.count <= 64, senderID.utf8.count <= 256 else {
            throw PolicyError(.invalidInput, "a contact needs a channel and a sender id")
        }
        let grant = ContactGrant(
            id: PolicyEngine.newApprovalID(),
            channel: channel,
            senderID: senderID,
            ceilings: ceilings,
            addedBy: actor,
            addedAt: nowMillis()
        )
        let authenticator = self.authenticator
        let event = AuditEvent(
            actor: actor,
            action: "contact.add",
            target: grant.id,
            metadata: [
                "channel": .string(channel), "sender": .string(PolicyError.printable(senderID, limit: 80)),
                "ceilings": .string(Self.encode(ceilings)),
            ]
        )
        return try await audited(event) {
            try await self.write { db in
                // One grant per sender (the table's UNIQUE key): a second would leave which ceilings apply to
                // chance. Only a genuine grant counts: a row planted in moat.db (its MAC fails) grants nothing
                // and blocks nothing.
                let existing = try Row.fetchAll(
                    db, sql: "SELECT * FROM policy_contacts WHERE channel = ? AND sender_id = ?",
                    arguments: [channel, senderID])
                let genuine = existing.contains { row in
                    guard let ceilings = Self.decode(row["ceilings"]) else { return false }
                    return authenticator.verify(
                        row["mac"],
                        of: ContactGrant(
                            id: row["id"], channel: row["channel"], senderID: row["sender_id"], ceilings: ceilings,
                            addedBy: row["added_by"], addedAt: row["added_at"]))
                }
                if !genuine, !existing.isEmpty {
                    // A planted row (the table's UNIQUE key would refuse the owner's grant): the owner's
                    // deliberate add replaces it.
                    try db.execute(
                        sql: "DELETE FROM policy_contacts WHERE channel = ? AND sender_id = ?",
                        arguments: [channel, senderID])
                }
                if genuine {
                    throw PolicyError(
                        .conflict,
                        "\(PolicyError.printable(channel)):\(PolicyError.printable(senderID)) is a contact already; "
                            + "remove it first (`moat contact list` shows its id)")
                }
                try db.execute(
                    sql: """
                        INSERT INTO policy_contacts (id, channel, sender_id, ceilings, added_by, added_at, mac)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        grant.id, channel, senderID, Self.encode(ceilings), actor, grant.addedAt,
                        authenticator.mac(grant),
                    ]
                )
                return grant
            }
        }
    }

    /// Removes the contact `id`: from the next message on, its sender is unknown again.
    public func removeContact(_ id: String, actor: String = "owner") async throws {
        let missing = PolicyError(.notFound, "no contact \(PolicyError.printable(id)); `moat contact list` shows them")
        // Checked before the audit entry, so a mistyped id records nothing.
        let exists = try await read { db -> (String, String)? in
            try Row.fetchOne(db, sql: "SELECT channel, sender_id FROM policy_contacts WHERE id = ?", arguments: [id])
                .map { ($0["channel"], $0["sender_id"]) }
        }
        guard let (channel, sender) = exists else { throw missing }
        // Who it was, so `contact:<id>` entries can still be traced once the row is gone.
        let event = AuditEvent(
            actor: actor, action: "contact.remove", target: id,
            metadata: ["channel": .string(channel), "sender": .string(PolicyError.printable(sender, limit: 80))])
        try await audited(event) {
            try await self.write { db in
                try db.execute(sql: "DELETE FROM policy_contacts WHERE id = ?", arguments: [id])
                guard db.changesCount > 0 else { throw missing }
            }
        }
    }

    /// The principal of a sender on a channel — the one place that decides it: the owner when the sender is
    /// the channel's verified owner binding (`moat channel bind`), else its verified contact grant, else nil
    /// (an unknown sender, who must pair).
    ///
    /// Ids are compared byte for byte, never by Unicode equivalence: a sender who picks a look-alike
    /// handle (`\u{212A}evin` for `Kevin`, a decomposed accent) is a different sender.
    public func principal(channel: String, senderID: String) async throws(PolicyError) -> Principal? {
        if try await ownerBindings().contains(where: {
            Self.sameBytes($0.channel, channel) && Self.sameBytes($0.senderID, senderID)
        }) {
            return .owner
        }
        return try await contacts().first {
            Self.sameBytes($0.channel, channel) && Self.sameBytes($0.senderID, senderID)
        }?.principal
    }

    /// Byte equality of two ids (Swift's `==` on `String` compares canonical equivalence).
    static func sameBytes(_ left: String, _ right: String) -> Bool {
        left.utf8.elementsEqual(right.utf8)
    }

    /// Every verified contact grant; rows whose MAC fails are left out and audited.
    public func contacts() async throws(PolicyError) -> [ContactGrant] {
        let authenticator = self.authenticator
        let (grants, findings) = try await read { db in
            var grants: [ContactGrant] = []
            var findings: [TamperFinding] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM policy_contacts ORDER BY added_at, id") {
                let id: String = row["id"]
                let ceilingsText: String = row["ceilings"]
                guard let ceilings = Self.decode(ceilingsText) else {
                    findings.append(.init(table: Self.contactsTable, key: "contact:\(id)", problem: "malformed row"))
                    continue
                }
                let grant = ContactGrant(
                    id: id,
                    channel: row["channel"],
                    senderID: row["sender_id"],
                    ceilings: ceilings,
                    addedBy: row["added_by"],
                    addedAt: row["added_at"]
                )
                guard Self.encode(ceilings) == ceilingsText,
                    authenticator.verify(row["mac"], of: grant)
                else {
                    findings.append(
                        .init(table: Self.contactsTable, key: "contact:\(id)", problem: "MAC does not verify"))
                    continue
                }
                grants.append(grant)
            }
            return (grants, findings)
        }
        await reportTamper(findings)
        return grants
    }

    /// `domain=level` pairs sorted by domain, e.g. `calendar=1,email=1,…`.
    static func encode(_ ceilings: [TrustDomain: TrustLevel]) -> String {
        ceilings.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value.rawValue)" }
            .joined(separator: ",")
    }

    static func decode(_ text: String) -> [TrustDomain: TrustLevel]? {
        var result: [TrustDomain: TrustLevel] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let domain = TrustDomain(rawValue: String(parts[0])),
                let level = Int(parts[1]).flatMap(TrustLevel.init(rawValue:))
            else { return nil }
            result[domain] = level
        }
        return result
    }

    // MARK: Taint

    /// Records that `conversation` read untrusted or flagged text. Taint rows need no MAC: a forged one
    /// only restricts.
    public func taint(_ conversation: String, reason: String) async throws {
        let created = nowMillis()
        let reason = PolicyError.printable(reason, limit: 300)
        let authenticator = self.authenticator
        let event = AuditEvent(
            actor: "system", action: "policy.taint", target: conversation, metadata: ["reason": .string(reason)])
        try await audited(event) {
            try await self.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO policy_taint (conversation, event, reason, created_at, mac) VALUES (?, 'taint', ?, ?, ?)",
                    arguments: [
                        conversation, reason, created,
                        authenticator.mac(
                            TaintRow(conversation: conversation, event: .taint(reason: reason), createdAt: created)),
                    ]
                )
            }
        }
    }

    /// The owner clears `conversation`'s taint; the clear row carries a MAC, so only the owner can.
    public func clearTaint(_ conversation: String, actor: String = "owner") async throws {
        let created = nowMillis()
        let authenticator = self.authenticator
        let event = AuditEvent(actor: actor, action: "policy.taint.clear", target: conversation)
        try await audited(event) {
            try await self.write { db in
                let id = (try Int64.fetchOne(db, sql: "SELECT max(id) FROM policy_taint") ?? 0) + 1
                try db.execute(
                    sql:
                        "INSERT INTO policy_taint (id, conversation, event, reason, created_at, mac) VALUES (?, ?, 'clear', '', ?, ?)",
                    arguments: [
                        id, conversation, created,
                        authenticator.mac(
                            TaintRow(conversation: conversation, event: .clear(id: id), createdAt: created)),
                    ]
                )
            }
        }
    }

    /// The taint of `conversation`: every taint recorded after the owner's last verified clear.
    public func taint(of conversation: String) async throws(PolicyError) -> ConversationTaint {
        ConversationTaint(reasons: TaintEvent.reasons(try await taintHistory(of: conversation)))
    }

    /// Every change of `conversation`'s taint in the order recorded: what it read, and the owner's
    /// clears whose MAC verifies (one that does not is reported as tampering and left out).
    public func taintHistory(of conversation: String) async throws(PolicyError) -> [TaintEvent] {
        let reading = try await read { db in try self.taintReading(of: conversation, in: db) }
        await reportTamper(reading.findings)
        return reading.events
    }

    /// Whether this engine's tables are in `database` (a caller that reads them in its own transaction
    /// checks it once).
    package nonisolated func uses(_ database: MoatDatabase) -> Bool {
        self.database === database
    }

    /// `conversation`'s taint read inside the caller's own read transaction on this engine's database
    /// (``uses(_:)``; a turn reads what it starts from at once); ``settle(_:)`` it afterwards, so a
    /// tampered row is reported.
    package nonisolated func taintReading(of conversation: String, in db: Database) throws -> TaintReading {
        var reading = TaintReading()
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM policy_taint WHERE conversation = ? ORDER BY id"),
            arguments: [conversation])
        for row in rows {
            let id: Int64 = row["id"]
            let event: String = row["event"]
            let created: Int64 = row["created_at"]
            if event == "clear" {
                if authenticator.verify(
                    row["mac"], of: TaintRow(conversation: conversation, event: .clear(id: id), createdAt: created))
                {
                    reading.events.append(TaintEvent(reason: nil, createdAt: created))
                } else {
                    reading.findings.append(
                        .init(table: Self.taintTable, key: "taint_clear:\(id)", problem: "MAC does not verify"))
                }
            } else {
                reading.events.append(TaintEvent(reason: row["reason"], createdAt: created))
            }
        }
        return reading
    }

    /// The taint of `reading`, once a clear whose MAC does not verify (left out) is reported as tampering.
    package nonisolated func settle(_ reading: TaintReading) async -> ConversationTaint {
        if !reading.findings.isEmpty { await reportTamper(reading.findings) }
        return ConversationTaint(reasons: TaintEvent.reasons(reading.events))
    }
}

/// A conversation's taint rows as read (``PolicyEngine/taintReading(of:in:)``), not yet settled: what
/// verified, and the clears that did not.
package struct TaintReading: Sendable {
    var events: [TaintEvent] = []
    var findings: [TamperFinding] = []
}

/// One change of a conversation's taint: a reason it read untrusted or flagged text, or (reason nil)
/// the owner's clear.
public struct TaintEvent: Sendable, Hashable {
    public let reason: String?
    /// Milliseconds since 1970.
    public let createdAt: Int64

    /// The reasons in force at `time` after `events` (in the order recorded): those recorded since the
    /// last clear before it.
    public static func reasons(_ events: [TaintEvent], upTo time: Int64 = .max) -> [String] {
        var reasons: [String] = []
        for event in events where event.createdAt <= time {
            if let reason = event.reason { reasons.append(reason) } else { reasons.removeAll() }
        }
        return reasons
    }
}
