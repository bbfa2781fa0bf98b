import Foundation

/// Runs commands in the `moat-sandbox` launcher: fresh namespaces, a read-only root, no network, a seccomp
/// allowlist and resource limits (Docs/Sandbox.md).
///
/// The sandbox fails closed: when the launcher is missing, unsafe, or cannot build the sandbox, ``run(_:)``
/// throws and the command is not run. There is no unsandboxed fallback.
public struct Sandbox: Sendable {
    /// The launcher's file name, installed beside `moat`.
    public static let launcherName = "moat-sandbox"

    /// The launcher this sandbox runs.
    public let launcherPath: String

    /// Host paths that no bind of any spec run here may be, contain or lie inside (Moat's own state and
    /// configuration). The launcher checks the objects they name, not their spelling; `/proc`, `/sys` and
    /// `/dev` are always refused.
    public let protectedPaths: [String]

    /// Uses the launcher beside the running executable (`moat`, or the test bundle in the build directory).
    ///
    /// - Parameter protectedPaths: absolute host paths kept out of every bind (``protectedPaths``).
    public init(protecting protectedPaths: [String] = []) throws {
        try self.init(launcherPath: Self.defaultLauncherPath(), protecting: protectedPaths)
    }

    /// Uses the launcher at `launcherPath`; throws when it is missing or others could replace it, or when a
    /// protected path is not absolute.
    public init(launcherPath: String, protecting protectedPaths: [String] = []) throws {
        try Self.checkLauncher(at: launcherPath)
        self.launcherPath = launcherPath
        self.protectedPaths = try protectedPaths.map { path in
            guard path.hasPrefix("/"), !path.utf8.contains(0) else {
                throw SandboxError(.invalidSpec, "a protected path must be an absolute host path")
            }
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
    }

    /// `moat-sandbox` in the directory of the running executable, symlinks resolved.
    public static func defaultLauncherPath() -> String {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(launcherName).path
    }

    /// Runs `spec` and returns how the command ended.
    ///
    /// Throws ``SandboxError`` — and runs nothing — when the spec is invalid or the sandbox cannot be set
    /// up. Cancelling the calling task kills the launcher and everything in the sandbox.
    public func run(_ spec: SandboxSpec) async throws -> SandboxResult {
        try spec.validate()
        let input = try spec.launcherJSON(protectedPaths: protectedPaths)
        // The result holds both streams as JSON strings: at worst six bytes per byte (\u escapes).
        let outputLimit = Int(clamping: 12 * spec.limits.outputBytes + (1 << 20))
        let output = try await LauncherProcess.run(
            path: launcherPath,
            arguments: [],
            input: input,
            outputLimit: outputLimit,
            deadline: spec.timeout + .seconds(10)
        )
        return try SandboxResult(
            launcherOutput: output.standardOutput,
            launcherExitStatus: output.exitStatus,
            launcherDiagnostics: output.standardError
        )
    }

    /// What this machine supports (`moat-sandbox --check`): each item is tried for real, not inferred.
    public func capabilities() async throws -> SandboxCapabilities {
        let output = try await LauncherProcess.run(
            path: launcherPath,
            arguments: ["--check"],
            input: Data(),
            outputLimit: 1 << 16,
            deadline: .seconds(10)
        )
        guard let capabilities = try? JSONDecoder().decode(SandboxCapabilities.self, from: output.standardOutput)
        else {
            throw SandboxError(
                .launcherFailed,
                "moat-sandbox --check exited with status \(output.exitStatus) without a report"
            )
        }
        return capabilities
    }

    /// Runs the launcher's own `--verify-filter`: do the stored seccomp programs match the rules?
    /// Returns the exit status and what it printed.
    public func verifyFilter() async throws -> (status: Int32, output: String) {
        let output = try await LauncherProcess.run(
            path: launcherPath,
            arguments: ["--verify-filter"],
            input: Data(),
            outputLimit: 1 << 20,
            deadline: .seconds(30)
        )
        let text = String(decoding: output.standardOutput, as: UTF8.self) + output.standardError
        return (output.exitStatus, text)
    }

    private static func checkLauncher(at path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SandboxError(
                .launcherMissing,
                "\(launcherName) not found at \(path); it must be installed beside moat (run ./install.sh, "
                    + "or `swift build --product moat-sandbox` in a checkout). Without it no command runs."
            )
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o111 != 0 else {
            throw SandboxError(.launcherUnsafe, "\(path) is not an executable file; reinstall with ./install.sh")
        }
        // Whoever can rewrite the launcher decides what "sandboxed" means.
        guard info.st_mode & 0o022 == 0, info.st_uid == 0 || info.st_uid == geteuid() else {
            throw SandboxError(
                .launcherUnsafe,
                "\(path) is writable by other users or owned by someone else; fix with: chmod 0755 \(path) "
                    + "and chown it to root or to the user running moat"
            )
        }
    }
}

/// What this machine offers the sandbox, from `moat-sandbox --check`.
public struct SandboxCapabilities: Sendable, Equatable, Decodable {
    /// A user namespace (with PID, network and mount namespaces) could be created. Without it nothing runs.
    public let userNamespaces: Bool
    /// Why not, when ``userNamespaces`` is false.
    public let userNamespacesError: String?
    /// Seccomp filters that can return errors and kill a whole process.
    public let seccomp: Bool
    /// `cgroup2` (a delegated, writable subtree) or `rlimit` (rlimits and CPU affinity).
    public let limitsMode: String
    /// The Landlock ABI version, 0 when Landlock is unavailable (the sandbox does not need it).
    public let landlockABI: Int
    public let kernel: String?
    public let runningAsRoot: Bool

    enum CodingKeys: String, CodingKey {
        case seccomp, kernel
        case userNamespaces = "user_namespaces"
        case userNamespacesError = "user_namespaces_error"
        case limitsMode = "limits_mode"
        case landlockABI = "landlock_abi"
        case runningAsRoot = "running_as_root"
    }
}
