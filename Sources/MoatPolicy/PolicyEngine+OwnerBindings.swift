import GRDB
import MoatAudit
import MoatCore
public import MoatStore

/// The owner's own account on a messaging channel: messages, commands and approval taps from it are the
/// owner's. Made only by the owner (`moat channel bind`, then the code typed from that account).
public struct OwnerBinding: Sendable, Hashable {
    /// The channel (`telegram`, `matrix`); one binding per channel.
    public let channel: String
    /// The owner's id on that channel.
    public let senderID: String
    /// Where notices and approval prompts for the owner go (the chat the code was typed in).
    public let conversation: String
    public let boundBy: String
    public let boundAt: Int64
}

extension OwnerBinding: AuthenticatedRow {
    public static let macTable = "policy_owner_bindings"

    public var macFields: [String] { [channel, senderID, conversation, boundBy, String(boundAt)] }
}

extension PolicyEngine {
    /// Makes `senderID` on `channel` the owner there (replacing an earlier binding of that channel).
    /// Refused on the owner's own channel and on signed webhooks, whose senders are whatever a bridge
    /// writes.
    @discardableResult
    public func bindOwner(channel: String, senderID: String, conversation: String, actor: String = "owner")
        async throws -> OwnerBinding
    {
        guard Self.isBindable(channel), !senderID.isEmpty, senderID.utf8.count <= 256, !conversation.isEmpty,
            conversation.utf8.count <= 256
        else {
            throw PolicyError(
                .invalidInput, "the owner can be bound on a messaging channel (telegram, matrix), not on \(channel)")
        }
        let binding = OwnerBinding(
            channel: channel, senderID: senderID, conversation: conversation, boundBy: actor, boundAt: nowMillis())
        let mac = authenticator.mac(binding)
        let event = AuditEvent(
            actor: actor, action: "channel.owner.bind", target: channel,
            metadata: ["sender": .string(PolicyError.printable(senderID, limit: 80))])
        return try await audited(event) {
            try await self.write { db in
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO policy_owner_bindings
                          (channel, sender_id, conversation, bound_by, bound_at, mac) VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [channel, senderID, conversation, actor, binding.boundAt, mac])
                return binding
            }
        }
    }

    /// Removes the owner's binding on `channel`: from the next message on, that account is what its
    /// contact grant (or none) makes it.
    public func unbindOwner(channel: String, actor: String = "owner") async throws {
        let missing = PolicyError(
            .notFound, "no owner account is bound on \(PolicyError.printable(channel)); `moat channel list` shows them")
        let exists = try await read { db in
            try Bool.fetchOne(
                db, sql: "SELECT 1 FROM policy_owner_bindings WHERE channel = ?", arguments: [channel]) ?? false
        }
        guard exists else { throw missing }
        try await audited(AuditEvent(actor: actor, action: "channel.owner.unbind", target: channel)) {
            try await self.write { db in
                try db.execute(sql: "DELETE FROM policy_owner_bindings WHERE channel = ?", arguments: [channel])
                guard db.changesCount > 0 else { throw missing }
            }
        }
    }

    /// Every verified owner binding; rows whose MAC fails are left out and audited.
    public func ownerBindings() async throws(PolicyError) -> [OwnerBinding] {
        let authenticator = self.authenticator
        let (bindings, findings) = try await read { db in
            var bindings: [OwnerBinding] = []
            var findings: [TamperFinding] = []
            for row in try Row.fetchAll(db, sql: "SELECT * FROM policy_owner_bindings ORDER BY channel") {
                let binding = OwnerBinding(
                    channel: row["channel"], senderID: row["sender_id"], conversation: row["conversation"],
                    boundBy: row["bound_by"], boundAt: row["bound_at"])
                guard authenticator.verify(row["mac"], of: binding) else {
                    findings.append(
                        .init(
                            table: OwnerBinding.macTable, key: "owner_binding:\(binding.channel)",
                            problem: "MAC does not verify"))
                    continue
                }
                bindings.append(binding)
            }
            return (bindings, findings)
        }
        await reportTamper(findings)
        return bindings
    }

    /// Whether an owner account can be bound on `channel`: a messaging channel's name, not the owner's own
    /// entry points and not a signed webhook.
    public nonisolated static func isBindable(_ channel: String) -> Bool {
        let bytes = Array(channel.utf8)
        guard (1...32).contains(bytes.count), channel != "owner", !channel.hasPrefix("webhook") else { return false }
        return bytes.allSatisfy {
            (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-")
                || $0 == UInt8(ascii: "_")
        }
    }
}
