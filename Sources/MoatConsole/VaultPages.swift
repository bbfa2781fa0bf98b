import Foundation
import Hummingbird
import MoatAdmin
import MoatAudit
import MoatCore
import MoatHTTP
import MoatVault

/// The console's vault page (`/vault`): each secret's name and policy (the tools that may receive it,
/// the hosts it may be sent to), when it was added and last replaced, and its last use — never a value:
/// the page is built from `vault.list`, whose answer carries none, and from the newest `vault.use` audit
/// entry per secret (written by the pipeline before a tool sends the secret: time, tool, host).
enum VaultPages {
    static func register(on pages: RouterGroup<GatewayRequestContext>, operations: AdminOperations, audit: AuditLog?) {
        pages.get("/vault") { request, context -> Response in
            var reads = ConsoleReads(operations, request, context)
            var values: [String: Any] = [:]
            var problems: [String] = []
            if let secrets = await reads.read(
                .vaultList, "the vault",
                { result in
                    if case .vaultSecrets(let secrets) = result { secrets } else { nil }
                })
            {
                var uses: [String: AuditEntry] = [:]
                if let audit {
                    do {
                        uses = try await AuditReader.newestPerTarget(of: audit.database, action: "vault.use")
                    } catch {
                        problems.append("Could not read the secrets' last use from the audit log: \(error)")
                    }
                }
                values["secrets"] = secrets.map { secret -> [String: Any] in
                    [
                        "name": PrintableText.strip(secret.name),
                        "tools": secret.policy.tools.isEmpty
                            ? "none" : PrintableText.strip(secret.policy.tools.joined(separator: ", ")),
                        "hosts": secret.policy.hosts.isEmpty
                            ? "none" : PrintableText.strip(secret.policy.hosts.joined(separator: ", ")),
                        "added": AuditLog.timestamp(secret.createdAt), "updated": AuditLog.timestamp(secret.updatedAt),
                        "lastUse": uses[secret.name].map(lastUse) ?? "never",
                    ]
                }
                values["hasSecrets"] = !secrets.isEmpty
            }
            values["notice"] = ConsoleNotices.take(request, problems: reads.problems + problems)
            return ConsoleRoutes.page(
                "vault", "Vault", ConsoleTemplates.render("vault", values), path: "/vault", context: context)
        }
    }

    /// A `vault.use` entry as the page says it: when, by which tool, to which host (from the entry's
    /// metadata, which names no value).
    static func lastUse(_ entry: AuditEntry) -> String {
        let metadata =
            (try? JSONSerialization.jsonObject(with: Data(entry.metadata.utf8))) as? [String: Any] ?? [:]
        let tool = metadata["tool"] as? String ?? "a tool"
        let host = (metadata["host"] as? String).map { " to " + $0 } ?? ""
        return PrintableText.strip("\(entry.time) by \(tool)\(host)")
    }
}
