public import Foundation
public import MoatCore

/// Runs the real `moat` executable built next to the test bundle, as a user would.
public enum MoatBinary {
    /// The output of one finished run.
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// The path of the built `moat` binary (same build directory as the running test bundle).
    public static var path: String {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("moat").path
    }

    /// `moat-test-helper`, the tests' own child programs (built beside `moat`, never installed).
    public static var helperPath: String {
        URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("moat-test-helper").path
    }

    /// The environment tests give the binary: no inherited MOAT_HOME or XDG paths, so a developer's own
    /// state is never touched, and a systemd credential host key of the tests' own (a path, not a
    /// secret), so sealing never creates or uses the machine's `/var/lib/systemd/credential.secret`.
    public static func environment(home: String?, extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in ["MOAT_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"] { env[key] = nil }
        if let home { env["MOAT_HOME"] = home }
        env["SYSTEMD_CREDENTIAL_SECRET"] = testHostKey
        env.merge(extra) { $1 }
        return env
    }

    /// The tests' host key file, created by systemd-creds on first use.
    public static let testHostKey = FileManager.default.temporaryDirectory
        .appendingPathComponent("moat-test-host-key-\(getuid()).secret").standardizedFileURL.path

    /// Runs `moat ARGS` to completion (killed after `timeout` seconds) and returns its output.
    public static func run(
        _ arguments: [String],
        home: String?,
        stdin: String? = nil,
        extraEnvironment: [String: String] = [:],
        timeout: TimeInterval = 60
    ) throws -> Result {
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        let process = try ChildProcess(
            path, arguments, environment: environment(home: home, extra: extraEnvironment),
            standardInput: .pipe(input), standardOutput: .pipe(out), standardError: .pipe(err))
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        let collector = OutputCollector(out: out, err: err)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            usleep(10_000)
        }
        if process.isRunning {
            process.terminate()
            // A process blocked where SIGTERM does not end it (in open() of a FIFO, say) is killed, so
            // the test fails on its status instead of hanging.
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let (stdout, stderr) = collector.finish()
        return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

/// Drains a process's stdout and stderr on background threads so a chatty child never blocks.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var outData = Data()
    private var errData = Data()
    private let group = DispatchGroup()

    init(out: Pipe, err: Pipe) {
        drain(out.fileHandleForReading) { self.outData.append($0) }
        drain(err.fileHandleForReading) { self.errData.append($0) }
    }

    private func drain(_ handle: FileHandle, _ append: @escaping @Sendable (Data) -> Void) {
        group.enter()
        Thread.detachNewThread { [lock, group] in
            handle.readPieces { chunk in
                lock.lock()
                append(chunk)
                lock.unlock()
            }
            group.leave()
        }
    }

    /// What the process wrote to stdout so far (it may still be running).
    var standardOutputSoFar: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: outData, as: UTF8.self)
    }

    func finish() -> (String, String) {
        group.wait()
        lock.lock()
        defer { lock.unlock() }
        return (String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

/// A `moat serve` running in the background, for tests of the real binary on a real socket.
public final class RunningServer: @unchecked Sendable {
    public let process: ChildProcess
    private let lock = NSLock()
    private var stderrText = ""
    private let errPipe = Pipe()
    private let reader = DispatchGroup()

    /// Starts `moat serve ARGS --port 0` and waits until it logs the port it listens on.
    ///
    /// - Parameters:
    ///   - launcher: a command that sets something up and then execs the rest of its arguments
    ///     (`prlimit --nofile=…`, `setpriv …`), so the process id stays the server's.
    ///   - extraEnvironment: added to ``MoatBinary/environment(home:extra:)``.
    public init(
        arguments: [String],
        home: String,
        launcher: [String] = [],
        extraEnvironment: [String: String] = [:],
        timeout: TimeInterval = 60
    ) throws {
        let serve = ["serve", "--log-format", "json", "--port", "0"] + arguments
        let command = launcher + [MoatBinary.path] + serve
        process = try ChildProcess(
            command[0], Array(command.dropFirst()),
            environment: MoatBinary.environment(home: home, extra: extraEnvironment),
            standardError: .pipe(errPipe))
        reader.enter()
        let handle = errPipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            handle.readPieces { chunk in
                lock.lock()
                stderrText += String(decoding: chunk, as: UTF8.self)
                lock.unlock()
            }
            reader.leave()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while port == nil && process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        guard port != nil else {
            process.terminate()
            process.waitUntilExit()
            throw ServerDidNotStart(stderr: log)
        }
    }

    /// Everything the server wrote to stderr so far.
    public var log: String {
        lock.lock()
        defer { lock.unlock() }
        return stderrText
    }

    /// The port from the `listening` log line.
    public var port: Int? {
        guard let range = log.range(of: #""url":"http[s]?://[^"]*:([0-9]+)""#, options: .regularExpression) else {
            return nil
        }
        let match = String(log[range])
        return Int(match.split(separator: ":").last!.dropLast())
    }

    /// Sends `signal` and waits for the process to exit; returns its exit status and full log.
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 30) -> (status: Int32, log: String) {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        reader.wait()
        return (process.terminationStatus, log)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

public struct ServerDidNotStart: Error, CustomStringConvertible {
    public let stderr: String
    public var description: String { "moat serve did not start:\n\(stderr)" }
}
