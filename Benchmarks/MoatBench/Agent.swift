import Foundation
import MoatAgent
import MoatAudit
import MoatCore
import MoatPolicy
import MoatProviders
import MoatStore
import MoatTools
import MoatVault

/// A model that answers at once, so what is measured is the gateway's own work per message.
struct InstantModel: ModelProvider {
    let name = "instant"
    func complete(
        _ request: ModelRequest, onText: @escaping @Sendable (String) async -> Void
    ) async throws(ProviderError) -> ModelReply {
        ModelReply(text: "ok", finishReason: "stop", usage: TokenUsage(input: 10, output: 1))
    }
}

struct SilentNotifier: OwnerNotifier {
    func notify(_ notice: OwnerNotice) async {}
}

/// `moat-bench agent`: messages per second through the whole pipeline (principal, rate limit, flagger,
/// moat.db, audit appends, one model round, reply) and the latency it adds per message (p50, p99), with
/// a model that answers at once. `--conversations` messages are in flight at a time, each in its own
/// conversation.
func agentBenchmark(directory: String) async throws {
    let messages = option("--messages", 5000)
    let conversations = option("--conversations", 16)
    let database = try MoatDatabase(
        path: directory + "/agent.db",
        migrations: [
            StoreSchema.meta, AuditSchema.log, PolicySchema.tables, AgentSchema.conversations,
            AgentSchema.usageByProvider,
        ])
    var password = Array("benchmark vault password".utf8)
    let vault = try UnlockedVault.create(
        paths: VaultPaths(stateDirectory: directory), password: SecretBytes(wiping: &password),
        parameters: try Argon2Parameters(memoryKiB: 19 * 1024, iterations: 2, parallelism: 1))
    let audit = AuditLog(database: database, keys: try AuditKeyring.keys(from: vault), origin: "moat/bench")
    let policy = PolicyEngine(
        database: database, authenticator: try PolicyKeyring.authenticator(from: vault), audit: audit)
    var settings = AgentSettings()
    // One principal sends everything here; the per-principal limit is not what is measured.
    settings.messagesPerMinute = Int.max / 2
    let agent = Agent(
        provider: InstantModel(), tools: [], policy: policy, audit: audit, vault: vault, database: database,
        authenticator: try AgentKeyring.authenticator(from: vault), settings: settings, notifier: SilentNotifier())
    let clock = ContinuousClock()
    let perTask = messages / conversations
    let started = clock.now
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for task in 0..<conversations {
            group.addTask {
                var times: [Double] = []
                times.reserveCapacity(perTask)
                for index in 0..<perTask {
                    let message = InboundMessage(
                        channel: InboundMessage.ownerChannel, senderID: "owner", conversation: "bench-\(task)",
                        text: "what is on my calendar tomorrow? (\(index))", idempotencyKey: "\(task)-\(index)")
                    let begin = clock.now
                    _ = try await agent.handle(message)
                    times.append(seconds(clock.now - begin))
                }
                return times
            }
        }
        var all: [Double] = []
        for try await times in group { all += times }
        return all.sorted()
    }
    let elapsed = seconds(clock.now - started)
    func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
    print(
        String(
            format: "agent: %d messages in %d conversations in %.2f s = %.0f messages/s", latencies.count,
            conversations, elapsed, Double(latencies.count) / elapsed))
    print(
        String(
            format: "agent: added latency per message p50 %.2f ms, p99 %.2f ms", percentile(0.5) * 1000,
            percentile(0.99) * 1000))
    try database.close()
}
