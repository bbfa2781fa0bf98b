public import MoatCore
import MoatSandbox

/// `shell {command}` [shell]: `/bin/sh -c COMMAND` in the sandbox (MoatSandbox), the workspace mounted
/// read-write at `/workspace` as its working directory, no network, a wall-time limit and output caps.
///
/// The sandbox fails closed: when it cannot be set up the command is not run, never run unsandboxed.
/// Moat's state (the vault, the database, the configuration) is kept out of every bind. The output is
/// external (it can carry anything a command prints).
public struct ShellTool: BuiltinTool {
    public let name = "shell"
    public let domain = TrustDomain.shell
    public let description =
        "Run a shell command (/bin/sh -c) in a sandbox. The working directory is the workspace, mounted at "
        + "/workspace; there is no network, and the command is stopped at its time limit."
    let parameterList: [ToolParameter] = [.string("command", "The command line for /bin/sh -c.")]
    /// The longest command line (64 KiB).
    public static let maximumCommandBytes = 64 << 10

    let workspace: Workspace
    let settings: ToolsSettings
    let launcherPath: String

    /// - Parameter launcherPath: the `moat-sandbox` launcher; by default the one beside the running executable.
    public init(workspace: Workspace, settings: ToolsSettings, launcherPath: String? = nil) {
        self.workspace = workspace
        self.settings = settings
        self.launcherPath = launcherPath ?? Sandbox.defaultLauncherPath()
    }

    public func prepare(_ arguments: String) throws(ToolError) -> PreparedCall {
        let checked = try checkedArguments(arguments)
        let command = checked.string("command")
        guard !command.allSatisfy(\.isWhitespace) else {
            throw ToolError(.invalidArguments, "shell: \"command\" is empty; give the command line to run")
        }
        guard command.utf8.count <= Self.maximumCommandBytes, !command.utf8.contains(0) else {
            throw ToolError(
                .invalidArguments,
                "shell: the command must be at most \(Self.maximumCommandBytes) bytes, without NUL bytes")
        }
        return prepared(checked, destination: "", summary: "run in the sandbox: \(command)")
    }

    public func run(_ call: PreparedCall, context: ToolContext) async throws(ToolError) -> ToolOutput {
        let command = try checkedArguments(of: call).string("command")
        guard !settings.shellNetwork else {
            // Unreachable through config.yaml (the loader refuses it); a guard that cannot hold refuses.
            throw ToolError(.refused, "shell: the sandbox has no network mode, so the command was not run")
        }
        var spec = SandboxProfile.workspace(workspace.root).spec(["/bin/sh", "-c", command])
        spec.limits.outputBytes = UInt64(Self.streamBytes(settings))
        spec.timeout = settings.shellTimeLimit
        let result: SandboxResult
        do {
            let sandbox = try Sandbox(launcherPath: launcherPath, protecting: workspace.protectedPaths())
            result = try await sandbox.run(spec)
        } catch let error as SandboxError {
            throw ToolError(
                .failed, "shell: the sandbox could not be set up, so the command was not run: \(error.message)")
        } catch {
            throw ToolError(.failed, "shell: the sandbox could not be set up, so the command was not run")
        }
        return ToolOutput(text: Self.describe(result, settings: settings), external: true, truncated: false)
            .capped(
                settings.outputBytes, streamsCut: result.standardOutputTruncated || result.standardErrorTruncated)
    }

    /// How much of each stream is kept: both, their markers and the status line fit in the output cap.
    static func streamBytes(_ settings: ToolsSettings) -> Int {
        max(256, settings.outputBytes / 2 - 256)
    }

    /// The result for the model: how the command ended, then both streams with a marker where cut.
    static func describe(_ result: SandboxResult, settings: ToolsSettings) -> String {
        var lines: [String] = []
        switch result.status {
        case .timeout:
            lines.append(
                "the command was stopped after its time limit (\(settings.shellTimeLimit.components.seconds) s); "
                    + "everything it started was killed (exit status \(result.exitCode))")
        case .outOfMemory:
            lines.append("the command ran out of memory and was killed (exit status \(result.exitCode))")
        case .signaled:
            lines.append("the command was killed by signal \(result.signal ?? 0) (exit status \(result.exitCode))")
        default:
            lines.append("exit status \(result.exitCode)")
            if let message = result.message { lines.append(message) }
        }
        for (label, text, cut) in [
            ("stdout", result.standardOutput, result.standardOutputTruncated),
            ("stderr", result.standardError, result.standardErrorTruncated),
        ] where !text.isEmpty || cut {
            lines.append("\(label):")
            lines.append(text + (cut ? ToolText.marker(what: label, kept: streamBytes(settings), total: nil) : ""))
        }
        return lines.joined(separator: "\n")
    }
}
