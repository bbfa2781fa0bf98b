import Foundation
public import MoatAuth
import MoatCore
public import MoatPolicy

/// The owner's policy commands (`moat trust …`, `moat approvals …`) as admin operations: run by the
/// server for requests on the admin socket, or in the command's own process when no server runs, with
/// the same checks, output and audit entries either way (like ``OwnerOperations``).
public struct PolicyOperations: Sendable {
    let engine: PolicyEngine

    public init(engine: PolicyEngine) {
        self.engine = engine
    }

    /// Every operation name.
    public static let names = [
        "trust.show", "trust.set", "trust.history", "trust.rollback",
        "approvals.list", "approvals.show", "approvals.approve", "approvals.deny",
    ]

    /// Runs one request; the response is what the command prints and its exit status.
    public func perform(_ request: AdminRequest) async -> AdminResponse {
        do {
            return AdminResponse(status: 0, output: try await run(request))
        } catch let error as PolicyError {
            return AdminResponse(status: error.kind.exitCode, error: error.message)
        } catch let error as UsageError {
            return AdminResponse(status: ExitStatus.usage, error: error.message)
        } catch {
            return AdminResponse(status: ExitStatus.failure, error: "\(error)")
        }
    }

    struct UsageError: Error {
        let message: String
    }

    private func run(_ request: AdminRequest) async throws -> String {
        let params = request.params
        let force = params["force"] == "true"
        switch request.op {
        case "trust.show":
            return try await engine.trust().map(Self.line).joined()
        case "trust.set":
            let domain = try Self.domain(params["domain"])
            guard let level = params["level"].flatMap(TrustLevel.init(argument:)) else {
                throw UsageError(message: "level must be 0-4 or none, inform, suggest, act, full")
            }
            let change = try await engine.setTrust(domain, to: level, reason: params["reason"] ?? "", force: force)
            return "change \(change.id): \(domain) \(change.from) -> \(change.to) (\(change.kind.rawValue))\n"
        case "trust.history":
            let domain = try params["domain"].map { try Self.domain($0) }
            return try await engine.history(domain).map(Self.line).joined()
        case "trust.rollback":
            guard let id = params["id"].flatMap(Int64.init) else {
                throw UsageError(message: "the change id must be a number (see `moat trust history`)")
            }
            let change = try await engine.rollback(id, reason: params["reason"], force: force)
            return "change \(change.id): \(change.domain) \(change.from) -> \(change.to) (rollback of \(id))\n"
        case "approvals.list":
            let all = params["all"] == "true"
            let records = try await engine.approvals(pendingOnly: !all)
            if params["json"] == "true" {
                let data = try JSONSerialization.data(withJSONObject: records.map(Self.json), options: [.sortedKeys])
                return String(decoding: data, as: UTF8.self) + "\n"
            }
            if records.isEmpty { return all ? "no approvals\n" : "no pending approvals\n" }
            return records.map { Self.line($0) + "\n" }.joined()
        case "approvals.show":
            let record = try await engine.approval(params["id"] ?? "")
            return Self.line(record) + "\n"
                + PrintableText.strip("tool:        \(record.request.tool)") + "\n"
                + PrintableText.strip("arguments:   \(record.request.arguments)") + "\n"
                + PrintableText.strip("destination: \(record.request.destination)") + "\n"
                + "hash:        \(record.requestHash)\n"
        case "approvals.approve":
            return "approved \(try await engine.approve(params["id"] ?? "").id)\n"
        case "approvals.deny":
            return "denied \(try await engine.deny(params["id"] ?? "", reason: params["reason"] ?? "").id)\n"
        default:
            throw UsageError(message: "unknown admin operation \(PrintableText.strip(String(request.op.prefix(60))))")
        }
    }

    static func domain(_ text: String?) throws -> TrustDomain {
        guard let text, let domain = TrustDomain(rawValue: text) else {
            throw UsageError(
                message: "domain must be one of: " + TrustDomain.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return domain
    }

    static func line(_ item: DomainTrust) -> String {
        var line = "\(item.domain.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0))\(item.level)"
        if let change = item.lastChange {
            line += "  (change \(change.id), \(PolicyEngine.timestamp(change.createdAt)), \(change.kind.rawValue))"
        } else {
            line += "  (default)"
        }
        if item.tampered { line += "  TAMPERED ROWS IGNORED, see `moat audit tail`" }
        return PrintableText.strip(line) + "\n"
    }

    static func line(_ change: TrustChange) -> String {
        var line =
            "\(change.id)  \(PolicyEngine.timestamp(change.createdAt))  \(change.domain)  "
            + "\(change.from.rawValue) -> \(change.to.rawValue)  \(change.kind.rawValue)  by \(change.actor)"
        if let undone = change.rollbackOf { line += "  (undoes \(undone))" }
        line += "  reason: \(change.reason)  evidence: \(change.evidence)"
        return PrintableText.strip(line) + "\n"
    }

    static func line(_ record: ApprovalRecord) -> String {
        PrintableText.strip(
            "\(record.id)  \(record.status)  \(record.domain)  \(record.request.tool)  "
                + "\(record.request.destination.isEmpty ? "-" : record.request.destination)  by \(record.principal)  "
                + "expires \(PolicyEngine.timestamp(record.expiresAt))"
        )
    }

    static func json(_ record: ApprovalRecord) -> [String: Any] {
        [
            "id": record.id, "status": record.status.description, "domain": record.domain.rawValue,
            "tool": record.request.tool, "arguments": record.request.arguments,
            "destination": record.request.destination, "request_hash": record.requestHash,
            "principal": record.principal, "created_at": PolicyEngine.timestamp(record.createdAt),
            "expires_at": PolicyEngine.timestamp(record.expiresAt),
        ]
    }
}

/// Every admin operation, routed by its prefix: `owner.` and `token.` to ``OwnerOperations``, `trust.`
/// and `approvals.` to ``PolicyOperations``.
public struct AdminOperations: Sendable {
    let owner: OwnerOperations
    let policy: PolicyOperations

    public init(owner: OwnerOperations, policy: PolicyOperations) {
        self.owner = owner
        self.policy = policy
    }

    /// Runs one request; `client` names the caller for the audit log.
    public func perform(_ request: AdminRequest, client: ClientInfo) async -> AdminResponse {
        if request.op.hasPrefix("owner.") || request.op.hasPrefix("token.") {
            return await owner.perform(request, client: client)
        }
        if request.op.hasPrefix("trust.") || request.op.hasPrefix("approvals.") {
            return await policy.perform(request)
        }
        return AdminResponse(
            status: ExitStatus.usage,
            error: "unknown admin operation \(PrintableText.strip(String(request.op.prefix(60)))); "
                + "this moat and the running server may be different versions")
    }
}
