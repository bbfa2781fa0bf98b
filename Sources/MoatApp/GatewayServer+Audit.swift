public import MoatAudit
public import MoatConfig
public import MoatCore
import MoatHTTP
public import MoatStore
public import MoatVault

extension GatewayServer {
    /// Opens the audit log with the keys from the vault and records how the server came up.
    ///
    /// Fail-closed: if the first entries cannot be appended, the gateway does not start (it would
    /// otherwise act without a record).
    public func openAudit(
        state: InstallationState,
        vault: UnlockedVault,
        vaultSource: String,
        metrics: ServerMetrics = ServerMetrics()
    ) async throws(GatewayError) -> AuditLog {
        let log = try state.auditLog(vault: vault)
        await log.attach(metrics.metrics)
        do {
            var unlocked: [String: AuditValue] = ["source": .string(vaultSource)]
            unlocked.merge(VaultRollbackGuard.metadata(vault.revision)) { $1 }
            try await log.append(AuditEvent(actor: "system", action: "vault.unlock", metadata: unlocked))
            try await log.append(
                AuditEvent(
                    actor: "system",
                    action: "config.loaded",
                    target: configurationSource,
                    metadata: [
                        "host": .string(configuration.host),
                        "port": .int(Int64(configuration.port)),
                        "tls": .bool(configuration.tls != nil),
                        "auth_mode": .string(configuration.authMode.rawValue),
                        "allowed_hosts": .array(configuration.allowedHosts.map { .string($0) }),
                    ]
                )
            )
            return log
        } catch let error as AuditError {
            throw GatewayError(.startup, "refusing to start without an audit record: \(error.message)")
        } catch {
            throw GatewayError(.startup, "refusing to start without an audit record: \(error)")
        }
    }

    /// The metadata of `gateway.start`.
    func startMetadata(port: Int) -> [String: AuditValue] {
        [
            "address": .string(bind.address.description),
            "port": .int(Int64(port)),
            "loopback_only": .bool(bind.isLoopback),
            "tls": .bool(bind.tls != nil),
            "version": .string(MoatVersion.current),
        ]
    }
}
