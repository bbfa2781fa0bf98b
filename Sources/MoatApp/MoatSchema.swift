import MoatAgent
import MoatAudit
import MoatAuth
import MoatChannels
import MoatPolicy
public import MoatStore

/// Every migration of `moat.db`, in the one order they run: the only place that order is written.
///
/// Each module owns its migrations (``StoreSchema``, ``AuditSchema``, ``PolicySchema``, ``AuthSchema``,
/// ``AgentSchema``); this list decides when each runs. Append-only: a new migration goes at the end, and the
/// names and order below never change, so every `moat.db` written by an earlier Moat opens unchanged
/// (Tests/Fixtures/previous-release holds one).
public enum MoatSchema {
    public static let migrations: [SchemaMigration] = [
        StoreSchema.meta,  // 2026-11-23 meta
        AuditSchema.log,  // 2026-11-23 audit
        PolicySchema.tables,  // 2026-11-23 policy
        AuthSchema.owner,  // 2026-11-24 owner
        AgentSchema.conversations,  // 2026-12-06 agent
        AgentSchema.usageByProvider,  // 2026-12-06 agent usage by provider
        AgentSchema.routes,  // 2026-12-06 agent routes
        PolicySchema.ownerBindings,  // 2026-12-06 policy owner bindings
        ChannelSchema.tables,  // 2026-12-06 channels
    ]
}
