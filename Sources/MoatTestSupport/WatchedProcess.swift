public import Foundation
public import MoatCore

#if canImport(Glibc)
    import Glibc
#endif

/// A child process whose output is collected in the background, so a test waits for a line the child
/// prints (an event it can observe) instead of sleeping for a guessed time that a loaded machine
/// outlasts.
///
/// The crash-safety tests use it to kill a helper only after it acknowledged the work they check.
public final class WatchedProcess: @unchecked Sendable {
    public let process: ChildProcess
    private let collector: OutputCollector

    /// Starts `executable ARGUMENTS` with stdin closed.
    public init(_ executable: String, _ arguments: [String]) throws {
        let out = Pipe()
        let err = Pipe()
        process = try ChildProcess(executable, arguments, standardOutput: .pipe(out), standardError: .pipe(err))
        collector = OutputCollector(out: out, err: err)
    }

    /// The complete lines the child printed on stdout so far.
    public var lines: [String] {
        let text = collector.standardOutputSoFar
        guard let end = text.lastIndex(of: "\n") else { return [] }
        return text[..<end].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Waits until `condition` holds for the lines printed so far, the child ends, or `seconds` pass;
    /// returns whether it held. The deadline only bounds a broken child: give it generously. Polls with
    /// `Task.sleep`, so the wait holds no cooperative thread.
    public func waitForLines(within seconds: TimeInterval = 120, until condition: ([String]) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(lines) { return true }
            if !process.isRunning { return condition(lines) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition(lines)
    }

    /// Sends SIGKILL, waits for the child to end and returns its stdout lines and its stderr.
    ///
    /// This form blocks its thread (for a `defer`); async code awaits the other, which waits on a thread
    /// of its own.
    public func kill() -> (lines: [String], stderr: String) {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let (_, stderr) = collector.finish()
        return (lines, stderr)
    }

    /// Sends SIGKILL and awaits the child's end like ``kill()``, waiting on a thread of its own.
    public func kill() async -> (lines: [String], stderr: String) {
        await offCooperativePool { self.kill() }
    }

    deinit {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
