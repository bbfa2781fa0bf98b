public import Foundation
import GRDB
import MoatAudit
public import MoatCore
import MoatStore

/// One recorded change of a domain's trust level (rows are append-only).
public struct TrustChange: Sendable, Hashable {
    /// Why the level changed.
    public enum Kind: String, Sendable, Hashable {
        /// The owner set it with enough evidence (or lowered it).
        case set
        /// The owner raised it to 3 or 4 without enough evidence, with `--force` and a reason.
        case force
        /// Moat lowered it on evidence of harm (denials in a row, a sandbox violation).
        case lower
        /// The owner undid an earlier change.
        case rollback
    }

    public let id: Int64
    public let domain: TrustDomain
    public let from: TrustLevel
    public let to: TrustLevel
    public let kind: Kind
    public let actor: String
    public let reason: String
    /// A JSON object: the approvals and denials that justified the change.
    public let evidence: String
    /// For a rollback, the change it undid.
    public let rollbackOf: Int64?
    /// Milliseconds since 1970.
    public let createdAt: Int64
}

/// A domain's current trust and where it comes from.
public struct DomainTrust: Sendable, Hashable {
    public let domain: TrustDomain
    public let level: TrustLevel
    /// The change that set `level`, or nil when the configured default applies.
    public let lastChange: TrustChange?
    /// True when a row of this domain's history failed its MAC or chain check; the level is then held
    /// at or below the configured default until the owner records a new change.
    public let tampered: Bool
}

/// What the history says about a domain since its last change.
public struct TrustEvidence: Sendable, Hashable {
    /// Owner approvals in the domain since the last change.
    public let approvals: [String]
    /// Owner denials in the domain since the last change.
    public let denials: [String]

    /// Whether the default rule is met: at least `required` approvals and no denial.
    public func suffices(_ required: Int) -> Bool { approvals.count >= required && denials.isEmpty }
}

/// A stored trust change: the change and the MAC of the row before it in its domain, so removing or
/// reordering rows breaks the chain.
struct TrustChangeRow: AuthenticatedRow {
    static let macTable = "policy_trust_changes"
    let change: TrustChange
    /// The previous row's MAC; empty for a domain's first change.
    let prev: String

    var macFields: [String] {
        [
            String(change.id), change.domain.rawValue, String(change.from.rawValue), String(change.to.rawValue),
            change.kind.rawValue, change.actor, change.reason, change.evidence,
            change.rollbackOf.map(String.init) ?? "", String(change.createdAt), prev,
        ]
    }
}

extension PolicyEngine {
    static let changesTable = TrustChangeRow.macTable

    // MARK: Reading

    /// The current trust of every domain.
    public func trust() async throws(PolicyError) -> [DomainTrust] {
        let authenticator = self.authenticator
        let settings = self.settings
        let (states, findings) = try await read { db in
            var states: [DomainTrust] = []
            var findings: [TamperFinding] = []
            for domain in TrustDomain.allCases {
                let chain = try Self.chain(db, domain: domain, authenticator: authenticator, settings: settings)
                states.append(chain.state)
                findings += chain.findings
            }
            return (states, findings)
        }
        await reportTamper(findings)
        return states
    }

    /// The current trust of `domain`.
    public func trust(_ domain: TrustDomain) async throws(PolicyError) -> DomainTrust {
        let authenticator = self.authenticator
        let settings = self.settings
        let chain = try await read { db in
            try Self.chain(db, domain: domain, authenticator: authenticator, settings: settings)
        }
        await reportTamper(chain.findings)
        return chain.state
    }

    /// The verified changes, oldest first, of one domain or all.
    public func history(_ domain: TrustDomain? = nil) async throws(PolicyError) -> [TrustChange] {
        let authenticator = self.authenticator
        let settings = self.settings
        let (changes, findings) = try await read { db in
            var changes: [TrustChange] = []
            var findings: [TamperFinding] = []
            for each in domain.map({ [$0] }) ?? TrustDomain.allCases {
                let chain = try Self.chain(db, domain: each, authenticator: authenticator, settings: settings)
                changes += chain.valid
                findings += chain.findings
            }
            return (changes.sorted { $0.id < $1.id }, findings)
        }
        await reportTamper(findings)
        return changes
    }

    /// Owner approvals and denials in `domain` since its last change.
    public func evidence(_ domain: TrustDomain) async throws(PolicyError) -> TrustEvidence {
        let authenticator = self.authenticator
        let settings = self.settings
        let (evidence, findings) = try await read { db in
            let chain = try Self.chain(db, domain: domain, authenticator: authenticator, settings: settings)
            let since = chain.state.lastChange?.createdAt ?? 0
            let decisions = try Self.decisions(db, domain: domain, since: since, authenticator: authenticator)
            return (
                TrustEvidence(
                    approvals: decisions.valid.filter { $0.approved }.map(\.approvalID),
                    denials: decisions.valid.filter { !$0.approved }.map(\.approvalID)
                ),
                chain.findings + decisions.findings
            )
        }
        await reportTamper(findings)
        return evidence
    }

    // MARK: Changing

    /// Sets `domain` to `level`, recording who, why and the evidence.
    ///
    /// Raising to 3 or 4 needs ``PolicySettings/evidenceApprovals`` owner approvals in the domain with
    /// no denial since the last change, or `force` (recorded as a `force` change with the reason).
    /// - Throws: ``PolicyError`` `.invalidInput` (empty reason, same level), `.evidenceMissing`,
    ///   `.conflict` when another change landed first, `.storage` when the audit append or write fails.
    @discardableResult
    public func setTrust(
        _ domain: TrustDomain,
        to level: TrustLevel,
        reason: String,
        force: Bool = false,
        actor: String = "owner"
    ) async throws -> TrustChange {
        try await change(domain, to: level, reason: reason, force: force, actor: actor, rollbackOf: nil)
    }

    /// Undoes change `id`: its domain goes back to the level it had before, as a new recorded change.
    ///
    /// A rollback that raises a domain to 3 or 4 follows the same evidence rule as ``setTrust``.
    @discardableResult
    public func rollback(
        _ id: Int64,
        reason: String? = nil,
        force: Bool = false,
        actor: String = "owner"
    ) async throws -> TrustChange {
        let target = try await history().first { $0.id == id }
        guard let target else {
            throw PolicyError(.notFound, "no trust change \(id) (see `moat trust history`)")
        }
        return try await change(
            target.domain,
            to: target.from,
            reason: reason ?? "rollback of change \(id)",
            force: force,
            actor: actor,
            rollbackOf: id
        )
    }

    /// Lowers `domain` to at most `inform` because a sandboxed action in it violated the sandbox.
    ///
    /// - Returns: the change, or nil when the domain was already at `inform` or below.
    @discardableResult
    public func recordSandboxViolation(_ domain: TrustDomain, detail: String) async throws -> TrustChange? {
        let current = try await trust(domain)
        guard current.level > .inform else { return nil }
        return try await lower(
            domain,
            from: current.level,
            to: .inform,
            reason: "a sandboxed action violated the sandbox: \(PolicyError.printable(detail, limit: 200))",
            evidence: ["sandbox_violation": detail]
        )
    }

    func lower(
        _ domain: TrustDomain,
        from: TrustLevel,
        to: TrustLevel,
        reason: String,
        evidence: [String: String]
    ) async throws -> TrustChange {
        let evidenceJSON = Self.json(evidence.mapValues { PolicyError.printable($0, limit: 200) })
        return try await record(
            domain,
            from: from,
            to: to,
            kind: .lower,
            actor: "system",
            reason: reason,
            evidence: evidenceJSON,
            rollbackOf: nil
        )
    }

    private func change(
        _ domain: TrustDomain,
        to level: TrustLevel,
        reason rawReason: String,
        force: Bool,
        actor: String,
        rollbackOf: Int64?
    ) async throws -> TrustChange {
        let reason = rawReason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw PolicyError(.invalidInput, "a reason is required (--reason TEXT); it is recorded with the change")
        }
        guard reason.count <= 500 else { throw PolicyError(.invalidInput, "the reason is longer than 500 characters") }
        let current = try await trust(domain)
        guard current.level != level else {
            throw PolicyError(.invalidInput, "\(domain) is already at \(level); nothing was changed")
        }
        let evidence = try await evidence(domain)
        var kind: TrustChange.Kind = rollbackOf == nil ? .set : .rollback
        if level > current.level && level >= .actAndReport && !evidence.suffices(settings.evidenceApprovals) {
            guard force else {
                throw PolicyError(
                    .evidenceMissing,
                    "raising \(domain) to \(level) needs \(settings.evidenceApprovals) approved actions in \(domain) "
                        + "with no denial since its last change (it has \(evidence.approvals.count) approved, "
                        + "\(evidence.denials.count) denied); approve more of its suggestions first, or pass "
                        + "--force with a reason (recorded)"
                )
            }
            if rollbackOf == nil { kind = .force }
        }
        let evidenceJSON = Self.evidenceJSON(evidence, forced: force, since: current.lastChange?.id)
        return try await record(
            domain,
            from: current.level,
            to: level,
            kind: kind,
            actor: actor,
            reason: reason,
            evidence: evidenceJSON,
            rollbackOf: rollbackOf
        )
    }

    private func record(
        _ domain: TrustDomain,
        from: TrustLevel,
        to: TrustLevel,
        kind: TrustChange.Kind,
        actor: String,
        reason: String,
        evidence: String,
        rollbackOf: Int64?
    ) async throws -> TrustChange {
        var metadata: [String: AuditValue] = [
            "from": .int(Int64(from.rawValue)), "to": .int(Int64(to.rawValue)), "kind": .string(kind.rawValue),
            "reason": .string(reason), "evidence": .string(evidence),
        ]
        if let rollbackOf { metadata["rollback_of"] = .int(rollbackOf) }
        let event = AuditEvent(actor: actor, action: "trust.change", target: domain.rawValue, metadata: metadata)
        let authenticator = self.authenticator
        let settings = self.settings
        let createdAt = nowMillis()
        return try await audited(event) {
            try await self.write { db in
                let chain = try Self.chain(db, domain: domain, authenticator: authenticator, settings: settings)
                guard chain.state.level == from else {
                    throw PolicyError(.conflict, "\(domain) changed meanwhile (now \(chain.state.level)); try again")
                }
                let id = (try Int64.fetchOne(db, sql: "SELECT max(id) FROM \(Self.changesTable)") ?? 0) + 1
                let change = TrustChange(
                    id: id,
                    domain: domain,
                    from: from,
                    to: to,
                    kind: kind,
                    actor: actor,
                    reason: reason,
                    evidence: evidence,
                    rollbackOf: rollbackOf,
                    createdAt: max(createdAt, (chain.lastStoredTime ?? 0) + 1)
                )
                let prev = chain.lastStoredMAC ?? ""
                let mac = authenticator.mac(TrustChangeRow(change: change, prev: prev))
                try db.execute(
                    sql: """
                        INSERT INTO policy_trust_changes
                          (id, domain, from_level, to_level, kind, actor, reason, evidence, rollback_of, created_at,
                           prev_mac, mac)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        change.id, domain.rawValue, from.rawValue, to.rawValue, kind.rawValue, actor, reason, evidence,
                        rollbackOf, change.createdAt, prev, mac,
                    ]
                )
                return change
            }
        }
    }

    // MARK: Rows

    struct Chain: Sendable {
        var valid: [TrustChange] = []
        var state: DomainTrust
        var findings: [TamperFinding] = []
        var lastStoredMAC: String?
        var lastStoredTime: Int64?
    }

    /// Walks a domain's changes in order. The current level is the last row's when that row verifies and
    /// links to the row before it; when a later row fails, the last good row's level is still capped at
    /// the configured default (fail closed: deleting or forging rows can never raise a level).
    static func chain(
        _ db: Database,
        domain: TrustDomain,
        authenticator: RowAuthenticator,
        settings: PolicySettings
    ) throws -> Chain {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT id, domain, from_level, to_level, kind, actor, reason, evidence, rollback_of, created_at,
                       prev_mac, mac
                FROM policy_trust_changes WHERE domain = ? ORDER BY id
                """,
            arguments: [domain.rawValue]
        )
        let fallback = settings.defaultLevel(domain)
        var chain = Chain(state: DomainTrust(domain: domain, level: fallback, lastChange: nil, tampered: false))
        var previousMAC = ""
        var lastGood: TrustChange?
        var brokenAfterGood = false
        for row in rows {
            let id: Int64 = row["id"]
            let storedPrev: String = row["prev_mac"]
            let mac: String = row["mac"]
            defer {
                previousMAC = mac
                chain.lastStoredMAC = mac
                chain.lastStoredTime = row["created_at"]
            }
            guard let from = (row["from_level"] as Int?).flatMap(TrustLevel.init(rawValue:)),
                let to = (row["to_level"] as Int?).flatMap(TrustLevel.init(rawValue:)),
                let kind = (row["kind"] as String?).flatMap(TrustChange.Kind.init(rawValue:))
            else {
                chain.findings.append(.init(table: changesTable, key: "trust_change:\(id)", problem: "malformed row"))
                brokenAfterGood = true
                continue
            }
            let change = TrustChange(
                id: id,
                domain: domain,
                from: from,
                to: to,
                kind: kind,
                actor: row["actor"],
                reason: row["reason"],
                evidence: row["evidence"],
                rollbackOf: row["rollback_of"],
                createdAt: row["created_at"]
            )
            guard authenticator.verify(mac, of: TrustChangeRow(change: change, prev: storedPrev)) else {
                chain.findings.append(
                    .init(table: changesTable, key: "trust_change:\(id)", problem: "MAC does not verify"))
                brokenAfterGood = true
                continue
            }
            guard storedPrev == previousMAC else {
                chain.findings.append(
                    .init(table: changesTable, key: "trust_change:\(id)", problem: "chain link broken (rows removed)"))
                brokenAfterGood = true
                continue
            }
            chain.valid.append(change)
            lastGood = change
            brokenAfterGood = false
        }
        if let lastGood {
            let level = brokenAfterGood ? min(lastGood.to, fallback) : lastGood.to
            chain.state = DomainTrust(domain: domain, level: level, lastChange: lastGood, tampered: brokenAfterGood)
        } else if !rows.isEmpty {
            chain.state = DomainTrust(domain: domain, level: fallback, lastChange: nil, tampered: true)
        }
        if !chain.findings.isEmpty && !chain.state.tampered {
            // An earlier row failed but a later genuine change re-anchored the chain: the current level
            // is sound, the bad rows stay reported.
            chain.state = DomainTrust(
                domain: domain, level: chain.state.level, lastChange: chain.state.lastChange, tampered: false)
        }
        return chain
    }

    static func evidenceJSON(_ evidence: TrustEvidence, forced: Bool, since: Int64?) -> String {
        let approvals = evidence.approvals.prefix(50).map { "\"\($0)\"" }.joined(separator: ",")
        let denials = evidence.denials.prefix(50).map { "\"\($0)\"" }.joined(separator: ",")
        let sinceText = since.map(String.init) ?? "null"
        return "{\"approved\":\(evidence.approvals.count),\"approvals\":[\(approvals)],\"denied\":"
            + "\(evidence.denials.count),\"denials\":[\(denials)],\"forced\":\(forced),\"since_change\":\(sinceText)}"
    }

    static func json(_ values: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
