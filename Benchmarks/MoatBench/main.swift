// moat-bench: the documented performance measurements (Docs/Audit.md, Docs/Policy.md). Not a test: run
// it by hand, in release mode, on an otherwise idle machine:
//
//   swift run -c release moat-bench audit [--entries 1000000] [--appends 20000] [--tasks 8]
//   swift run -c release moat-bench flagger [--mib 4] [--dump FILE...]
//   swift run -c release moat-bench agent [--messages 5000] [--conversations 16] [--alone-messages 1000]
//                                          [--in-process]
//
// `audit` prints the figures Docs/Audit.md records: durable appends per second from concurrent callers
// (group commit, synchronous=FULL), and the time to verify a log of --entries entries. `flagger` prints
// the injection flagger's throughput on --mib MiB of mixed text (Docs/Policy.md); with --dump it instead
// prints one line per text of the given corpus files (hash of the text, then its flags), to check that a
// change to the flagger leaves every result as it was. `agent` prints messages per second through the agent
// pipeline and the latency it adds per message, with a stub model on loopback that answers at once, reached
// through the real OpenAI-compatible provider: first with --conversations in flight, then one message at a
// time (Docs/Agent.md, Docs/Performance.md).

import Crypto
import Foundation
import GRDB
import MoatAudit
import MoatStore

func option(_ name: String, _ fallback: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count,
        let value = Int(arguments[index + 1])
    else { return fallback }
    return value
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

if CommandLine.arguments.count >= 2, CommandLine.arguments[1] == "flagger" {
    flaggerBenchmark()
    exit(0)
}

guard CommandLine.arguments.count >= 2, ["audit", "agent"].contains(CommandLine.arguments[1]) else {
    print("usage: moat-bench audit [--entries N] [--appends N] [--tasks N]")
    print("       moat-bench flagger [--mib N] [--dump FILE...]")
    print("       moat-bench agent [--messages N] [--conversations N] [--alone-messages N] [--in-process]")
    exit(64)
}

/// The audit log's tables, in the installation's order.
let auditMigrations = [StoreSchema.meta, AuditSchema.log]
let directory = NSTemporaryDirectory() + "moat-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }

if CommandLine.arguments[1] == "agent" {
    try await agentBenchmark(directory: directory)
    try? FileManager.default.removeItem(atPath: directory)
    exit(0)
}

let keys = AuditKeys(
    fingerprintKey: SymmetricKey(size: .bits256),
    signingKey: Curve25519.Signing.PrivateKey(),
    scrub: { $0 }
)

// 1. Durable appends from concurrent callers.
let appends = option("--appends", 20000)
let tasks = option("--tasks", 8)
do {
    let database = try MoatDatabase(path: directory + "/append.db", migrations: auditMigrations)
    let log = AuditLog(database: database, keys: keys, origin: "moat/bench")
    let clock = ContinuousClock()
    let elapsed = try await clock.measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for index in 0..<(appends / tasks) {
                        try await log.append(
                            AuditEvent(
                                actor: "bench-\(task)",
                                action: "bench.append",
                                target: "item-\(index)",
                                sourceIP: "127.0.0.1",
                                metadata: ["index": .int(Int64(index)), "token": "redact-me"]
                            )
                        )
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    let total = (appends / tasks) * tasks
    print(
        String(
            format: "append: %d durable entries from %d tasks in %.2f s = %.0f entries/s",
            total, tasks, seconds(elapsed), Double(total) / seconds(elapsed)
        )
    )
    try database.close()
}

// 2. Verify a large log. The log is built with plain inserts of correctly chained rows (building it
// through append would only measure appends again).
let entries = option("--entries", 1_000_000)
do {
    let database = try MoatDatabase(path: directory + "/verify.db", migrations: auditMigrations)
    let time = AuditLog.timestamp(Date())
    try database.pool.write { db in
        var previous = AuditChain.genesis
        let statement = try db.makeStatement(
            sql: """
                INSERT INTO audit_entries
                  (seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for sequence in 1...Int64(entries) {
            let target = "item-\(sequence)"
            let metadata = #"{"index":\#(sequence),"token":"[REDACTED] hmac:0011223344556677"}"#
            let hash = AuditChain.hash(
                sequence: sequence, time: time, actor: "owner", action: "bench.verify", target: target,
                sourceIP: "127.0.0.1", userAgent: "moat-bench", outcome: "success", metadata: metadata,
                previousHash: previous
            )
            try statement.execute(arguments: [
                sequence, time, "owner", "bench.verify", target, "127.0.0.1", "moat-bench", "success", metadata,
                previous, hash,
            ])
            previous = hash
        }
    }
    let clock = ContinuousClock()
    var report: AuditVerifier.Report?
    let elapsed = try clock.measure {
        report = try AuditVerifier.verify(database, publicKey: keys.verifyingKey)
    }
    print(String(format: "verify: %d entries in %.2f s", entries, seconds(elapsed)))
    print("        \(report!.summary)")
    try database.close()
}
