import Crypto
public import Foundation
import GRDB
import MoatAudit
public import MoatCore
public import MoatStore

/// The exact action a tool call asks for; an approval is bound to its hash.
public struct ActionRequest: Sendable, Hashable, Codable {
    public let tool: String
    /// The arguments as canonical JSON (sorted keys), exactly as they will be executed.
    public let arguments: String
    /// Where the action goes (a host, a path, a recipient), or empty.
    public let destination: String

    public init(tool: String, arguments: String, destination: String) {
        self.tool = tool
        self.arguments = arguments
        self.destination = destination
    }

    /// Hex SHA-256 over the domain and the request, length-prefixed field by field.
    public func hash(domain: TrustDomain) -> String {
        var data = Data("moat-action-request-v1".utf8)
        for field in [domain.rawValue, tool, arguments, destination] {
            let bytes = Array(field.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: bytes)
        }
        return Hex.encode(SHA256.hash(data: data))
    }
}

/// A pending or decided approval.
public struct ApprovalRecord: Sendable, Hashable {
    /// Where the approval stands.
    public enum Status: Sendable, Hashable, CustomStringConvertible {
        case pending
        case approved(by: String, at: Int64)
        case denied(by: String, at: Int64, reason: String)
        case used(at: Int64)
        case expired

        public var description: String {
            switch self {
            case .pending: return "pending"
            case .approved: return "approved"
            case .denied: return "denied"
            case .used: return "used"
            case .expired: return "expired"
            }
        }
    }

    public let id: String
    /// Who asked (`owner`, `contact:<id>`).
    public let principal: String
    public let domain: TrustDomain
    public let request: ActionRequest
    public let requestHash: String
    public let createdAt: Int64
    public let expiresAt: Int64
    public let status: Status
}

extension ApprovalRecord: AuthenticatedRow {
    public static let macTable = "policy_approvals"

    /// What the row MAC covers: the request and its hash, who asked, in which domain, and when it expires
    /// (the status comes from the decision and use rows, each with its own MAC).
    public var macFields: [String] {
        [
            id, principal, domain.rawValue, request.tool, request.arguments, request.destination, requestHash,
            String(createdAt), String(expiresAt),
        ]
    }
}

/// The owner's decision on an approval (`policy_approval_decisions`).
struct DecisionRow: Sendable, AuthenticatedRow {
    static let macTable = "policy_approval_decisions"
    let approvalID: String
    let seq: Int64
    let approved: Bool
    let actor: String
    let reason: String
    let domain: TrustDomain
    let requestHash: String
    let decidedAt: Int64

    var macFields: [String] {
        [
            approvalID, String(seq), approved ? "approved" : "denied", actor, reason, domain.rawValue, requestHash,
            String(decidedAt),
        ]
    }
}

/// That an approved request ran (`policy_approval_uses`): at most one per approval.
struct ApprovalUseRow: AuthenticatedRow {
    static let macTable = "policy_approval_uses"
    let approvalID: String
    let requestHash: String
    let usedAt: Int64

    var macFields: [String] { [approvalID, requestHash, String(usedAt)] }
}

extension PolicyEngine {
    static let approvalsTable = ApprovalRecord.macTable
    static let decisionsTable = DecisionRow.macTable
    static let usesTable = ApprovalUseRow.macTable

    /// Holds `request` for the owner's decision; it can be decided until it expires.
    public func requestApproval(
        _ request: ActionRequest,
        domain: TrustDomain,
        principal: Principal
    ) async throws -> ApprovalRecord {
        guard !request.tool.isEmpty, request.tool.utf8.count <= 200, request.arguments.utf8.count <= 64 * 1024,
            request.destination.utf8.count <= 2048
        else { throw PolicyError(.invalidInput, "the request is empty or too large to hold for approval") }
        let id = Self.newApprovalID()
        let created = nowMillis()
        let record = ApprovalRecord(
            id: id,
            principal: principal.description,
            domain: domain,
            request: request,
            requestHash: request.hash(domain: domain),
            createdAt: created,
            expiresAt: created + Int64(settings.approvalLifetime * 1000),
            status: .pending
        )
        let authenticator = self.authenticator
        let event = AuditEvent(
            actor: record.principal,
            action: "approval.request",
            target: id,
            metadata: [
                "domain": .string(domain.rawValue), "tool": .string(request.tool),
                "destination": .string(request.destination), "request_hash": .string(record.requestHash),
            ]
        )
        return try await audited(event) {
            try await self.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO policy_approvals
                          (id, principal, domain, tool, arguments, destination, request_hash, created_at, expires_at, mac)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, record.principal, domain.rawValue, request.tool, request.arguments, request.destination,
                        record.requestHash, record.createdAt, record.expiresAt,
                        authenticator.mac(record),
                    ]
                )
                return record
            }
        }
    }

    /// Verified approvals, newest first; `pendingOnly` leaves out decided, used and expired ones.
    public func approvals(pendingOnly: Bool = false, limit: Int = 200) async throws(PolicyError) -> [ApprovalRecord] {
        let authenticator = self.authenticator
        let now = nowMillis()
        let (records, findings) = try await read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT * FROM policy_approvals ORDER BY created_at DESC, id LIMIT ?",
                arguments: [limit]
            )
            var records: [ApprovalRecord] = []
            var findings: [TamperFinding] = []
            for row in rows {
                let (record, problems) = try Self.approval(row, db, now: now, authenticator: authenticator)
                findings += problems
                if let record { records.append(record) }
            }
            return (records, findings)
        }
        await reportTamper(findings)
        return pendingOnly ? records.filter { $0.status == .pending } : records
    }

    /// The verified approval `id`.
    /// - Throws: ``PolicyError`` `.notFound` when there is none or its MAC does not verify.
    public func approval(_ id: String) async throws(PolicyError) -> ApprovalRecord {
        let authenticator = self.authenticator
        let now = nowMillis()
        let (record, findings) = try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM policy_approvals WHERE id = ?", arguments: [id])
            else { return (ApprovalRecord?.none, [TamperFinding]()) }
            return try Self.approval(row, db, now: now, authenticator: authenticator)
        }
        await reportTamper(findings)
        guard let record else {
            throw PolicyError(
                .notFound, "no approval \(PolicyError.printable(id, limit: 40)) (see `moat approvals list`)")
        }
        return record
    }

    /// The owner approves `id`: the request it holds (and only that one) may then run once.
    @discardableResult
    public func approve(_ id: String, actor: String = "owner") async throws -> ApprovalRecord {
        try await decide(id, approve: true, actor: actor, reason: "")
    }

    /// The owner denies `id`. Two denials in a row in one domain lower that domain by one level.
    @discardableResult
    public func deny(_ id: String, reason: String = "", actor: String = "owner") async throws -> ApprovalRecord {
        let record = try await decide(id, approve: false, actor: actor, reason: reason)
        try await lowerAfterDenials(record.domain)
        return try await approval(id)
    }

    /// Marks approval `id` as used for `request`; call right before running it.
    ///
    /// - Throws: ``PolicyError`` `.notFound`, `.notApproved`, `.requestMismatch` (the request differs in
    ///   any byte from the approved one), `.alreadyUsed`, `.expired`.
    public func consume(_ id: String, request: ActionRequest) async throws -> ApprovalRecord {
        let record = try await approval(id)
        switch record.status {
        case .approved: break
        case .used: throw PolicyError(.alreadyUsed, "approval \(id) was already used; an approval runs one action once")
        case .expired: throw PolicyError(.expired, "approval \(id) expired")
        case .pending, .denied: throw PolicyError(.notApproved, "approval \(id) is \(record.status), not approved")
        }
        let presented = request.hash(domain: record.domain)
        guard presented == record.requestHash else {
            throw PolicyError(.requestMismatch, "the request differs from the one approved in \(id); it was not run")
        }
        let authenticator = self.authenticator
        let used = nowMillis()
        let event = AuditEvent(
            actor: "system",
            action: "approval.use",
            target: id,
            metadata: ["domain": .string(record.domain.rawValue), "request_hash": .string(presented)]
        )
        try await audited(event) {
            try await self.write { db in
                if try Row.fetchOne(
                    db, sql: "SELECT 1 FROM policy_approval_uses WHERE approval_id = ?", arguments: [id])
                    != nil
                {
                    throw PolicyError(.alreadyUsed, "approval \(id) was already used")
                }
                try db.execute(
                    sql:
                        "INSERT INTO policy_approval_uses (approval_id, request_hash, used_at, mac) VALUES (?, ?, ?, ?)",
                    arguments: [
                        id, presented, used,
                        authenticator.mac(ApprovalUseRow(approvalID: id, requestHash: presented, usedAt: used)),
                    ]
                )
            }
        }
        return try await approval(id)
    }

    private func decide(_ id: String, approve: Bool, actor: String, reason rawReason: String) async throws
        -> ApprovalRecord
    {
        let reason = PolicyError.printable(rawReason.trimmingCharacters(in: .whitespacesAndNewlines), limit: 500)
        let record = try await approval(id)
        switch record.status {
        case .pending: break
        case .expired:
            throw PolicyError(
                .expired, "approval \(id) expired \(Self.timestamp(record.expiresAt)); it cannot be decided")
        default:
            throw PolicyError(.alreadyDecided, "approval \(id) was already decided (\(record.status))")
        }
        let decision = approve ? "approved" : "denied"
        let decidedAt = max(nowMillis(), record.createdAt)
        let authenticator = self.authenticator
        var metadata: [String: AuditValue] = [
            "domain": .string(record.domain.rawValue), "tool": .string(record.request.tool),
            "request_hash": .string(record.requestHash),
        ]
        if !reason.isEmpty { metadata["reason"] = .string(reason) }
        let event = AuditEvent(
            actor: actor,
            action: approve ? "approval.approve" : "approval.deny",
            target: id,
            metadata: metadata
        )
        try await audited(event) {
            try await self.write { db in
                if try Row.fetchOne(
                    db, sql: "SELECT 1 FROM policy_approval_decisions WHERE approval_id = ?", arguments: [id]) != nil
                {
                    throw PolicyError(.alreadyDecided, "approval \(id) was already decided")
                }
                let seq = (try Int64.fetchOne(db, sql: "SELECT max(seq) FROM policy_approval_decisions") ?? 0) + 1
                let row = DecisionRow(
                    approvalID: id,
                    seq: seq,
                    approved: approve,
                    actor: actor,
                    reason: reason,
                    domain: record.domain,
                    requestHash: record.requestHash,
                    decidedAt: decidedAt
                )
                try db.execute(
                    sql: """
                        INSERT INTO policy_approval_decisions
                          (approval_id, seq, decision, actor, reason, domain, request_hash, decided_at, mac)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, seq, decision, actor, reason, record.domain.rawValue, record.requestHash, decidedAt,
                        authenticator.mac(row),
                    ]
                )
            }
        }
        return try await approval(id)
    }

    /// When the last two verified decisions in `domain` since its last change are denials, lowers it
    /// one level (not below `inform`).
    private func lowerAfterDenials(_ domain: TrustDomain) async throws {
        let current = try await trust(domain)
        guard current.level > .inform else { return }
        let since = current.lastChange?.createdAt ?? 0
        let authenticator = self.authenticator
        let decisions = try await read { db in
            try Self.decisions(db, domain: domain, since: since, authenticator: authenticator)
        }
        await reportTamper(decisions.findings)
        let lastTwo = decisions.valid.suffix(2)
        guard lastTwo.count == 2, lastTwo.allSatisfy({ !$0.approved }) else { return }
        let lowered = TrustLevel(rawValue: current.level.rawValue - 1) ?? .inform
        try await lower(
            domain,
            from: current.level,
            to: lowered,
            reason: "the owner denied two suggestions in a row in \(domain)",
            evidence: ["denials": lastTwo.map(\.approvalID).joined(separator: ",")]
        )
    }

    // MARK: Rows

    static func newApprovalID() -> String {
        // 50 random bits in lower-case base32 without look-alikes: short enough to type.
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<10).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    /// Builds a verified record from a `policy_approvals` row, or nil (with findings) when it fails.
    static func approval(
        _ row: Row,
        _ db: Database,
        now: Int64,
        authenticator: RowAuthenticator
    ) throws -> (ApprovalRecord?, [TamperFinding]) {
        let id: String = row["id"]
        let key = "approval:\(id)"
        guard let domain = (row["domain"] as String?).flatMap(TrustDomain.init(rawValue:)) else {
            return (nil, [.init(table: approvalsTable, key: key, problem: "malformed row")])
        }
        let request = ActionRequest(tool: row["tool"], arguments: row["arguments"], destination: row["destination"])
        var record = ApprovalRecord(
            id: id,
            principal: row["principal"],
            domain: domain,
            request: request,
            requestHash: row["request_hash"],
            createdAt: row["created_at"],
            expiresAt: row["expires_at"],
            status: .pending
        )
        guard authenticator.verify(row["mac"], of: record),
            record.requestHash == request.hash(domain: domain)
        else { return (nil, [.init(table: approvalsTable, key: key, problem: "MAC does not verify")]) }
        var findings: [TamperFinding] = []
        var status = ApprovalRecord.Status.pending
        if let decision = try Row.fetchOne(
            db, sql: "SELECT * FROM policy_approval_decisions WHERE approval_id = ?", arguments: [id])
        {
            let parsed = DecisionRow(
                approvalID: id,
                seq: decision["seq"],
                approved: (decision["decision"] as String) == "approved",
                actor: decision["actor"],
                reason: decision["reason"],
                domain: domain,
                requestHash: decision["request_hash"],
                decidedAt: decision["decided_at"]
            )
            let validDecision =
                ["approved", "denied"].contains(decision["decision"] as String)
                && (decision["domain"] as String) == domain.rawValue
                && parsed.requestHash == record.requestHash
                && authenticator.verify(decision["mac"], of: parsed)
            if validDecision {
                status =
                    parsed.approved
                    ? .approved(by: parsed.actor, at: parsed.decidedAt)
                    : .denied(by: parsed.actor, at: parsed.decidedAt, reason: parsed.reason)
            } else {
                findings.append(.init(table: decisionsTable, key: "decision:\(id)", problem: "MAC does not verify"))
            }
        }
        if case .approved = status,
            let use = try Row.fetchOne(
                db, sql: "SELECT * FROM policy_approval_uses WHERE approval_id = ?", arguments: [id])
        {
            let usedAt: Int64 = use["used_at"]
            if authenticator.verify(
                use["mac"], of: ApprovalUseRow(approvalID: id, requestHash: use["request_hash"], usedAt: usedAt))
            {
                status = .used(at: usedAt)
            } else {
                // A forged "used" row can only block the approval: it stays unusable (fail closed).
                findings.append(.init(table: usesTable, key: "use:\(id)", problem: "MAC does not verify"))
                status = .used(at: usedAt)
            }
        }
        if now >= record.expiresAt, status == .pending || isApproved(status) {
            status = .expired
        }
        record = ApprovalRecord(
            id: record.id,
            principal: record.principal,
            domain: record.domain,
            request: record.request,
            requestHash: record.requestHash,
            createdAt: record.createdAt,
            expiresAt: record.expiresAt,
            status: status
        )
        return (record, findings)
    }

    static func isApproved(_ status: ApprovalRecord.Status) -> Bool {
        if case .approved = status { return true }
        return false
    }

    /// Verified owner decisions in `domain` made after `since`, in decision order.
    static func decisions(
        _ db: Database,
        domain: TrustDomain,
        since: Int64,
        authenticator: RowAuthenticator
    ) throws -> (valid: [DecisionRow], findings: [TamperFinding]) {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT d.*, a.mac AS approval_mac FROM policy_approval_decisions d
                JOIN policy_approvals a ON a.id = d.approval_id
                WHERE d.domain = ? AND d.decided_at > ? ORDER BY d.seq
                """,
            arguments: [domain.rawValue, since]
        )
        var valid: [DecisionRow] = []
        var findings: [TamperFinding] = []
        for row in rows {
            let decision: String = row["decision"]
            let parsed = DecisionRow(
                approvalID: row["approval_id"],
                seq: row["seq"],
                approved: decision == "approved",
                actor: row["actor"],
                reason: row["reason"],
                domain: domain,
                requestHash: row["request_hash"],
                decidedAt: row["decided_at"]
            )
            if ["approved", "denied"].contains(decision),
                authenticator.verify(row["mac"], of: parsed)
            {
                if parsed.actor == "owner" { valid.append(parsed) }
            } else {
                findings.append(
                    .init(table: decisionsTable, key: "decision:\(parsed.approvalID)", problem: "MAC does not verify"))
            }
        }
        return (valid, findings)
    }
}
