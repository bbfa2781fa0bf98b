// Starting helper programs (systemd-creds for a host-bound seal; in tests, moat itself and its tools)
// without Foundation's Process: before swift-corelibs-foundation #5472 (May 2026), Process.run lists
// /proc/self/fd and copies each entry's 256-byte name whole, reading past the entry; with about 1,350
// descriptors open the read runs off glibc's readdir buffer into an unmapped page and the process
// segfaults. The child here closes every inherited descriptor with closefrom instead of listing them.

import CMoatProcess
public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A program started with `posix_spawn`: its three standard streams chosen, every other descriptor
/// closed, default signal dispositions, its own process group. Waiting never holds a lock or a
/// cooperative thread by itself: ``waitUntilExit()`` blocks its caller, so async code calls it off the
/// pool.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream {
        /// `/dev/null`.
        case null
        /// This descriptor (left open here; the caller owns it).
        case descriptor(Int32)
        /// The child's end of a pipe: the read end for standard input, the write end for the others. That
        /// end is closed here once the child has it, so reading the other end sees the child's EOF.
        case pipe(Pipe)
    }

    /// Why a child could not be started.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let processIdentifier: Int32
    /// The raw wait status, once reaped.
    private let status = Mutex<Int32?>(nil)

    /// Starts `executable` (a path, or a name looked up in `PATH`) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes this process's own.
    ///   - directory: the child's working directory; nil keeps this process's.
    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        directory: String? = nil,
        standardInput: Stream = .null,
        standardOutput: Stream = .null,
        standardError: Stream = .null
    ) throws(Failure) {
        let path = try Self.resolve(executable)
        let streams = [standardInput, standardOutput, standardError]
        let descriptors: [Int32] = streams.enumerated().map { index, stream in
            switch stream {
            case .null: -1
            case .descriptor(let fd): fd
            case .pipe(let pipe):
                index == 0 ? pipe.fileHandleForReading.fileDescriptor : pipe.fileHandleForWriting.fileDescriptor
            }
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let error = descriptors.withUnsafeBufferPointer { fds in
            if let envp {
                moat_spawn(&pid, path, argv, envp, fds.baseAddress, directory, 1)
            } else {
                moat_spawn(&pid, path, argv, environ, fds.baseAddress, directory, 1)
            }
        }
        guard error == 0 else {
            throw Failure(description: "cannot start \(path): \(String(cString: strerror(error)))")
        }
        processIdentifier = pid
        for (index, stream) in streams.enumerated() {
            guard case .pipe(let pipe) = stream else { continue }
            try? (index == 0 ? pipe.fileHandleForReading : pipe.fileHandleForWriting).close()
        }
    }

    /// Whether the child has not ended yet (reaping it when it has).
    public var isRunning: Bool { reaped() == nil }

    /// Blocks until the child has ended.
    public func waitUntilExit() {
        while reaped() == nil {
            // Waits for the exit without reaping it (WNOWAIT), so a concurrent `isRunning` that reaps
            // first still finds the status here; EINTR and a lost race (ECHILD) just loop.
            var info = siginfo_t()
            _ = waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOWAIT)
        }
    }

    /// The exit code, or the signal number when a signal ended the child (as Foundation's `Process`);
    /// -1 while it runs.
    public var terminationStatus: Int32 {
        guard let raw = reaped() else { return -1 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// Whether a signal ended the child.
    public var terminatedBySignal: Bool {
        guard let raw = reaped() else { return false }
        return raw & 0x7f != 0
    }

    /// Sends `signal` to the child, unless it was already reaped (its pid may belong to another process).
    public func send(_ signal: Int32) {
        status.withLock { status in
            if status == nil { _ = kill(processIdentifier, signal) }
        }
    }

    /// Sends SIGTERM.
    public func terminate() { send(SIGTERM) }

    /// The wait status once the child has ended, reaping it then (under the lock, so it happens once).
    private func reaped() -> Int32? {
        status.withLock { status in
            if status == nil {
                var raw: Int32 = 0
                if waitpid(processIdentifier, &raw, WNOHANG) == processIdentifier { status = raw }
            }
            return status
        }
    }

    /// `executable` itself when it names a path, else the first executable file of that name in `PATH`.
    private static func resolve(_ executable: String) throws(Failure) -> String {
        if executable.contains("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(executable)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw Failure(description: "\(executable) is not in PATH (\(path))")
    }
}
