import Foundation
import Hummingbird
import MoatAdmin
import MoatCore
import MoatHTTP

/// The console's trust page (`/trust`): the nine domains with their levels and last change, a form per
/// domain to lower or raise it with a recorded reason (raising to 3 or 4 needs the evidence the rule asks
/// for, or `force`, as `moat trust set`), and the history with evidence and a rollback per change. The
/// forms run ``AdminOperation/trustSet(domain:level:reason:force:)`` and
/// ``AdminOperation/trustRollback(id:reason:force:)``, the CLI's own operations.
enum TrustPages {
    static func register(on pages: RouterGroup<GatewayRequestContext>, operations: AdminOperations) {
        pages.get("/trust") { request, context -> Response in
            let values = await show(request, context, operations: operations)
            return ConsoleRoutes.page(
                "trust", "Trust", ConsoleTemplates.render("trust", values), path: "/trust", context: context)
        }
        pages.post("/trust/domain/{domain}") { request, context -> Response in
            guard let domain = TrustDomain(rawValue: context.parameters.get("domain") ?? "") else {
                return Response(status: .notFound)
            }
            let form = try await ConsoleNotices.form(request)
            guard let number = Int(form["level"] ?? ""), let level = TrustLevel(rawValue: number) else {
                return ConsoleNotices.redirect("/trust", "Choose a level from 0 to 4; nothing was changed.", ok: false)
            }
            let reason = PrintableText.excerpt(form["reason"] ?? "", limit: 300)
            let operation = AdminOperation.trustSet(
                domain: domain, level: level, reason: reason, force: form["force"] == "on")
            return await ConsoleNotices.run(operation, request, context, operations, back: "/trust") { result in
                guard case .trustChanged(let change) = result else { return "Done." }
                return "Change \(change.id): \(change.domain) \(change.from.rawValue) → \(change.to.rawValue) "
                    + "(\(change.to.name))."
            }
        }
        pages.post("/trust/rollback/{id}") { request, context -> Response in
            guard let id = Int64(context.parameters.get("id") ?? "") else { return Response(status: .notFound) }
            let form = try await ConsoleNotices.form(request)
            let reason = PrintableText.excerpt(form["reason"] ?? "", limit: 300)
            let operation = AdminOperation.trustRollback(
                id: id, reason: reason.isEmpty ? nil : reason, force: form["force"] == "on")
            return await ConsoleNotices.run(operation, request, context, operations, back: "/trust") { result in
                guard case .trustRolledBack(let change, let of) = result else { return "Done." }
                return "Change \(change.id) rolled back change \(of): \(change.domain) \(change.from.rawValue) → "
                    + "\(change.to.rawValue) (\(change.to.name))."
            }
        }
    }

    static func show(
        _ request: Request, _ context: GatewayRequestContext, operations: AdminOperations
    ) async -> [String: Any] {
        var reads = ConsoleReads(operations, request, context)
        var values: [String: Any] = [:]
        if let domains = await reads.read(
            .trustShow, "the trust levels",
            { result in
                if case .trust(let domains) = result { domains } else { nil }
            })
        {
            values["domains"] = domains.map { item -> [String: Any] in
                var row: [String: Any] = [
                    "domain": item.domain.rawValue, "level": item.level.rawValue, "name": item.level.name,
                    "tampered": item.tampered, "hasChange": item.lastChange != nil,
                    "levels": TrustLevel.allCases.map { level -> [String: Any] in
                        [
                            "value": level.rawValue, "name": "\(level.rawValue) \(level.name)",
                            "selected": level == item.level,
                        ]
                    },
                ]
                if let change = item.lastChange {
                    row["changed"] = ConsoleRoutes.time(change.createdAt)
                    row["actor"] = PrintableText.strip(change.actor)
                    row["reason"] = PrintableText.strip(change.reason)
                }
                return row
            }
        }
        if let changes = await reads.read(
            .trustHistory(domain: nil), "the trust history",
            { result in
                if case .trustHistory(let changes) = result { changes } else { nil }
            })
        {
            let rows = changes.suffix(100).reversed().map { change -> [String: Any] in
                [
                    "id": change.id, "time": ConsoleRoutes.time(change.createdAt), "domain": change.domain.rawValue,
                    "from": "\(change.from.rawValue) \(change.from.name)",
                    "to": "\(change.to.rawValue) \(change.to.name)",
                    "kind": PrintableText.strip(change.kind), "actor": PrintableText.strip(change.actor),
                    "reason": PrintableText.strip(change.reason), "evidence": PrintableText.strip(change.evidence),
                    "hasEvidence": !change.evidence.isEmpty,
                ]
            }
            values["history"] = rows
            values["hasHistory"] = !rows.isEmpty
        }
        values["notice"] = ConsoleNotices.take(request, problems: reads.problems)
        return values
    }
}
