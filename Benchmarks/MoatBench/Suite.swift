import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `moat-bench all [--quick] [--json] [--moat PATH] [--builtin-load]`: every figure of Docs/Performance.md
/// in one run, each beside its goal. The `moat` and `moat-sandbox` binaries are taken from beside moat-bench (a release
/// build puts them there) unless `--moat` names one. A benchmark that cannot run here (bubblewrap not
/// installed, no `moat` binary) is reported as skipped with the reason, and the others still run.
/// With `--json` the progress lines go to stderr and stdout carries one JSON document.
///
/// Returns the exit status: 0 when every figure was measured (goals met or not: a loaded machine misses
/// goals an idle one meets), 1 when some benchmark failed to run.
func suiteBenchmark(directory: String) async -> Int32 {
    let arguments = CommandLine.arguments
    let quick = arguments.contains("--quick")
    let json = arguments.contains("--json")
    // JSON mode: what the benchmarks print goes to stderr; the document is written to the real stdout.
    let document = json ? dup(STDOUT_FILENO) : -1
    if json { dup2(STDERR_FILENO, STDOUT_FILENO) }
    let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
    let moat = value(of: "--moat") ?? ((own as NSString).deletingLastPathComponent + "/moat")
    let launcher = (moat as NSString).deletingLastPathComponent + "/moat-sandbox"
    let loadBefore = loadAverage()
    let started = Date()
    print("moat-bench all\(quick ? " --quick" : ""): moat \(moat), load average \(loadBefore)")

    var figures: [Figure] = []
    var failed = false
    func section(_ names: [String], _ units: [String], _ body: () async throws -> [Figure]) async {
        do {
            figures += try await body()
        } catch {
            failed = true
            print("failed: \(error)")
            figures += zip(names, units).map { Figure($0, nil, $1, note: "did not run: \(error)") }
        }
        // Each section's lines show when it ends, also when stdout is a file or a pipe (fully buffered).
        fflush(nil)
    }

    // 1. moat serve: start-up, idle memory, request rates.
    let serveNames = [
        "moat serve: idle RSS", "moat serve: start-up to first /healthz", "GET /healthz",
        "GET /api/auth/session (read token)",
    ]
    await section(serveNames, ["kB", "ms", "req/s", "req/s"]) {
        guard access(moat, X_OK) == 0 else {
            throw BenchFailure("no moat binary at \(moat): swift build -c release --product moat, or --moat PATH")
        }
        let serve = try serveBenchmark(
            moat: moat, work: directory + "/serve", starts: quick ? 1 : 3, settle: quick ? 2 : 5,
            loadSeconds: quick ? 3 : 10)
        let ratio = serve.authenticatedPerSecond / serve.healthzPerSecond
        return [
            Figure(
                serveNames[0], serve.idleRSSKilobytes, "kB", goal: "≤ 40,000 kB", met: serve.idleRSSKilobytes <= 40000,
                note: "VmRSS \(serve.settleSeconds) s after /healthz answered (issue 14's goal: ≤ 40 MB)"),
            Figure(
                serveNames[1], serve.startupMilliseconds, "ms",
                note: "median of \(serve.starts) unattended starts: the vault unsealed (Argon2id), moat.db opened, "
                    + "the port bound"),
            Figure(serveNames[2], serve.healthzPerSecond, "req/s", note: serve.generator),
            Figure(
                serveNames[3], serve.authenticatedPerSecond, "req/s", goal: "≥ 0.5 × /healthz", met: ratio >= 0.5,
                note: String(format: "%.2f × /healthz; %@", ratio, serve.generator)),
        ]
    }

    // 2. The sandbox launcher against bubblewrap and plain /bin/true.
    let sandboxNames = ["moat-sandbox /bin/true, pinned", "moat-sandbox minus bwrap, pinned"]
    await section(sandboxNames, ["ms", "ms"]) {
        guard access(launcher, X_OK) == 0 else {
            throw BenchFailure(
                "no moat-sandbox at \(launcher): swift build -c release --product moat-sandbox")
        }
        let runs = quick ? 50 : 300
        let sandbox = try sandboxBenchmark(
            launcher: launcher, work: directory, runs: runs, warmup: quick ? 5 : 30)
        return [
            Figure(
                sandboxNames[0], sandbox.launcher, "ms",
                goal: String(format: "≤ plain + 3 ms (%.2f ms)", sandbox.plain + 3),
                met: sandbox.launcher <= sandbox.plain + 3,
                note: String(format: "spawn-to-exit, median of %d; plain /bin/true %.2f ms", runs, sandbox.plain)),
            Figure(
                sandboxNames[1], sandbox.bwrap.map { sandbox.launcher - $0 }, "ms", goal: "≤ 0 ms",
                met: sandbox.bwrap.map { sandbox.launcher <= $0 },
                note: sandbox.bwrap.map { String(format: "bwrap --ro-bind / / --unshare-all %.2f ms", $0) }
                    ?? "bwrap is not installed (apt-get install -y bubblewrap)"),
        ]
    }

    // 3. The audit log.
    let entries = quick ? 100_000 : 1_000_000
    let auditNames = ["audit: durable appends, 8 callers", "audit: verify \(entries.formatted()) entries"]
    await section(auditNames, ["entries/s", "s"]) {
        let audit = try await auditBenchmark(
            directory: directory, appends: quick ? 2000 : 20000, tasks: 8, entries: entries)
        let limit = 3.0 * Double(entries) / 1_000_000
        return [
            Figure(
                auditNames[0], audit.appendsPerSecond, "entries/s", goal: "≥ 2,000 entries/s",
                met: audit.appendsPerSecond >= 2000, note: "\(audit.appended) entries, synchronous=FULL"),
            Figure(
                auditNames[1], audit.verifySeconds, "s", goal: String(format: "≤ %.1f s (3 s per 1M)", limit),
                met: audit.verifySeconds <= limit),
        ]
    }

    // 4. Vault unlock.
    let vaultNames = ["vault unlock: master password", "vault unlock: from the seal"]
    await section(vaultNames, ["ms", "ms"]) {
        let runs = quick ? 1 : 3
        let vault = try vaultBenchmark(work: directory + "/vault", runs: runs)
        return [
            Figure(
                vaultNames[0], vault.password, "ms",
                note: "Argon2id m = 64 MiB, t = 3, p = 4 (slow on purpose); median of \(runs)"),
            Figure(
                vaultNames[1], vault.seal, "ms",
                note: "what moat serve does at start-up: the seal's Argon2id (m = 8 MiB, t = 1 without a PIN), "
                    + "systemd-creds when installed, then the vault's key; median of \(runs)"),
        ]
    }

    // 5. The agent pipeline.
    let agentNames = [
        "agent: messages/s, 16 in flight", "agent: added latency p99, one at a time",
        "agent: added latency p50, one at a time",
    ]
    await section(agentNames, ["messages/s", "ms", "ms"]) {
        let agent = try await agentBenchmark(
            directory: directory, messages: quick ? 1000 : 5000, conversations: 16,
            aloneMessages: quick ? 200 : 1000, inProcess: false)
        let stub = "stub model on loopback through OpenAICompatibleProvider"
        return [
            Figure(
                agentNames[0], agent.load.messagesPerSecond, "messages/s", goal: "≥ 500 messages/s",
                met: agent.load.messagesPerSecond >= 500, note: "\(agent.load.messages) messages; \(stub)"),
            Figure(
                agentNames[1], agent.alone.addedP99, "ms", goal: "≤ 5 ms", met: agent.alone.addedP99 <= 5,
                note: "\(agent.alone.messages) messages; a turn minus the model's own time"),
            Figure(agentNames[2], agent.alone.addedP50, "ms"),
        ]
    }

    let elapsed = Date().timeIntervalSince(started)
    let loadAfter = loadAverage()
    let header = [
        "",
        String(
            format: "Moat's figures (Docs/Performance.md), %@, %d cores, load average %@ before and %@ after, %.0f s",
            ISO8601DateFormatter().string(from: started), ProcessInfo.processInfo.activeProcessorCount, loadBefore,
            loadAfter, elapsed),
        "",
    ]
    let table = FigureReport.table(figures, header: header)
    if json {
        let machine = [
            "date": ISO8601DateFormatter().string(from: started),
            "cores": String(ProcessInfo.processInfo.activeProcessorCount),
            "load_average_before": loadBefore, "load_average_after": loadAfter,
            "mode": quick ? "quick" : "full", "moat": moat, "seconds": String(format: "%.0f", elapsed),
        ]
        print(table)
        let text = (try? FigureReport.json(figures, machine: machine)) ?? "{}"
        _ = (text + "\n").withCString { write(document, $0, strlen($0)) }
    } else {
        print(table)
    }
    return failed ? 1 : 0
}

/// The value after `name` on the command line.
private func value(of name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg has them.
private func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
