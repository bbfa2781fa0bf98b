import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One command to run in the sandbox, with everything it may see and use.
///
/// The defaults are the sandbox's: no environment but `PATH`, `HOME` and `TMPDIR`, the system directories
/// read-only, no network, the limits of ``SandboxLimits``, 30 s of wall time, working directory `/`.
/// Profiles (``SandboxProfile``) build specs for the usual cases. ``validate()`` runs before every launch.
public struct SandboxSpec: Sendable, Equatable {
    /// `argv`; `arguments[0]` without a `/` is searched in the spec's `PATH`.
    public var arguments: [String]
    /// The command's whole environment: nothing of Moat's own environment is passed on.
    public var environment: [String: String]
    /// Host paths the command may read, added to the system directories.
    public var readOnlyBinds: [BindMount]
    /// Host paths the command may read, write and delete in.
    public var writableBinds: [BindMount]
    /// The working directory inside the sandbox; it must exist there.
    public var workingDirectory: String
    public var limits: SandboxLimits
    /// Wall time from the sandbox's creation; at the deadline everything in it is killed (exit 124).
    public var timeout: Duration

    /// The environment a spec starts with: enough for ordinary tools, nothing from the host.
    public static let defaultEnvironment: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
    ]

    public init(
        _ arguments: [String],
        environment: [String: String] = SandboxSpec.defaultEnvironment,
        readOnlyBinds: [BindMount] = [],
        writableBinds: [BindMount] = [],
        workingDirectory: String = "/",
        limits: SandboxLimits = SandboxLimits(),
        timeout: Duration = .seconds(30)
    ) {
        self.arguments = arguments
        self.environment = environment
        self.readOnlyBinds = readOnlyBinds
        self.writableBinds = writableBinds
        self.workingDirectory = workingDirectory
        self.limits = limits
        self.timeout = timeout
    }
}

/// A host path made visible inside the sandbox, at the same path or at `target`.
public struct BindMount: Sendable, Equatable {
    /// The absolute host path; it must exist and is opened without following symlinks (a path that crosses
    /// one is refused). It may not be, contain or lie inside `/proc`, `/sys`, `/dev` or a path the
    /// ``Sandbox`` protects.
    public var source: String
    /// The absolute path inside the sandbox; not `/`, nor under `/proc` or `/dev`.
    public var target: String

    public init(_ source: String, at target: String? = nil) {
        self.source = source
        self.target = target ?? source
    }
}

/// Resource limits for one run. The launcher enforces them with cgroup v2 where a delegated subtree
/// exists, with rlimits and CPU affinity otherwise (``SandboxResult/limitsMode``); rlimit mode also caps
/// each process at 256 open descriptors, which bounds the socket and pipe buffers it can hold.
public struct SandboxLimits: Sendable, Equatable {
    /// Memory (cgroup2) or address space (rlimit mode); 16 MiB … 1 TiB.
    public var memoryBytes: UInt64
    public var cpus: Int
    /// Processes of the command tree.
    public var processes: Int
    /// Size of the `/tmp` tmpfs.
    public var tmpBytes: UInt64
    /// How much of stdout and of stderr is kept; the rest is read and dropped, and the result says so.
    public var outputBytes: UInt64
    /// RLIMIT_CPU; `nil` means the timeout times `cpus`.
    public var cpuSeconds: UInt64?
    /// The largest file the command may write.
    public var fileBytes: UInt64

    public static let mebibyte: UInt64 = 1 << 20

    public init(
        memoryBytes: UInt64 = 256 * SandboxLimits.mebibyte,
        cpus: Int = 1,
        processes: Int = 64,
        tmpBytes: UInt64 = 64 * SandboxLimits.mebibyte,
        outputBytes: UInt64 = 1 * SandboxLimits.mebibyte,
        cpuSeconds: UInt64? = nil,
        fileBytes: UInt64 = 256 * SandboxLimits.mebibyte
    ) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
        self.processes = processes
        self.tmpBytes = tmpBytes
        self.outputBytes = outputBytes
        self.cpuSeconds = cpuSeconds
        self.fileBytes = fileBytes
    }
}

extension SandboxSpec {
    /// The launcher refuses the same things; checking here first gives errors that name our fields.
    static let memoryRange: ClosedRange<UInt64> = (16 * SandboxLimits.mebibyte)...(1 << 40)
    static let timeoutRange: ClosedRange<Duration> = .milliseconds(1)...(.seconds(7 * 86400))

    /// Throws ``SandboxError/Code/invalidSpec`` naming the first field that is wrong (never its value).
    public func validate() throws {
        func invalid(_ message: String) -> SandboxError {
            SandboxError(.invalidSpec, "invalid sandbox spec: \(message)")
        }
        guard let command = arguments.first, !command.isEmpty else {
            throw invalid("the command is empty; give at least the program to run")
        }
        if arguments.contains(where: { $0.utf8.contains(0) }) {
            throw invalid("an argument contains a NUL byte")
        }
        for (key, value) in environment {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) || value.utf8.contains(0) {
                throw invalid("an environment variable name is empty or contains '=' or NUL")
            }
        }
        for (label, binds) in [("read-only bind", readOnlyBinds), ("writable bind", writableBinds)] {
            for (index, bind) in binds.enumerated() {
                guard bind.source.hasPrefix("/"), bind.target.hasPrefix("/") else {
                    throw invalid("\(label) \(index + 1) is not an absolute path on both sides")
                }
                if bind.source.utf8.contains(0) || bind.target.utf8.contains(0) {
                    throw invalid("\(label) \(index + 1) contains a NUL byte")
                }
            }
        }
        guard workingDirectory.hasPrefix("/"), !workingDirectory.utf8.contains(0) else {
            throw invalid("the working directory must be an absolute path inside the sandbox")
        }
        guard Self.memoryRange.contains(limits.memoryBytes) else {
            throw invalid("the memory limit must be between 16 MiB and 1 TiB")
        }
        guard (1...1024).contains(limits.cpus) else { throw invalid("cpus must be between 1 and 1024") }
        guard (1...65536).contains(limits.processes) else {
            throw invalid("the process limit must be between 1 and 65536")
        }
        guard (64 * 1024...1 << 40).contains(limits.tmpBytes) else {
            throw invalid("the /tmp size must be between 64 KiB and 1 TiB")
        }
        guard limits.outputBytes <= 256 * SandboxLimits.mebibyte else {
            throw invalid("the output cap must be at most 256 MiB per stream")
        }
        guard limits.fileBytes <= 1 << 50 else { throw invalid("the file size limit must be at most 1 PiB") }
        if let cpuSeconds = limits.cpuSeconds, !(1...7 * 86400).contains(cpuSeconds) {
            throw invalid("the CPU time limit must be between 1 second and 7 days")
        }
        guard Self.timeoutRange.contains(timeout) else {
            throw invalid("the timeout must be between 1 ms and 7 days")
        }
    }

    /// Whole milliseconds of the timeout, rounded up so a tiny timeout never becomes zero.
    var timeoutMilliseconds: UInt64 {
        let (seconds, attoseconds) = timeout.components
        return UInt64(seconds) * 1000 + UInt64((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// The JSON the launcher reads (Docs/Sandbox.md, "Spec"). It names this process as the launcher's
    /// parent, so a launcher whose starter is already gone ends instead of running on.
    func launcherJSON(protectedPaths: [String]) throws -> Data {
        var limitsObject: [String: Any] = [
            "memory_bytes": limits.memoryBytes, "cpus": limits.cpus, "pids": limits.processes,
            "tmp_bytes": limits.tmpBytes, "output_bytes": limits.outputBytes, "file_bytes": limits.fileBytes,
        ]
        if let cpuSeconds = limits.cpuSeconds { limitsObject["cpu_seconds"] = cpuSeconds }
        func bindObjects(_ binds: [BindMount]) -> [[String: String]] {
            binds.map { ["src": $0.source, "dst": $0.target] }
        }
        let object: [String: Any] = [
            "argv": arguments, "env": environment, "ro_binds": bindObjects(readOnlyBinds),
            "rw_binds": bindObjects(writableBinds), "cwd": workingDirectory, "network": "none",
            "limits": limitsObject, "timeout_ms": timeoutMilliseconds, "protected_paths": protectedPaths,
            "parent_pid": Int(getpid()),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
