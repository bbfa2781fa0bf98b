import ArgumentParser
import Foundation
import MoatCore
import MoatSandbox
import MoatStore

/// `moat sandbox`: run one command in the sandbox tools use, and check what this machine supports.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a command in the tool sandbox, or check what this machine supports.",
        discussion: """
            The sandbox is the moat-sandbox launcher installed beside moat: fresh namespaces, a read-only \
            root, no network, a seccomp allowlist and resource limits. It never falls back to running a \
            command unsandboxed. Details: Docs/Sandbox.md.
            """,
        subcommands: [Run.self, Check.self]
    )
}

extension SandboxCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run CMD ARGS… in the sandbox; print its output and exit with its exit code.",
            discussion: """
                Profiles: default (system directories read-only, a private /tmp, nothing of the host \
                writable) and workspace (default plus the --rw directory, writable, at /workspace and as \
                the working directory). With the default profile each --rw DIR is writable at its own \
                path. The command gets only PATH, HOME, TMPDIR and LANG plus --env values. Bind paths are \
                never followed through symlinks, and no bind may be, contain or lie inside /proc, /sys, /dev \
                or Moat's own state and config directories. Exit codes: the command's own; 124 timeout; \
                125 the sandbox could not be set up (nothing ran); 126 not executable; 127 not found; 128+N \
                killed by signal N.
                """
        )

        @Option(help: ArgumentHelp("Sandbox profile: default or workspace.", valueName: "profile"))
        var profile = "default"

        @Option(
            name: .customLong("rw"), help: ArgumentHelp("A host directory the command may write.", valueName: "dir"))
        var writable: [String] = []

        @Option(name: .customLong("ro"), help: ArgumentHelp("A host path the command may read.", valueName: "path"))
        var readable: [String] = []

        @Option(help: ArgumentHelp("Memory limit, e.g. 256M or 1G.", valueName: "size"))
        var memory = "256M"

        @Option(help: ArgumentHelp("Wall-clock timeout, e.g. 30s, 500ms or 2m.", valueName: "time"))
        var timeout = "30s"

        @Option(
            name: .customLong("file-size"),
            help: ArgumentHelp("Largest file the command may write, e.g. 256M (per file).", valueName: "size"))
        var fileSize = "256M"

        @Option(help: ArgumentHelp("Set an environment variable for the command (repeatable).", valueName: "KEY=VALUE"))
        var env: [String] = []

        @Argument(parsing: .postTerminator, help: ArgumentHelp("The command to run, after --.", valueName: "command"))
        var command: [String] = []

        /// Where Moat's own state is: kept out of every bind.
        @OptionGroup var state: StateOptions

        func validate() throws {
            guard !command.isEmpty else {
                throw ValidationError("give the command after --, e.g. moat sandbox run -- echo hi")
            }
            guard SandboxProfile.names.contains(profile) else {
                throw ValidationError(
                    "unknown --profile; the profiles are: \(SandboxProfile.names.joined(separator: ", "))")
            }
            if profile == "workspace" && writable.count != 1 {
                throw ValidationError("the workspace profile needs exactly one --rw DIR")
            }
            guard Self.bytes(memory) != nil else {
                throw ValidationError("--memory must be a size such as 256M, 1G or 268435456")
            }
            guard Self.bytes(fileSize) != nil else {
                throw ValidationError("--file-size must be a size such as 256M, 1G or 268435456")
            }
            guard Self.duration(timeout) != nil else {
                throw ValidationError("--timeout must be a time such as 30s, 500ms or 2m")
            }
            if env.contains(where: { !$0.contains("=") || $0.hasPrefix("=") }) {
                throw ValidationError("--env takes KEY=VALUE")
            }
        }

        func run() async throws {
            var spec: SandboxSpec
            let absolute = Self.absolute
            if profile == "workspace" {
                spec = SandboxProfile.workspace(absolute(writable[0])).spec(command)
            } else {
                spec = SandboxProfile.default.spec(command)
                spec.writableBinds = writable.map { BindMount(absolute($0)) }
            }
            spec.readOnlyBinds = readable.map { BindMount(absolute($0)) }
            spec.limits.memoryBytes = Self.bytes(memory)!
            spec.limits.fileBytes = Self.bytes(fileSize)!
            spec.timeout = Self.duration(timeout)!
            for entry in env {
                let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                spec.environment[String(parts[0])] = String(parts[1])
            }

            let result: SandboxResult
            do {
                result = try await Sandbox(protecting: protectedPaths()).run(spec)
            } catch let error as SandboxError {
                let code = error.code == .invalidSpec ? ExitStatus.usage : 125
                throw CommandFailure(error.message, exitCode: code)
            }
            FileHandle.standardOutput.write(Data(result.standardOutput.utf8))
            FileHandle.standardError.write(Data(result.standardError.utf8))
            var notes: [String] = []
            if result.standardOutputTruncated { notes.append("stdout was cut at \(spec.limits.outputBytes) bytes") }
            if result.standardErrorTruncated { notes.append("stderr was cut at \(spec.limits.outputBytes) bytes") }
            switch result.status {
            case .timeout: notes.append("the command timed out after \(timeout); everything it started was killed")
            case .outOfMemory: notes.append("the command ran out of memory (limit \(memory))")
            case .signaled: notes.append("the command was killed by signal \(result.signal ?? 0)")
            default: if let message = result.message { notes.append(message) }
            }
            for note in notes { FileHandle.standardError.write(Data("moat: \(note)\n".utf8)) }
            throw ExitCode(result.exitCode)
        }

        /// Moat's state and config directories, and a config file given with --config: a command that could
        /// read them would see the vault and the database, one that could write them would change the policy.
        func protectedPaths() throws -> [String] {
            let layout = try CommandContext.layout(state)
            let paths = [layout.stateDirectory, layout.configDirectory] + (state.config.map { [$0] } ?? [])
            return paths.map(Self.absolute)
        }

        /// An absolute, normalised path (relative to the working directory); symlinks are left as they are.
        static func absolute(_ path: String) -> String {
            URL(fileURLWithPath: path).standardizedFileURL.path
        }

        /// "256M", "1G", "512K", "1048576": binary units, as the limits are documented.
        static func bytes(_ text: String) -> UInt64? {
            let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
            var digits = text.uppercased()
            if digits.hasSuffix("IB") {
                digits.removeLast(2)
            } else if digits.hasSuffix("B") {
                digits.removeLast()
            }
            var scale: UInt64 = 1
            if let last = digits.last, let unit = units[last] {
                scale = unit
                digits.removeLast()
            }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = UInt64(digits) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }

        /// "30s", "500ms", "2m", "1h", or plain seconds.
        static func duration(_ text: String) -> Duration? {
            let suffixes: [(String, (Int64) -> Duration)] = [
                ("ms", { .milliseconds($0) }), ("s", { .seconds($0) }), ("m", { .seconds($0 * 60) }),
                ("h", { .seconds($0 * 3600) }),
            ]
            for (suffix, make) in suffixes where text.hasSuffix(suffix) {
                guard let value = Int64(text.dropLast(suffix.count)), value > 0, value <= 7 * 86400 * 1000 else {
                    return nil
                }
                return make(value)
            }
            guard let value = Int64(text), value > 0, value <= 7 * 86400 else { return nil }
            return .seconds(value)
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what this machine supports for the sandbox, with pass/warn/fail.",
            discussion: "Exits 1 when the sandbox cannot run here (no launcher, no user namespaces or no seccomp)."
        )

        func run() async throws {
            let capabilities: SandboxCapabilities
            let launcher: String
            do {
                let sandbox = try Sandbox()
                launcher = sandbox.launcherPath
                capabilities = try await sandbox.capabilities()
            } catch let error as SandboxError {
                print("fail  launcher: \(error.message)")
                throw ExitCode(ExitStatus.failure)
            }
            var lines = ["pass  launcher: \(launcher)"]
            if capabilities.userNamespaces {
                lines.append("pass  user namespaces: available")
            } else {
                lines.append(
                    "fail  user namespaces: \(capabilities.userNamespacesError ?? "unavailable"); "
                        + "fix: enable them (sysctl kernel.unprivileged_userns_clone=1, or "
                        + "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)"
                )
            }
            lines.append(
                capabilities.seccomp
                    ? "pass  seccomp: filters available"
                    : "fail  seccomp: filters unavailable; fix: a kernel built with CONFIG_SECCOMP_FILTER"
            )
            lines.append(
                capabilities.limitsMode == "cgroup2"
                    ? "pass  limits: cgroup2 (a delegated cgroup v2 subtree)"
                    : "warn  limits: rlimit (memory is capped per process by address space, not for the group); "
                        + "fix: run moat in a systemd unit with Delegate=yes on a cgroup v2 host"
            )
            lines.append(
                capabilities.landlockABI > 0
                    ? "pass  landlock: ABI \(capabilities.landlockABI) (not needed by the sandbox)"
                    : "warn  landlock: unavailable (not needed by the sandbox)"
            )
            if let kernel = capabilities.kernel { lines.append("pass  kernel: \(kernel)") }
            print(lines.joined(separator: "\n"))
            if !capabilities.userNamespaces || !capabilities.seccomp { throw ExitCode(ExitStatus.failure) }
        }
    }
}
