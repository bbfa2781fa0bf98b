public import Foundation
import MoatCore

/// Runs blocking work (waiting for a process, reading a pipe to its end) on a thread of its own and
/// awaits its result, so an async test never holds one of the cooperative pool's threads while it waits.
///
/// The pool has one thread per core (two on the CI machine). A test that blocks one of them with
/// `usleep` or `waitUntilExit` leaves the rest of the process's async work — in-process servers, other
/// tests' awaits — one thread, and two such tests stop it altogether; on a busy machine that showed up
/// as servers that "did not start answering" within their timeouts.
public func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await onThreadOfItsOwn(work)
}

/// ``offCooperativePool(_:)`` for work that cannot fail (waiting for a process's exit, a `Thread` to end).
public func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await onThreadOfItsOwn(work)
}

/// ``offCooperativePool(_:)`` for CPU-bound work (an Argon2 open with the real parameters, a corpus
/// evaluation, a search through a core dump): its thread runs at the lowest CPU priority (nice 19), so on
/// a busy 2-core machine it takes only the time the latency-bound tests beside it leave, instead of pushing
/// their servers and clients past their limits.
public func atLowestPriority<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await offCooperativePool {
        lowerThisThreadsPriority()
        return try work()
    }
}

/// ``atLowestPriority(_:)`` for work that cannot fail.
public func atLowestPriority<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await offCooperativePool {
        lowerThisThreadsPriority()
        return work()
    }
}

/// Nice 19 for the calling thread only (on Linux the nice value is per thread, and `who` 0 names the caller).
func lowerThisThreadsPriority() {
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
}

extension MoatBinary {
    /// Runs `moat ARGS` to completion like ``run(_:home:stdin:extraEnvironment:timeout:)``, waiting on a
    /// thread of its own (``offCooperativePool(_:)``) instead of the caller's, once ``StartGate`` lets it.
    public static func run(
        _ arguments: [String],
        home: String?,
        stdin: String? = nil,
        extraEnvironment: [String: String] = [:],
        timeout: TimeInterval = 60
    ) async throws -> Result {
        // The start-up is what costs: a command that runs longer gives its place back after 3 s.
        try await StartGate.shared.run(holdingAtMost: 3) {
            try await offCooperativePool {
                try run(arguments, home: home, stdin: stdin, extraEnvironment: extraEnvironment, timeout: timeout)
            }
        }
    }
}

extension RunningServer {
    /// Starts `moat serve` like ``init(arguments:home:launcher:extraEnvironment:timeout:)``, waiting for
    /// its port on a thread of its own, once ``StartGate`` lets it.
    public static func start(
        arguments: [String],
        home: String,
        launcher: [String] = [],
        extraEnvironment: [String: String] = [:],
        timeout: TimeInterval = 60
    ) async throws -> RunningServer {
        try await StartGate.shared.run {
            try await offCooperativePool {
                try RunningServer(
                    arguments: arguments, home: home, launcher: launcher, extraEnvironment: extraEnvironment,
                    timeout: timeout)
            }
        }
    }

    /// Sends `signal` and waits for the exit like ``stop(signal:timeout:)``, on a thread of its own.
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 30) async -> (status: Int32, log: String) {
        await offCooperativePool { self.stop(signal: signal, timeout: timeout) }
    }
}

extension HostCommand {
    /// Runs a host program like the synchronous `run`, waiting on a thread of its own.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil
    ) async throws -> (status: Int32, output: String) {
        try await offCooperativePool { try run(executable, arguments, environment: environment) }
    }
}

/// Waits (without holding a thread) until a file exists — a starting `moat serve`'s admin socket, its
/// setup link — or `seconds` pass; returns whether it exists.
@discardableResult
public func waitForFile(_ path: String, within seconds: TimeInterval = 60) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !FileManager.default.fileExists(atPath: path) {
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return true
}
