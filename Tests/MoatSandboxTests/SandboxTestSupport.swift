import Foundation
import MoatCore
import MoatSandbox
import MoatTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The real launcher from the build directory, and specs that run the escape probes inside its sandbox.
enum Launcher {
    /// Where the probe is bound inside the sandbox (read-only), as Docs/Sandbox.md describes.
    static let probeInsidePath = "/moat/moat-sandbox-probe"

    /// The test-only probe executable (target `moat-sandbox-probe`), built beside the launcher.
    static var probeHostPath: String {
        URL(fileURLWithPath: Sandbox.defaultLauncherPath()).deletingLastPathComponent()
            .appendingPathComponent("moat-sandbox-probe").path
    }

    static func sandbox() throws -> Sandbox { try Sandbox() }

    /// Runs the real launcher directly with `arguments` (waiting on a thread of its own); returns its exit
    /// status and what it wrote on stdout.
    static func runDirectly(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offCooperativePool {
            let output = Pipe()
            let launcher = try ChildProcess(
                Sandbox.defaultLauncherPath(), arguments, standardOutput: .pipe(output), standardError: .descriptor(2))
            let text = String(decoding: output.fileHandleForReading.readAll(), as: UTF8.self)
            launcher.waitUntilExit()
            return (launcher.terminationStatus, text)
        }
    }

    /// A spec that runs `moat-sandbox-probe NAME ARGS` as the sandboxed command.
    static func probeSpec(
        _ name: String,
        _ arguments: [String] = [],
        limits: SandboxLimits = SandboxLimits(),
        timeout: Duration = .seconds(10)
    ) -> SandboxSpec {
        SandboxSpec(
            [probeInsidePath, name] + arguments,
            readOnlyBinds: [BindMount(probeHostPath, at: probeInsidePath)],
            limits: limits,
            timeout: timeout
        )
    }

    static func probe(
        _ name: String,
        _ arguments: [String] = [],
        limits: SandboxLimits = SandboxLimits(),
        timeout: Duration = .seconds(10)
    ) async throws -> SandboxResult {
        try await sandbox().run(probeSpec(name, arguments, limits: limits, timeout: timeout))
    }

    /// Host processes (pids) whose command line is exactly `arguments`.
    static func hostProcesses(commandLine arguments: [String]) -> [String] {
        let expected = Data(arguments.joined(separator: "\u{0}").utf8 + [0])
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { entry in
            entry.allSatisfy(\.isNumber)
                && FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") == expected
        }
    }

    /// Host processes whose parent is `parent`.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = pid_t(entry), let fields = statFields(pid), fields.count > 1 else { return nil }
            return fields[1] == "\(parent)" ? pid : nil
        }
    }

    /// Whether `pid` is a live process (a zombie waiting for its reaper counts as gone).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let fields = statFields(pid), let state = fields.first else { return false }
        return state != "Z" && state != "X"
    }

    /// `/proc/PID/stat` after the command name: state, parent pid, ...
    private static func statFields(_ pid: pid_t) -> [Substring]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let end = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: end)...].split(separator: " ")
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass; returns whether it held.
    static func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }

    /// Makes `path` writable by the sandbox's host identity: uid 65534 when tests run as root (CI).
    static func makeWritableBySandbox(_ path: String) {
        if geteuid() == 0 { _ = chown(path, 65534, 65534) }
        TemporaryDirectory.chmod(path, 0o700)
    }
}

/// A listening socket on the host, for the tests that try to reach it from inside the sandbox.
final class HostListener: @unchecked Sendable {
    let fd: Int32
    /// The TCP port (for `tcp`), 0 for an abstract unix socket.
    private(set) var port: UInt16 = 0

    /// Listens on 127.0.0.1 on a free port.
    static func tcp() throws -> HostListener {
        let listener = HostListener(fd: socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener.fd, pointer, length) == 0 && listen(listener.fd, 8) == 0
                    && getsockname(listener.fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ListenerError() }
        listener.port = UInt16(bigEndian: address.sin_port)
        return listener
    }

    /// Listens on the abstract unix socket `\0name` in the host's network namespace.
    static func abstract(_ name: String) throws -> HostListener {
        let listener = HostListener(fd: socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in bytes.enumerated() { path[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener.fd, $0, length) == 0 }
        }
        guard bound, listen(listener.fd, 8) == 0 else { throw ListenerError() }
        return listener
    }

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    struct ListenerError: Error {}
}
