import Foundation

/// How one sandboxed command ended, with its captured output.
///
/// A result always means the sandbox was built and the command was started inside it; a sandbox that
/// could not be built is a thrown ``SandboxError`` instead.
public struct SandboxResult: Sendable, Equatable {
    /// How the command ended.
    public struct Status: Hashable, Sendable, CustomStringConvertible {
        fileprivate let value: String

        /// It exited on its own (also when it could not be executed: exit code 126 or 127).
        public static let exited = Status(value: "exited")
        /// It was killed by a signal (``SandboxResult/signal``).
        public static let signaled = Status(value: "signaled")
        /// The wall-clock timeout ended it, with everything else in the sandbox.
        public static let timeout = Status(value: "timeout")
        /// The memory limit ended it (cgroup2 mode only).
        public static let outOfMemory = Status(value: "oom")

        public var description: String { value }
    }

    public let status: Status
    /// The command's exit code, or 124 (timeout), 126 (not executable), 127 (not found), 128+N (signal N).
    public let exitCode: Int32
    public let signal: Int32?
    /// From the sandbox's creation to its end.
    public let wallTime: Duration
    /// User and system time of everything in the sandbox. In rlimit mode a lower bound: children whose
    /// parent ignores SIGCHLD are reaped by the kernel without their time being counted.
    public let cpuTime: Duration
    /// The largest resident set of any one process in the sandbox, in KiB.
    public let peakResidentKilobytes: UInt64
    /// The first ``SandboxLimits/outputBytes`` of stdout; bytes that were not UTF-8 are U+FFFD.
    public let standardOutput: String
    public let standardOutputTruncated: Bool
    public let standardError: String
    public let standardErrorTruncated: Bool
    /// `cgroup2` or `rlimit`: which mechanism enforced the limits.
    public let limitsMode: String
    /// The launcher's own explanation for timeouts and exec failures ("command not found: …").
    public let message: String?
}

/// The launcher's JSON result, as written (Docs/Sandbox.md, "Result").
struct LauncherResult: Decodable {
    let status: String
    let exitCode: Int32
    let signal: Int32?
    let wallMs: UInt64?
    let cpuMs: UInt64?
    let peakRssKb: UInt64?
    let stdout: String?
    let stdoutTruncated: Bool?
    let stderr: String?
    let stderrTruncated: Bool?
    let limitsMode: String?
    let error: String?

    enum CodingKeys: String, CodingKey {
        case status, signal, stdout, stderr, error
        case exitCode = "exit_code"
        case wallMs = "wall_ms"
        case cpuMs = "cpu_ms"
        case peakRssKb = "peak_rss_kb"
        case stdoutTruncated = "stdout_truncated"
        case stderrTruncated = "stderr_truncated"
        case limitsMode = "limits_mode"
    }

    static let statuses: [String: SandboxResult.Status] = [
        "exited": .exited, "signaled": .signaled, "timeout": .timeout, "oom": .outOfMemory,
    ]
}

extension SandboxResult {
    /// Turns the launcher's answer into a result, or into the error that says the command never ran.
    init(launcherOutput: Data, launcherExitStatus: Int32, launcherDiagnostics: String) throws {
        guard let decoded = try? JSONDecoder().decode(LauncherResult.self, from: launcherOutput) else {
            var message = "moat-sandbox exited with status \(launcherExitStatus) without a result"
            let detail = launcherDiagnostics.trimmingCharacters(in: .whitespacesAndNewlines)
            if !detail.isEmpty { message += ": \(detail.prefix(500))" }
            throw SandboxError(
                .launcherFailed, message + "; run `moat sandbox check` to see what this machine supports")
        }
        if decoded.status == "setup_error" {
            let reason = decoded.error ?? "no reason given"
            // `limits_mode` is "none" only when the launcher rejected the spec before building anything.
            if decoded.limitsMode == "none" {
                throw SandboxError(.invalidSpec, "invalid sandbox spec: \(reason); the command was not run")
            }
            throw SandboxError(
                .setupFailed,
                "\(reason); the command was not run. `moat sandbox check` shows what this machine supports"
            )
        }
        guard let status = LauncherResult.statuses[decoded.status] else {
            throw SandboxError(
                .launcherFailed, "moat-sandbox reported an unknown status; is it from another Moat version?")
        }
        self.status = status
        exitCode = decoded.exitCode
        signal = decoded.signal
        wallTime = .milliseconds(decoded.wallMs ?? 0)
        cpuTime = .milliseconds(decoded.cpuMs ?? 0)
        peakResidentKilobytes = decoded.peakRssKb ?? 0
        standardOutput = decoded.stdout ?? ""
        standardOutputTruncated = decoded.stdoutTruncated ?? false
        standardError = decoded.stderr ?? ""
        standardErrorTruncated = decoded.stderrTruncated ?? false
        limitsMode = decoded.limitsMode ?? "none"
        message = decoded.error
    }
}
