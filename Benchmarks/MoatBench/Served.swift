import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The figures of a real `moat serve` (a release build) in a throwaway MOAT_HOME on loopback.
struct ServeFigures {
    /// Milliseconds from starting the process to the first 200 from `/healthz`, median of `starts`.
    var startupMilliseconds: Double
    var starts: Int
    /// VmRSS in kB (KiB, as /proc says) after the server sat idle `settleSeconds`.
    var idleRSSKilobytes: Double
    var settleSeconds: Int
    var healthzPerSecond: Double
    /// `GET /api/auth/session` with a `read` API token.
    var authenticatedPerSecond: Double
    /// "wrk" or "built-in", with the connections and duration.
    var generator: String
}

/// `moat serve` run the way an owner runs it: the first start creates and seals the vault, the owner and a
/// `read` API token are made offline with the CLI, then each start is an ordinary unattended one.
final class ServedMoat {
    let moat: String
    let work: String
    private(set) var port = 0
    private var process: Process?

    init(moat: String, work: String) throws {
        self.moat = moat
        self.work = work
        try FileManager.default.createDirectory(
            atPath: work, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    var pid: Int32? { process?.processIdentifier }

    /// MOAT_HOME in the work directory, and the seal's machine key in a file of its own (as the tests do),
    /// so the benchmark never creates or uses this machine's systemd credential host key.
    private var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["MOAT_HOME"] = work + "/home"
        environment["SYSTEMD_CREDENTIAL_SECRET"] = work + "/host-key.secret"
        environment["XDG_CONFIG_HOME"] = nil
        environment["XDG_STATE_HOME"] = nil
        return environment
    }

    /// Starts `moat serve` on a port the kernel picks (read from its log line's `"url"`); returns the time
    /// until `/healthz` first answered 200.
    func start() throws -> Duration {
        port = 0
        let process = Process()
        process.executableURL = URL(fileURLWithPath: moat)
        process.arguments = ["serve", "--port", "0", "--log-format", "json"]
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: work + "/serve.log", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: work + "/serve.log")
        let clock = ContinuousClock()
        let begin = clock.now
        try process.run()
        self.process = process
        while clock.now - begin < .seconds(120) {
            if port == 0 { port = listeningPort() ?? 0 }
            if port != 0 {
                let request = LoopbackConnection.request(port: port, path: "/healthz", headers: ["Connection: close"])
                if LoopbackConnection(port: port)?.exchange(request) == 200 { return clock.now - begin }
            }
            guard process.isRunning else { break }
            usleep(2000)
        }
        let log = (try? String(contentsOfFile: work + "/serve.log", encoding: .utf8)) ?? ""
        stop()
        throw BenchFailure("moat serve did not answer /healthz:\n\(log.suffix(2000))")
    }

    /// The port in the server log's first `"url":"http://127.0.0.1:PORT"`, once it is written.
    private func listeningPort() -> Int? {
        guard let log = try? String(contentsOfFile: work + "/serve.log", encoding: .utf8),
            let match = log.firstMatch(of: /"url":"http:\\?\/\\?\/[^"]*:([0-9]+)"/)
        else { return nil }
        return Int(match.1)
    }

    /// SIGTERM, then waits for the exit.
    func stop() {
        guard let process else { return }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        self.process = nil
    }

    /// Runs `moat ARGUMENTS` with `input` on stdin; returns its stdout, or throws with its stderr.
    func run(_ arguments: [String], input: String = "") throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: moat)
        process.arguments = arguments
        process.environment = environment
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (stdin, stdout, stderr)
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchFailure(
                "moat \(arguments.first ?? "") failed (\(process.terminationStatus)): "
                    + String(decoding: errors, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// VmRSS of the running server, in kB.
    func residentKilobytes() -> Double? {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
            return nil
        }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Double(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}

/// Start-up, idle RSS and request rates of `moat serve`. `starts` ordinary starts are timed (the first,
/// which creates the state, is not); the last one stays up for the idle RSS and the request rates.
func serveBenchmark(moat: String, work: String, starts: Int, settle: Int, loadSeconds: Int) throws -> ServeFigures {
    let served = try ServedMoat(moat: moat, work: work)
    defer { served.stop() }
    _ = try served.start()
    served.stop()
    _ = try served.run(["owner", "setup", "--owner-password-stdin"], input: "a long benchmark passphrase\n")
    let printed = try served.run(["token", "create", "bench", "--scope", "read"])
    guard let token = printed.split(separator: "\n").first(where: { $0.hasPrefix("moat_") }).map(String.init) else {
        throw BenchFailure("moat token create printed no token")
    }
    var startups: [Double] = []
    for index in 0..<starts {
        startups.append(seconds(try served.start()) * 1000)
        if index < starts - 1 { served.stop() }
    }
    print(String(format: "serve: start-up to the first /healthz, median of %d: %.0f ms", starts, median(startups)))
    sleep(UInt32(settle))
    guard let rss = served.residentKilobytes() else { throw BenchFailure("cannot read the server's VmRSS") }
    print(String(format: "serve: idle RSS after %d s: %.0f kB", settle, rss))
    let (health, authenticated, generator) = try requestRates(
        served, token: token, connections: 32, seconds: loadSeconds)
    print(
        String(
            format: "serve: /healthz %.0f req/s, GET /api/auth/session %.0f req/s (%@)", health, authenticated,
            generator))
    return ServeFigures(
        startupMilliseconds: median(startups), starts: starts, idleRSSKilobytes: rss, settleSeconds: settle,
        healthzPerSecond: health, authenticatedPerSecond: authenticated, generator: generator)
}

/// Requests per second against `/healthz`, then `GET /api/auth/session` with the token: wrk when it is
/// installed (the token reaches it through a 0600 file read by a Lua script, never argv), else (or with
/// `--builtin-load`) the built-in generator. oha is not used: it takes headers only on its command line.
/// A run with any non-2xx answer is refused.
private func requestRates(
    _ served: ServedMoat, token: String, connections: Int, seconds: Int
) throws -> (Double, Double, String) {
    let route = "/api/auth/session"
    if !CommandLine.arguments.contains("--builtin-load"), let wrk = executable("wrk") {
        let tokenFile = served.work + "/token"
        let script = served.work + "/auth.lua"
        guard
            FileManager.default.createFile(
                atPath: tokenFile, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw BenchFailure("cannot write \(tokenFile)")
        }
        try """
        local file = assert(io.open("\(tokenFile)"))
        wrk.headers["Authorization"] = "Bearer " .. file:read("*l")
        file:close()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let base = ["-t2", "-c\(connections)", "-d\(seconds)s"]
        let health = try wrkRate(wrk, base + ["http://127.0.0.1:\(served.port)/healthz"])
        let authenticated = try wrkRate(wrk, base + ["-s", script, "http://127.0.0.1:\(served.port)\(route)"])
        return (health, authenticated, "wrk -t2 -c\(connections) -d\(seconds)s")
    }
    func rate(_ request: [UInt8], _ name: String) throws -> Double {
        let outcome = LoopbackLoad.run(
            port: served.port, request: request, connections: connections, duration: Double(seconds))
        guard outcome.failures == 0, outcome.requests > 0 else {
            throw BenchFailure("\(name): \(outcome.failures) of the answers were errors; the numbers do not count")
        }
        return outcome.perSecond
    }
    let health = try rate(LoopbackConnection.request(port: served.port, path: "/healthz"), "/healthz")
    let authenticated = try rate(
        LoopbackConnection.request(port: served.port, path: route, headers: ["Authorization: Bearer \(token)"]), route)
    let why = CommandLine.arguments.contains("--builtin-load") ? "--builtin-load" : "wrk not installed"
    return (health, authenticated, "built-in generator, \(connections) connections, \(seconds) s (\(why))")
}

/// Runs wrk and reads its `Requests/sec:`; refuses a run with non-2xx answers.
private func wrkRate(_ wrk: String, _ arguments: [String]) throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: wrk)
    process.arguments = arguments
    let stdout = Pipe()
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    let text = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0, !text.contains("Non-2xx"),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
        let rate = Double(line.split(separator: " ").last ?? "")
    else { throw BenchFailure("wrk \(arguments.last ?? ""): errors or no rate:\n\(text)") }
    return rate
}

/// The absolute path of `name` on PATH, or nil.
func executable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
