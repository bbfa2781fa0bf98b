// The one file in MoatSandbox with raw system calls and pointers: it starts `moat-sandbox`, feeds it the
// spec, drains its output and reaps it.

import Foundation
// Linux only: the launcher is built on Linux namespaces, and this file uses pipe2 and SOCK_CLOEXEC.
import Glibc
import Synchronization

/// What one run of the launcher produced.
struct LauncherOutput: Sendable {
    /// The exit code, or 128 + N when the launcher itself was killed by signal N.
    var exitStatus: Int32
    var standardOutput: Data
    var standardError: String
}

/// Runs the launcher as a child process, off the cooperative thread pool.
///
/// The child's pipes are drained with `poll` on a dedicated thread: the result can be several MiB, and a
/// blocking read on one of the concurrency runtime's few threads would stall every other task meanwhile.
enum LauncherProcess {
    /// Starts `path ARGUMENTS` with an empty environment, writes `input` to its stdin and collects its
    /// stdout (at most `outputLimit` bytes, else it is killed) and stderr (first 64 KiB).
    ///
    /// The launcher is SIGKILLed when `deadline` passes or the calling task is cancelled; its sandbox dies
    /// with it (parent-death signal). The launcher also dies with this process: it arms a parent-death
    /// signal, which the kernel ties to the thread that started it, so it is started from the dedicated
    /// thread that waits for it (a thread of the concurrency pool may exit while the launcher runs).
    static func run(
        path: String,
        arguments: [String],
        input: Data,
        outputLimit: Int,
        deadline: Duration
    ) async throws -> LauncherOutput {
        let start = LauncherStart()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(
                        with: Result {
                            let child = try spawn(path: path, arguments: arguments)
                            start.started(child)
                            return try child.collect(input: input, outputLimit: outputLimit, deadline: deadline)
                        }
                    )
                }
            }
        } onCancel: {
            start.cancel()
        }
    }

    private static func spawn(path: String, arguments: [String]) throws -> RunningLauncher {
        // Socket pairs rather than pipes: they are created close-on-exec atomically (Glibc's module does
        // not export pipe2), so another thread's child can never inherit them, and writing to a launcher
        // that already exited is EPIPE with MSG_NOSIGNAL, never SIGPIPE.
        var stdinPair: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let made =
            socketpair(AF_UNIX, type, 0, &stdinPair) == 0 && socketpair(AF_UNIX, type, 0, &stdoutPipe) == 0
            && socketpair(AF_UNIX, type, 0, &stderrPipe) == 0
        let reason = errnoText()
        // The child's ends are closed here in every case; ours too if anything fails.
        var toClose = [stdinPair[1], stdoutPipe[1], stderrPipe[1]]
        defer { for fd in toClose where fd >= 0 { close(fd) } }
        guard made else {
            toClose += [stdinPair[0], stdoutPipe[0], stderrPipe[0]]
            throw SandboxError(.launcherFailed, "cannot create pipes for moat-sandbox: \(reason)")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPair[1], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)

        // Default dispositions and an empty mask: the launcher must not inherit an ignored SIGPIPE or
        // blocked signals from this process.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        var noSignals = sigset_t()
        sigfillset(&allSignals)
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // An empty environment: the launcher needs none, and Moat's may hold secrets.
        let environment: [UnsafeMutablePointer<CChar>?] = [nil]
        var pid: pid_t = 0
        let error = posix_spawn(&pid, path, &actions, &attributes, argv, environment)
        guard error == 0 else {
            toClose += [stdinPair[0], stdoutPipe[0], stderrPipe[0]]
            throw SandboxError(
                .launcherFailed,
                "cannot start moat-sandbox (\(String(cString: strerror(error)))); reinstall it with ./install.sh"
            )
        }
        return RunningLauncher(pid: pid, input: stdinPair[0], output: stdoutPipe[0], diagnostics: stderrPipe[0])
    }

    fileprivate static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Hands a launcher started on the waiting thread to the cancellation handler, whichever comes first.
private final class LauncherStart: Sendable {
    private struct State {
        var child: RunningLauncher?
        var cancelled = false
    }
    private let state = Mutex(State())

    func started(_ child: RunningLauncher) {
        let cancelled = state.withLock { state in
            state.child = child
            return state.cancelled
        }
        if cancelled { child.kill(reason: .cancelled) }
    }

    func cancel() {
        let child = state.withLock { state in
            state.cancelled = true
            return state.child
        }
        child?.kill(reason: .cancelled)
    }
}

/// A started launcher: its pid until reaped, and our ends of its three stream sockets.
private final class RunningLauncher: Sendable {
    enum KillReason { case cancelled, deadline, outputLimit }

    private struct State {
        var reaped = false
        var killedFor: KillReason?
    }

    let pid: pid_t
    let input: Int32
    let output: Int32
    let diagnostics: Int32
    private let state = Mutex(State())

    init(pid: pid_t, input: Int32, output: Int32, diagnostics: Int32) {
        self.pid = pid
        self.input = input
        self.output = output
        self.diagnostics = diagnostics
    }

    /// SIGKILLs the launcher unless it was already reaped (so a recycled pid is never hit).
    func kill(reason: KillReason) {
        state.withLock { state in
            guard !state.reaped else { return }
            if state.killedFor == nil { state.killedFor = reason }
            _ = Glibc.kill(pid, SIGKILL)
        }
    }

    /// Feeds stdin, drains stdout and stderr until both close, then reaps the launcher.
    func collect(input data: Data, outputLimit: Int, deadline: Duration) throws -> LauncherOutput {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: deadline)
        var inputFD = input
        var written = 0
        var outputOpen = true
        var diagnosticsOpen = true
        var standardOutput = Data()
        var standardError = Data()
        for fd in [input, output, diagnostics] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        defer {
            if inputFD >= 0 { close(inputFD) }
            close(output)
            close(diagnostics)
        }
        if data.isEmpty {
            close(inputFD)
            inputFD = -1
        }
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outputOpen || diagnosticsOpen {
            let remaining = clock.now.duration(to: end)
            if remaining <= .zero {
                kill(reason: .deadline)
                break
            }
            var fds: [pollfd] = []
            if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            if outputOpen { fds.append(pollfd(fd: output, events: Int16(POLLIN), revents: 0)) }
            if diagnosticsOpen { fds.append(pollfd(fd: diagnostics, events: Int16(POLLIN), revents: 0)) }
            let millisecondsLeft =
                remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000 + 1
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(millisecondsLeft, 1000)))
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 {
                kill(reason: .deadline)
                throw SandboxError(.launcherFailed, "waiting for moat-sandbox failed: \(LauncherProcess.errnoText())")
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inputFD {
                    let count = data.withUnsafeBytes { bytes in
                        send(inputFD, bytes.baseAddress! + written, bytes.count - written, Int32(MSG_NOSIGNAL))
                    }
                    if count > 0 { written += count }
                    if written == data.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        // Done, or the launcher stopped reading (it reports why on stdout).
                        close(inputFD)
                        inputFD = -1
                    }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress!, $0.count) }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                if count <= 0 {
                    if entry.fd == output { outputOpen = false } else { diagnosticsOpen = false }
                    continue
                }
                if entry.fd == output {
                    standardOutput.append(contentsOf: buffer[0..<count])
                    if standardOutput.count > outputLimit {
                        kill(reason: .outputLimit)
                        outputOpen = false
                    }
                } else if standardError.count < 65536 {
                    standardError.append(contentsOf: buffer[0..<min(count, 65536 - standardError.count)])
                }
            }
        }

        // Wait without reaping first: until the flag below is set, kill() may still target this pid, and
        // a reaped pid could already belong to another process.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        let killedFor = state.withLock { state in
            state.reaped = true
            return state.killedFor
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        switch killedFor {
        case .cancelled:
            throw SandboxError(.cancelled, "the sandboxed run was cancelled; the sandbox and its processes were killed")
        case .deadline:
            throw SandboxError(
                .launcherFailed,
                "moat-sandbox did not finish after its own timeout; it was killed with everything in the sandbox"
            )
        case .outputLimit:
            throw SandboxError(.launcherFailed, "moat-sandbox wrote more than its result can hold; it was killed")
        case nil:
            break
        }
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return LauncherOutput(
            exitStatus: exitStatus,
            standardOutput: standardOutput,
            standardError: String(decoding: standardError, as: UTF8.self)
        )
    }
}
