import Foundation
import GRDB
import MoatAgent
import MoatAudit
import MoatCore
import MoatPolicy
import MoatProviders
import MoatStore
import MoatTools
import MoatVault

/// A model that answers at once inside the process (`--in-process`): the pipeline without any HTTP.
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
/// moat.db, audit appends, one model round through the real ``OpenAICompatibleProvider`` to a stub model
/// on loopback that answers at once (``StubModelServer``), reply) and the latency the gateway adds per
/// message (p50, p99): a turn's time minus the time the stub spent on its request, so the provider's own
/// work (request JSON, connection, reading the stream) counts as added. `--conversations` messages are in
/// flight at a time, each in its own conversation. `--in-process` uses a model inside the process instead
/// (no HTTP at all), to see the rest of the pipeline alone.
func agentBenchmark(
    directory: String, messages: Int, conversations: Int, aloneMessages: Int, inProcess: Bool
) async throws -> AgentFigures {
    let database = try MoatDatabase(
        path: directory + "/agent.db",
        migrations: [
            StoreSchema.meta, AuditSchema.log, PolicySchema.tables, AgentSchema.conversations,
            AgentSchema.usageByProvider, AgentSchema.routes, PolicySchema.ownerBindings,
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
    let stub = inProcess ? nil : try await StubModelServer.start()
    let provider: any ModelProvider =
        try stub.map {
            try OpenAICompatibleProvider(
                settings: ProviderSettings(name: "stub", baseURL: $0.baseURL, model: "bench"), vault: nil)
        }
        ?? InstantModel()
    let agent = Agent(
        provider: provider, tools: [], policy: policy, audit: audit, vault: vault, database: database,
        authenticator: try AgentKeyring.authenticator(from: vault), settings: settings, notifier: SilentNotifier())
    print(
        inProcess
            ? "agent: model in the process (no HTTP)" : "agent: stub model on loopback through OpenAICompatibleProvider"
    )
    try diskFloor(database, commits: option("--floor-commits", 300))
    // Throughput under load, then the latency one message at a time adds when nothing queues before it.
    let load = try await agentPhase(agent, stub: stub, name: "load", messages: messages, conversations: conversations)
    let alone = try await agentPhase(
        agent, stub: stub, name: "alone", messages: aloneMessages, conversations: option("--alone-conversations", 1))
    await stub?.stop()
    try database.close()
    return AgentFigures(load: load, alone: alone)
}

/// One phase's figures: messages per second and the added latency per message (milliseconds).
struct AgentPhase {
    var messages: Int
    var messagesPerSecond: Double
    var addedP50: Double
    var addedP99: Double
}

/// `moat-bench agent`'s figures: throughput under load, latency one message at a time.
struct AgentFigures {
    var load: AgentPhase
    var alone: AgentPhase
}

/// What one durable commit of `moat.db` costs on this disk (one small row, `synchronous=FULL`: the WAL's
/// fsync), p50 and p99: a plain message's turn waits for two of them (the model round's entry before the
/// request leaves, which also puts the message stored before it on disk, and the reply with its entry),
/// so they bound the added latency from below.
func diskFloor(_ database: MoatDatabase, commits: Int) throws {
    try database.pool.write { db in try db.execute(sql: "CREATE TABLE IF NOT EXISTS main.bench_floor (x BLOB)") }
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<commits {
        let begin = clock.now
        try database.pool.write { db in
            try db.execute(sql: "INSERT INTO main.bench_floor (x) VALUES (zeroblob(200))")
        }
        times.append(seconds(clock.now - begin) * 1000)
    }
    times.sort()
    print(
        String(
            format:
                "disk: one durable commit of moat.db p50 %.2f ms, p99 %.2f ms (%d commits; a plain message's turn waits for 2)",
            times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)], commits))
}

/// One run of `messages` owner messages, `conversations` in flight at a time (each in its own
/// conversation); prints messages per second and the added latency (p50, p99).
func agentPhase(
    _ agent: Agent, stub: StubModelServer?, name: String, messages: Int, conversations: Int
) async throws -> AgentPhase {
    let clock = ContinuousClock()
    let perTask = max(1, messages / conversations)
    let started = clock.now
    let turns = try await withThrowingTaskGroup(of: [(String, Duration)].self) { group in
        for task in 0..<conversations {
            group.addTask {
                var times: [(String, Duration)] = []
                times.reserveCapacity(perTask)
                for index in 0..<perTask {
                    let marker = "[bench \(name)-\(task)-\(index)]"
                    let message = InboundMessage(
                        channel: InboundMessage.ownerChannel, senderID: "owner", conversation: "\(name)-\(task)",
                        text: "what is on my calendar tomorrow? \(marker)", idempotencyKey: marker)
                    let begin = clock.now
                    _ = try await agent.handle(message)
                    times.append((marker, clock.now - begin))
                }
                return times
            }
        }
        var all: [(String, Duration)] = []
        for try await times in group { all += times }
        return all
    }
    let elapsed = seconds(clock.now - started)
    // The stub records a request once its answer is written; the turn may have read it a moment before.
    try await Task.sleep(for: .milliseconds(100))
    var model: [Double] = []
    var added: [Double] = []
    var missing = 0
    for (marker, turn) in turns {
        var spent = Duration.zero
        if let stub {
            if let time = stub.serviceTime(marker) { spent = time } else { missing += 1 }
        }
        model.append(seconds(spent))
        added.append(seconds(turn - spent))
    }
    func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000
    }
    print(
        String(
            format: "agent %@: %d messages, %d conversations in flight, %.2f s = %.0f messages/s", name, turns.count,
            conversations, elapsed, Double(turns.count) / elapsed))
    print(
        String(
            format: "agent %@: added latency per message p50 %.2f ms, p99 %.2f ms (turn minus the model's time)",
            name, percentile(added, 0.5), percentile(added, 0.99)))
    if stub != nil {
        print(
            String(
                format: "agent %@: the stub model's own time per request p50 %.3f ms, p99 %.3f ms%@", name,
                percentile(model, 0.5), percentile(model, 0.99),
                missing == 0 ? "" : " (\(missing) requests not matched: counted as 0)"))
    }
    return AgentPhase(
        messages: turns.count, messagesPerSecond: Double(turns.count) / elapsed, addedP50: percentile(added, 0.5),
        addedP99: percentile(added, 0.99))
}
