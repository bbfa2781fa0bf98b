// moat-bench: the documented performance measurements (Docs/Performance.md, Docs/Audit.md, Docs/Policy.md).
// Not a test: run it by hand, in release mode, on an otherwise idle machine:
//
//   swift build -c release --product moat && swift build -c release --product moat-sandbox \
//     && swift build -c release --product moat-bench
//   .build/release/moat-bench all [--quick] [--json] [--moat PATH] [--builtin-load]
//   swift run -c release moat-bench audit [--entries 1000000] [--appends 20000] [--tasks 8]
//   swift run -c release moat-bench flagger [--mib 4] [--dump FILE...]
//   swift run -c release moat-bench agent [--messages 5000] [--conversations 16] [--alone-messages 1000]
//                                          [--in-process]
//
// `all` runs every figure of Docs/Performance.md (moat serve's idle RSS, start-up and request rates, the
// sandbox launcher against bubblewrap, the audit log, vault unlock, the agent pipeline) and prints them
// in one table beside their goals (Suite.swift). `audit` prints the figures Docs/Audit.md records: durable
// appends per second from concurrent callers (group commit, synchronous=FULL), and the time to verify a log
// of --entries entries. `flagger` prints
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

guard CommandLine.arguments.count >= 2, ["audit", "agent", "all"].contains(CommandLine.arguments[1]) else {
    print("usage: moat-bench all [--quick] [--json] [--moat PATH] [--builtin-load]")
    print("       moat-bench audit [--entries N] [--appends N] [--tasks N]")
    print("       moat-bench flagger [--mib N] [--dump FILE...]")
    print("       moat-bench agent [--messages N] [--conversations N] [--alone-messages N] [--in-process]")
    exit(64)
}

let directory = NSTemporaryDirectory() + "moat-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }

if CommandLine.arguments[1] == "all" {
    let status = await suiteBenchmark(directory: directory)
    try? FileManager.default.removeItem(atPath: directory)
    exit(status)
}

if CommandLine.arguments[1] == "agent" {
    _ = try await agentBenchmark(
        directory: directory, messages: option("--messages", 5000), conversations: option("--conversations", 16),
        aloneMessages: option("--alone-messages", 1000), inProcess: CommandLine.arguments.contains("--in-process"))
    try? FileManager.default.removeItem(atPath: directory)
    exit(0)
}

_ = try await auditBenchmark(
    directory: directory, appends: option("--appends", 20000), tasks: option("--tasks", 8),
    entries: option("--entries", 1_000_000))
