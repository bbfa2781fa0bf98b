import Foundation
import Hummingbird
import MoatAdmin
import MoatAudit
import MoatCore
import MoatHTTP
import MoatVault

/// The console's vault page (`/vault`): each secret's name and policy (the tools that may receive it,
/// the hosts it may be sent to), when it was added and last replaced — never a value: the page is built
/// from `vault.list`, whose answer carries none.
enum VaultPages {
    static func register(on pages: RouterGroup<GatewayRequestContext>, operations: AdminOperations) {
        pages.get("/vault") { request, context -> Response in
            var reads = ConsoleReads(operations, request, context)
            var values: [String: Any] = [:]
            if let secrets = await reads.read(
                .vaultList, "the vault",
                { result in
                    if case .vaultSecrets(let secrets) = result { secrets } else { nil }
                })
            {
                values["secrets"] = secrets.map { secret -> [String: Any] in
                    [
                        "name": PrintableText.strip(secret.name),
                        "tools": secret.policy.tools.isEmpty
                            ? "none" : PrintableText.strip(secret.policy.tools.joined(separator: ", ")),
                        "hosts": secret.policy.hosts.isEmpty
                            ? "none" : PrintableText.strip(secret.policy.hosts.joined(separator: ", ")),
                        "added": AuditLog.timestamp(secret.createdAt), "updated": AuditLog.timestamp(secret.updatedAt),
                    ]
                }
                values["hasSecrets"] = !secrets.isEmpty
            }
            values["notice"] = ConsoleNotices.take(request, problems: reads.problems)
            return ConsoleRoutes.page(
                "vault", "Vault", ConsoleTemplates.render("vault", values), path: "/vault", context: context)
        }
    }
}
